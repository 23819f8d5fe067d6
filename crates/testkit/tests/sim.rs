//! Deterministic simulation scenarios: the real ledger application under the
//! real consensus engine, with only adversaries mocked (see
//! `verity_testkit::sim`). `cargo test` runs each scenario over a few seeds;
//! `cargo test -p verity-testkit --test sim -- --ignored` runs the full
//! sweep (20 seeds each) and prints the figures.

use commonware_p2p::simulated::Link;
use commonware_runtime::{deterministic, Clock, Runner as _};
use std::time::Duration;
use verity_primitives::{Address, PrivateKey, SignedTx, Tx, TxBody, B256};
use verity_testkit::{
    faulty::ZkLie,
    sim::{check, lan, lossy, Attack, Behaviour, ByzantineApp, Ctx, Sim},
};

/// A client that sends transfers round-robin to the validators.
struct Client {
    key: PrivateKey,
    nonce: u64,
    /// (tx, executed height of the entry validator when it was first sent)
    sent: Vec<(SignedTx, u64)>,
}

impl Client {
    fn new(name: &str) -> Self {
        Self {
            key: PrivateKey::from_dev_seed(name),
            nonce: 0,
            sent: Vec::new(),
        }
    }

    /// An inference request for the genesis model (no executor runs in the
    /// simulation: it is drawn, then expires).
    fn infer(&mut self) -> SignedTx {
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
    fn zk_infer(&mut self, input: &verity_primitives::Tensors) -> SignedTx {
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

    fn transfer(&mut self, amount: u128) -> SignedTx {
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
    fn send(&mut self, sim: &Sim, via: usize) -> bool {
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
    fn resend(&self, sim: &Sim, round: usize) {
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
    fn delays(&self, sim: &Sim, i: usize) -> Vec<Option<u64>> {
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
struct Figures {
    /// Roots of validator 0 at every height.
    roots: Vec<(u64, B256)>,
    /// The runtime auditor's digest.
    auditor: String,
    /// Largest inclusion delay (blocks) of the honest client's transfers.
    max_delay: u64,
    /// Simulated milliseconds from heal / restart to the first new block.
    recovery_ms: Option<u64>,
}

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(1200))),
    )
}

fn now_ms(ctx: &Ctx) -> u64 {
    ctx.current()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Sends `count` honest transfers, one per 200 ms, round-robin.
async fn drive(sim: &Sim, client: &mut Client, count: usize) {
    for k in 0..count {
        client.send(sim, k);
        sim.context.sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until validator `i` has applied all of the client's transfers.
async fn settle(sim: &Sim, client: &Client, i: usize, limit: Duration) -> u64 {
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

fn clients() -> Vec<Address> {
    vec![
        PrivateKey::from_dev_seed("honest").address(),
        PrivateKey::from_dev_seed("spam").address(),
        ByzantineApp::spammer().address(),
    ]
}

/// The honest baseline, lossy links, or a Byzantine proposer at validator 3.
fn steady(seed: u64, link: Link, attack: Option<Attack>) -> Figures {
    runner(seed).start(|context| async move {
        let mut attacks = vec![None; 4];
        attacks[3] = attack.clone();
        let sim = Sim::start(context.clone(), 4, seed, link, &clients(), attacks).await;
        let honest: Vec<usize> = if attack.is_some() {
            vec![0, 1, 2]
        } else {
            vec![0, 1, 2, 3]
        };
        let mut client = Client::new("honest");
        drive(&sim, &mut client, 12).await;
        let max_delay = settle(&sim, &client, 0, Duration::from_secs(240)).await;
        let h = sim.heights().into_iter().max().unwrap_or(0);
        assert!(
            sim.wait_height(&honest, h, Duration::from_secs(240)).await,
            "honest validators caught up"
        );
        check::agreement(&sim, &honest).expect("agreement");
        let requests: Vec<B256> = client
            .sent
            .iter()
            .filter(|(t, _)| matches!(t.tx.body, TxBody::Infer(_)))
            .map(|(t, _)| t.id())
            .collect();
        // Draws are checked once they happened (two blocks after ordering).
        let h = sim.heights().into_iter().min().unwrap_or(0);
        sim.wait_height(&honest, h + 3, Duration::from_secs(60))
            .await;
        let drawn = check::draws(&sim, 0, &requests).expect("draws");
        assert!(drawn > 0, "some requests were drawn");
        if attack == Some(Attack::UnpaidTransactions) {
            // The Byzantine proposer's failing payable transfers were paid for.
            let spammer = sim
                .state(0)
                .ledger
                .account(&ByzantineApp::spammer().address())
                .unwrap();
            assert!(spammer.nonce > 0, "the Byzantine proposer led a block");
            assert_eq!(
                spammer.balance,
                verity_testkit::sim::CLIENT_FUNDS - 10 * u128::from(spammer.nonce),
                "every failed, included, payable transaction paid the fee"
            );
        }
        Figures {
            roots: check::roots(&sim, 0),
            auditor: context.auditor().state(),
            max_delay,
            recovery_ms: None,
        }
    })
}

/// A 2|2 partition for 30 s, then a heal.
fn partition(seed: u64) -> Figures {
    runner(seed).start(|context| async move {
        let mut sim = Sim::start(context.clone(), 4, seed, lan(), &clients(), vec![None; 4]).await;
        assert!(
            sim.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60))
                .await
        );
        sim.link_groups(&[vec![0, 1], vec![2, 3]], lan()).await;
        context.sleep(Duration::from_secs(30)).await;
        let stalled = sim.heights().into_iter().max().unwrap_or(0);
        sim.link_all(lan()).await;
        let healed = now_ms(&context);
        assert!(
            sim.wait_height(&[0, 1, 2, 3], stalled + 1, Duration::from_secs(120))
                .await,
            "liveness after the heal"
        );
        let recovery_ms = now_ms(&context) - healed;
        let mut client = Client::new("honest");
        drive(&sim, &mut client, 5).await;
        let max_delay = settle(&sim, &client, 2, Duration::from_secs(120)).await;
        check::agreement(&sim, &[0, 1, 2, 3]).expect("agreement");
        Figures {
            roots: check::roots(&sim, 0),
            auditor: context.auditor().state(),
            max_delay,
            recovery_ms: Some(recovery_ms),
        }
    })
}

/// Crash of one validator, then of the whole cluster, at seeded points.
fn crashes(seed: u64) -> Figures {
    runner(seed).start(|context| async move {
        let mut sim = Sim::start(context.clone(), 4, seed, lan(), &clients(), vec![None; 4]).await;
        let mut client = Client::new("honest");
        drive(&sim, &mut client, 4).await;
        // One validator crashes mid-run and comes back.
        let victim = (seed % 4) as usize;
        let before = check::roots(&sim, victim);
        sim.crash(victim);
        drive(&sim, &mut client, 4).await;
        sim.start_node(victim).await;
        let restarted = now_ms(&context);
        check::nothing_lost(&sim, victim, &before).expect("nothing final lost");
        let target = sim.heights().into_iter().max().unwrap_or(0);
        assert!(
            sim.wait_height(&[victim], target, Duration::from_secs(120))
                .await,
            "the restarted validator catches up"
        );
        let recovery_ms = now_ms(&context) - restarted;
        // The whole cluster crashes at once and restarts.
        let before: Vec<_> = (0..4).map(|i| check::roots(&sim, i)).collect();
        for i in 0..4 {
            sim.crash(i);
        }
        for i in 0..4 {
            sim.start_node(i).await;
        }
        for (i, b) in before.iter().enumerate() {
            check::nothing_lost(&sim, i, b).expect("nothing final lost");
        }
        drive(&sim, &mut client, 4).await;
        let max_delay = settle(&sim, &client, 0, Duration::from_secs(240)).await;
        check::agreement(&sim, &[0, 1, 2, 3]).expect("agreement");
        Figures {
            roots: check::roots(&sim, 0),
            auditor: context.auditor().state(),
            max_delay,
            recovery_ms: Some(recovery_ms),
        }
    })
}

/// A client spamming every validator (oversized, parked, unfunded and
/// failing transactions) while an honest client's transfers must still be
/// included within a bound.
fn spam(seed: u64) -> Figures {
    runner(seed).start(|context| async move {
        let sim = Sim::start(context.clone(), 4, seed, lan(), &clients(), vec![None; 4]).await;
        let spammer = PrivateKey::from_dev_seed("spam");
        let mut refused = 0usize;
        let mut honest = Client::new("honest");
        for round in 0..10u64 {
            for i in 0..4 {
                // Parked at future nonces, oversized, unfunded, failing.
                for k in 0..40u64 {
                    let fresh = PrivateKey::from_dev_seed(&format!("fresh-{round}-{k}"));
                    let txs = [
                        Tx {
                            chain_id: verity_testkit::sim::SIM_CHAIN,
                            from: spammer.address(),
                            nonce: 1_000 + round * 100 + k,
                            body: TxBody::Transfer {
                                to: Address::ZERO,
                                amount: 1,
                            },
                        }
                        .sign(&spammer),
                        Tx {
                            chain_id: verity_testkit::sim::SIM_CHAIN,
                            from: fresh.address(),
                            nonce: 0,
                            body: TxBody::Transfer {
                                to: Address::ZERO,
                                amount: 1,
                            },
                        }
                        .sign(&fresh),
                    ];
                    for tx in txs {
                        if sim.submit(i, tx).is_err() {
                            refused += 1;
                        }
                    }
                }
            }
            honest.send(&sim, round as usize);
            context.sleep(Duration::from_millis(200)).await;
        }
        assert!(refused > 0, "the pool refused spam");
        let max_delay = settle(&sim, &honest, 0, Duration::from_secs(120)).await;
        assert!(max_delay <= 10, "honest inclusion delay {max_delay} blocks");
        check::agreement(&sim, &[0, 1, 2, 3]).expect("agreement");
        Figures {
            roots: check::roots(&sim, 0),
            auditor: context.auditor().state(),
            max_delay,
            recovery_ms: None,
        }
    })
}

/// Validator 1's ledger disk fails (a full disk). redb refuses every write
/// after an I/O error until it is reopened, so retrying in place cannot
/// help: the node halts without acknowledging the block, stops serving
/// finality, and once restarted resumes from its last committed height with
/// the same roots as everyone else.
fn failing_disk(seed: u64) -> Figures {
    runner(seed).start(|context| async move {
        let mut sim = Sim::start(context.clone(), 4, seed, lan(), &clients(), vec![None; 4]).await;
        let mut client = Client::new("honest");
        drive(&sim, &mut client, 3).await;
        let committed = check::roots(&sim, 1);
        sim.nodes[1].ledger_disk.set_failing(true);
        drive(&sim, &mut client, 4).await;
        let start = context.current();
        while sim.state(1).halt_reason().is_none() {
            assert!(
                context.current().duration_since(start).unwrap_or_default()
                    < Duration::from_secs(60),
                "the node halts on a failing disk"
            );
            context.sleep(Duration::from_millis(100)).await;
        }
        let stuck = sim.state(1).ledger.height().unwrap_or(0);
        assert!(stuck >= committed.len() as u64);
        sim.nodes[1].ledger_disk.set_failing(false);
        sim.crash(1);
        sim.start_node(1).await;
        let restarted = now_ms(&context);
        check::nothing_lost(&sim, 1, &committed).expect("nothing committed lost");
        let max_delay = settle(&sim, &client, 1, Duration::from_secs(120)).await;
        let h = sim.heights().into_iter().max().unwrap_or(0);
        assert!(
            sim.wait_height(&[0, 1, 2, 3], h, Duration::from_secs(60))
                .await
        );
        check::agreement(&sim, &[0, 1, 2, 3]).expect("agreement");
        Figures {
            roots: check::roots(&sim, 0),
            auditor: context.auditor().state(),
            max_delay,
            recovery_ms: Some(now_ms(&context) - restarted),
        }
    })
}

/// Executors at validators 2 and 3 post zk results read at another scale
/// (attack 6): nothing may settle that differs from the honest output.
fn lying_prover(seed: u64) -> Figures {
    runner(seed).start(|context| async move {
        let executors = vec![
            Some(Behaviour::Honest),
            Some(Behaviour::Honest),
            Some(Behaviour::Lying(ZkLie::Rescaled)),
            Some(Behaviour::Lying(ZkLie::Rescaled)),
        ];
        let sim = Sim::start_with_executors(
            context.clone(),
            4,
            seed,
            lan(),
            &clients(),
            vec![None; 4],
            executors,
        )
        .await;
        let file: serde_json::Value =
            serde_json::from_str(include_str!("../../../examples/bench/bench_cnn.ref0.json"))
                .expect("sample");
        let input = verity_primitives::Tensors::from_json(&file["inputs"]).expect("input");
        let model = verity_primitives::ModelId::of_bytes(verity_testkit::sim::SIM_ZK_MODEL);
        let (honest, _) = sim.state(0).zk.prove(&model, &input).expect("honest proof");
        let mut client = Client::new("honest");
        let mut ids = Vec::new();
        for k in 0..6 {
            let tx = client.zk_infer(&input);
            ids.push(tx.id());
            sim.submit(k % 4, tx).expect("admitted");
            context.sleep(Duration::from_millis(300)).await;
        }
        // Every request ends: settled, or failed after the liars held it.
        let start = context.current();
        loop {
            let open = ids.iter().any(|id| {
                sim.state(0)
                    .ledger
                    .request(id)
                    .ok()
                    .flatten()
                    .is_some_and(|r| {
                        !matches!(
                            r.status,
                            verity_ledger::RequestStatus::Settled { .. }
                                | verity_ledger::RequestStatus::Failed { .. }
                        )
                    })
            });
            if !open {
                break;
            }
            assert!(
                context.current().duration_since(start).unwrap_or_default()
                    < Duration::from_secs(300),
                "zk requests did not end"
            );
            context.sleep(Duration::from_millis(200)).await;
        }
        let mut settled = 0;
        for id in &ids {
            let rec = sim.state(0).ledger.request(id).unwrap().unwrap();
            if let verity_ledger::RequestStatus::Settled { receipt_id } = rec.status {
                let receipt = sim.state(0).ledger.receipt(&receipt_id).unwrap().unwrap();
                assert_eq!(
                    receipt.output_hash,
                    honest.hash(),
                    "a zk result other than the honest output settled"
                );
                settled += 1;
            }
        }
        assert!(settled > 0, "honest executors settled some requests");
        let lies: Vec<B256> = [2, 3]
            .iter()
            .flat_map(|&i| sim.nodes[i].submitted.lock().unwrap().clone())
            .collect();
        assert!(!lies.is_empty(), "the liars were drawn and lied");
        for lie in &lies {
            let outcome = sim.state(0).ledger.tx_outcome(lie).unwrap();
            assert!(
                outcome.as_ref().is_none_or(|o| o.error.is_some()),
                "a lie was applied: {outcome:?}"
            );
        }
        check::agreement(&sim, &[0, 1, 2, 3]).expect("agreement");
        Figures {
            roots: check::roots(&sim, 0),
            auditor: context.auditor().state(),
            max_delay: 0,
            recovery_ms: None,
        }
    })
}

const FAST_SEEDS: [u64; 2] = [1, 2];

#[test]
fn a_lying_prover_never_settles() {
    lying_prover(1);
}

#[test]
fn a_failing_disk_halts_the_node_until_it_restarts() {
    failing_disk(1);
}

#[test]
fn honest_baseline_is_deterministic() {
    let a = steady(1, lan(), None);
    assert!(a.roots.len() >= 5);
    assert_eq!(a, steady(1, lan(), None), "same seed, same run");
}

#[test]
fn lossy_links() {
    for seed in FAST_SEEDS {
        steady(seed, lossy(0.7), None);
    }
}

/// The lossy link model (50% delivery). Known to fail: consensus
/// stalls under it with the devnet timeouts, with this application and with
/// a trivial one alike (a probe finalized 5 blocks in 300 simulated
/// seconds); kept to track the fix.
#[test]
#[ignore = "known liveness failure at 50% delivery; see the test's doc"]
fn lossy_links_half_delivery() {
    steady(1, lossy(0.5), None);
}

#[test]
fn partition_then_heal() {
    for seed in FAST_SEEDS {
        partition(seed);
    }
}

#[test]
fn crash_and_restart() {
    for seed in FAST_SEEDS {
        crashes(seed);
    }
}

#[test]
fn spam_does_not_delay_honest_transactions() {
    for seed in FAST_SEEDS {
        spam(seed);
    }
}

#[test]
fn byzantine_proposers() {
    for attack in [
        Attack::ForgedTransactions,
        Attack::UnpaidTransactions,
        Attack::LyingStateClaim,
    ] {
        steady(1, lan(), Some(attack));
    }
}

/// The full sweep: 20 seeds per scenario, with figures.
#[test]
#[ignore = "long: cargo test -p verity-testkit --test sim -- --ignored"]
fn full_sweep() {
    let started = std::time::Instant::now();
    type Scenario = (&'static str, Box<dyn Fn(u64) -> Figures>);
    let scenarios: Vec<Scenario> = vec![
        ("baseline", Box::new(|s| steady(s, lan(), None))),
        ("lossy-70%", Box::new(|s| steady(s, lossy(0.7), None))),
        ("partition", Box::new(partition)),
        ("crashes", Box::new(crashes)),
        ("spam", Box::new(spam)),
        ("failing-disk", Box::new(failing_disk)),
        ("lying-prover", Box::new(lying_prover)),
        (
            "unpaid-proposer",
            Box::new(|s| steady(s, lan(), Some(Attack::UnpaidTransactions))),
        ),
        (
            "forged-proposer",
            Box::new(|s| steady(s, lan(), Some(Attack::ForgedTransactions))),
        ),
        (
            "lying-claim",
            Box::new(|s| steady(s, lan(), Some(Attack::LyingStateClaim))),
        ),
    ];
    for (name, run) in scenarios {
        let t = std::time::Instant::now();
        let figures: Vec<Figures> = (1..=20).map(&*run).collect();
        let delays: Vec<u64> = figures.iter().map(|f| f.max_delay).collect();
        let recovery: Vec<u64> = figures.iter().filter_map(|f| f.recovery_ms).collect();
        println!(
            "{name}: 20 seeds in {:.1}s; max inclusion delay (blocks) max {} median {}; recovery ms {}",
            t.elapsed().as_secs_f64(),
            delays.iter().max().unwrap_or(&0),
            median(&delays),
            if recovery.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "max {} median {}",
                    recovery.iter().max().unwrap_or(&0),
                    median(&recovery)
                )
            }
        );
    }
    println!("suite wall time {:.1}s", started.elapsed().as_secs_f64());
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}
