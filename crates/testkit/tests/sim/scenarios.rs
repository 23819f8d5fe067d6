//! The scenarios, each a function of its seed returning what it measured.

use super::harness::{clients, drive, now_ms, runner, settle, Client, Figures};
use commonware_p2p::simulated::Link;
use commonware_runtime::{Clock, Runner as _};
use std::time::Duration;
use verity_primitives::{Address, PrivateKey, Tx, TxBody, B256};
use verity_testkit::{
    faulty::ZkLie,
    sim::{check, lan, Attack, Behaviour, ByzantineApp, Sim},
};

/// The honest baseline, lossy links, or a Byzantine proposer at validator 3.
pub fn steady(seed: u64, link: Link, attack: Option<Attack>) -> Figures {
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
pub fn partition(seed: u64) -> Figures {
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
pub fn crashes(seed: u64) -> Figures {
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
pub fn spam(seed: u64) -> Figures {
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
pub fn failing_disk(seed: u64) -> Figures {
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
pub fn lying_prover(seed: u64) -> Figures {
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
        let file: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../examples/bench/bench_cnn.ref0.json"
        ))
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
