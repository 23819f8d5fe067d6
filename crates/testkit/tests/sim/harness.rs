//! The simulation's client and scenario plumbing: a wallet-like client,
//! what a run measures, and waiting for inclusion.

use commonware_runtime::{deterministic, Clock};
use std::time::Duration;
use verity_primitives::{Address, PrivateKey, SignedTx, Tx, TxBody, B256};
use verity_testkit::sim::{ByzantineApp, Ctx, Sim};

/// A client that sends transfers round-robin to the validators.
pub struct Client {
    pub key: PrivateKey,
    pub nonce: u64,
    /// (tx, executed height of the entry validator when it was first sent)
    pub sent: Vec<(SignedTx, u64)>,
}

impl Client {
    pub fn new(name: &str) -> Self {
        Self {
            key: PrivateKey::from_dev_seed(name),
            nonce: 0,
            sent: Vec::new(),
        }
    }

    /// An inference request for the genesis model (no executor runs in the
    /// simulation: it is drawn, then expires).
    pub fn infer(&mut self) -> SignedTx {
        let mut input = verity_primitives::Tensors::default();
        input.0.insert(
            "X".into(),
            verity_primitives::Tensor::new(
                "X",
                vec![1, 4],
                verity_primitives::TensorData::F32(vec![5.1, 3.4, 1.5, 0.2]),
            )
            .expect("tensor"),
        );
        let tx = Tx {
            chain_id: verity_testkit::sim::SIM_CHAIN,
            from: self.key.address(),
            nonce: self.nonce,
            body: TxBody::Infer(verity_primitives::InferenceRequest {
                model: verity_primitives::ModelId::of_bytes(verity_testkit::sim::SIM_MODEL),
                input,
                mode: verity_primitives::Mode::Vanilla,
                max_fee: 100,
            }),
        }
        .sign(&self.key);
        self.nonce += 1;
        tx
    }

    /// A zk request for the genesis CNN.
    pub fn zk_infer(&mut self, input: &verity_primitives::Tensors) -> SignedTx {
        let tx = Tx {
            chain_id: verity_testkit::sim::SIM_CHAIN,
            from: self.key.address(),
            nonce: self.nonce,
            body: TxBody::Infer(verity_primitives::InferenceRequest {
                model: verity_primitives::ModelId::of_bytes(verity_testkit::sim::SIM_ZK_MODEL),
                input: input.clone(),
                mode: verity_primitives::Mode::Zk,
                max_fee: 100,
            }),
        }
        .sign(&self.key);
        self.nonce += 1;
        tx
    }

    pub fn transfer(&mut self, amount: u128) -> SignedTx {
        let tx = Tx {
            chain_id: verity_testkit::sim::SIM_CHAIN,
            from: self.key.address(),
            nonce: self.nonce,
            body: TxBody::Transfer {
                to: Address::repeat_byte(0x42),
                amount,
            },
        }
        .sign(&self.key);
        self.nonce += 1;
        tx
    }

    /// Sends one transfer through validator `via` (the first running one
    /// from there on); returns whether it was admitted.
    pub fn send(&mut self, sim: &Sim, via: usize) -> bool {
        let n = sim.nodes.len();
        let Some(i) = (0..n)
            .map(|k| (via + k) % n)
            .find(|&k| sim.nodes[k].state.is_some())
        else {
            return false;
        };
        // Every fourth transaction is an inference request.
        let tx = if self.nonce % 4 == 3 {
            self.infer()
        } else {
            self.transfer(1)
        };
        let height = sim.state(i).ledger.height().unwrap_or(0);
        match sim.submit(i, tx.clone()) {
            Ok(_) => {
                self.sent.push((tx, height));
                true
            }
            Err(_) => {
                self.nonce -= 1;
                false
            }
        }
    }

    /// Sends every transaction not yet applied again, through the next
    /// running validator (as a wallet does: pools are not durable, and a
    /// lossy network may drop gossip).
    pub fn resend(&self, sim: &Sim, round: usize) {
        let n = sim.nodes.len();
        for (k, (tx, _)) in self.sent.iter().enumerate() {
            let applied = sim.nodes[0]
                .state
                .as_ref()
                .is_some_and(|s| s.ledger.tx_outcome(&tx.id()).ok().flatten().is_some());
            if applied {
                continue;
            }
            if let Some(i) = (0..n)
                .map(|j| (round + k + j) % n)
                .find(|&j| sim.nodes[j].state.is_some())
            {
                let _ = sim.submit(i, tx.clone());
            }
        }
    }

    /// Inclusion delay in blocks of every sent transaction, as seen by
    /// validator `i`; `None` for one not applied.
    pub fn delays(&self, sim: &Sim, i: usize) -> Vec<Option<u64>> {
        self.sent
            .iter()
            .map(|(tx, sent_at)| {
                sim.state(i)
                    .ledger
                    .tx_outcome(&tx.id())
                    .ok()
                    .flatten()
                    .filter(|o| o.error.is_none())
                    .map(|o| o.height.saturating_sub(*sent_at))
            })
            .collect()
    }
}

/// What one scenario run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Roots of validator 0 at every height.
    pub roots: Vec<(u64, B256)>,
    /// The runtime auditor's digest.
    pub auditor: String,
    /// Largest inclusion delay (blocks) of the honest client's transfers.
    pub max_delay: u64,
    /// Simulated milliseconds from heal / restart to the first new block.
    pub recovery_ms: Option<u64>,
}

pub fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(1200))),
    )
}

pub fn now_ms(ctx: &Ctx) -> u64 {
    ctx.current()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Sends `count` honest transfers, one per 200 ms, round-robin.
pub async fn drive(sim: &Sim, client: &mut Client, count: usize) {
    for k in 0..count {
        client.send(sim, k);
        sim.context.sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until validator `i` has applied all of the client's transfers.
pub async fn settle(sim: &Sim, client: &Client, i: usize, limit: Duration) -> u64 {
    let start = sim.context.current();
    let mut round = 0;
    loop {
        round += 1;
        if round % 20 == 0 {
            client.resend(sim, round);
        }
        let d = client.delays(sim, i);
        if d.iter().all(Option::is_some) {
            return d.into_iter().flatten().max().unwrap_or(0);
        }
        let waited = sim
            .context
            .current()
            .duration_since(start)
            .unwrap_or_default();
        assert!(
            waited < limit,
            "transfers not included after {limit:?}: {:?} (heights {:?}, pools {:?})",
            d,
            sim.heights(),
            (0..sim.nodes.len())
                .filter(|&k| sim.nodes[k].state.is_some())
                .map(|k| sim.state(k).mempool.lock().unwrap().len())
                .collect::<Vec<_>>()
        );
        sim.context.sleep(Duration::from_millis(100)).await;
    }
}

pub fn clients() -> Vec<Address> {
    vec![
        PrivateKey::from_dev_seed("honest").address(),
        PrivateKey::from_dev_seed("spam").address(),
        ByzantineApp::spammer().address(),
    ]
}
