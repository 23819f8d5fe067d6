//! Deterministic simulation scenarios: the real ledger application under the
//! real consensus engine, with only adversaries mocked (see
//! `verity_testkit::sim`). `cargo test` runs each scenario over a few seeds;
//! `cargo test -p verity-testkit --test sim -- --ignored` runs the full
//! sweep (20 seeds each) and prints the figures.

mod harness;
mod scenarios;

use harness::Figures;
use scenarios::*;
use verity_testkit::sim::{lan, lossy, Attack};

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
