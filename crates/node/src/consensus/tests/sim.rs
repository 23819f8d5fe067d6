//! Four validators on the deterministic runtime and the simulated p2p
//! network: all finalize the same chain; a validator that is stopped and
//! restarted resumes from its storage and catches up by backfill.

use super::{assert_same_chain, TestApp};
use crate::consensus::{
    consensus_namespace, dev_genesis,
    engine::{start_engine, Channels, EngineConfig},
    ConsensusHandle, NetworkIdentity, PublicKey, Timeouts, ValidatorKeys, DEFAULT_MAX_BODY_BYTES,
};
use commonware_consensus::marshal;
use commonware_p2p::{
    simulated::{self, Link, Network, Oracle},
    Manager,
};
use commonware_parallel::Sequential;
use commonware_runtime::{
    deterministic::{self, Runner},
    Clock, Handle, Metrics, Runner as _,
};
use commonware_utils::{ordered::Set, NZU32};
use governor::Quota;
use std::time::Duration;

const CHAIN: &str = "verity-sim";
const QUOTA: Quota = Quota::per_second(NZU32!(u32::MAX));

type Ctx = deterministic::Context;

/// Registers the five channels of `key` and starts its engine.
async fn start_validator(
    context: &Ctx,
    oracle: &mut Oracle<PublicKey, Ctx>,
    keys: &ValidatorKeys,
    network: &NetworkIdentity,
    app: TestApp,
    index: usize,
    generation: usize,
) -> (ConsensusHandle, Handle<()>) {
    let me = keys.public_key();
    let control = oracle.control(me.clone());
    let votes = control.register(0, QUOTA).await.expect("register");
    let certificates = control.register(1, QUOTA).await.expect("register");
    let resolver = control.register(2, QUOTA).await.expect("register");
    let broadcast = control.register(3, QUOTA).await.expect("register");
    let backfill = control.register(4, QUOTA).await.expect("register");
    // Storage is per validator; metric labels must be unique per start.
    let uid = format!("validator_{index}");
    let context = context.with_label(&format!("{uid}_gen{generation}"));
    let marshal = marshal::resolver::p2p::init(
        &context.with_label("backfill"),
        marshal::resolver::p2p::Config {
            public_key: me.clone(),
            peer_provider: oracle.manager(),
            blocker: control.clone(),
            mailbox_size: 1024,
            initial: Duration::from_millis(500),
            timeout: Duration::from_secs(2),
            fetch_retry_timeout: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        backfill,
    );
    let cfg = EngineConfig {
        blocker: control,
        provider: oracle.manager(),
        partition_prefix: uid,
        keys: keys.clone(),
        network: network.clone(),
        namespace: consensus_namespace(CHAIN),
        timeouts: Timeouts::devnet(),
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        mailbox_size: 1024,
        deque_size: 10,
        freezer_table_initial_size: 2u32.pow(12),
        strategy: Sequential,
    };
    let channels = Channels {
        votes,
        certificates,
        resolver,
        broadcast,
        marshal,
    };
    start_engine(context.with_label("engine"), cfg, app, channels)
        .await
        .expect("engine starts")
}

async fn wait_for(context: &Ctx, apps: &[&TestApp], height: u64) {
    while apps.iter().any(|a| a.height() < height) {
        context.sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the scenario and returns every validator's delivered digests.
fn scenario(seed: u64) -> Vec<Vec<[u8; 32]>> {
    let cfg = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(600)));
    Runner::new(cfg).start(|context| async move {
        let (network, mut oracle) = Network::new(
            context.with_label("network"),
            simulated::Config {
                max_size: 1024 * 1024,
                disconnect_on_block: true,
                tracked_peer_sets: Some(1),
            },
        );
        network.start();

        let (keys, identity) = dev_genesis(4, seed);
        let participants: Vec<PublicKey> = identity.participants().to_vec();
        oracle
            .manager()
            .track(0, Set::from_iter_dedup(participants.clone()))
            .await;
        let link = Link {
            latency: Duration::from_millis(10),
            jitter: Duration::from_millis(3),
            success_rate: 1.0,
        };
        for a in &participants {
            for b in &participants {
                if a != b {
                    oracle
                        .add_link(a.clone(), b.clone(), link.clone())
                        .await
                        .expect("link");
                }
            }
        }

        let apps: Vec<TestApp> = (0..4).map(|_| TestApp::default()).collect();
        let mut tasks = Vec::new();
        let mut handles = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let (handle, task) =
                start_validator(&context, &mut oracle, k, &identity, apps[i].clone(), i, 0).await;
            handles.push(handle);
            tasks.push(task);
        }

        // Everyone finalizes.
        wait_for(&context, &apps.iter().collect::<Vec<_>>(), 10).await;
        let (latest, _) = handles[1].latest_finalized().await.expect("latest");
        assert!(latest >= 10);
        let block = handles[1].finalized_block(5).await.expect("block 5");
        assert_eq!(block.header.height, 5);
        let certified = handles[1]
            .certified_block_at_or_after(5, 100)
            .await
            .expect("a certified block");
        assert!(certified.header.height >= 5);
        let cert = certified.finalization.expect("certificate");
        crate::consensus::verify_finalization(
            &identity.identity_bytes(),
            CHAIN,
            &cert,
            &certified.header.digest().0,
        )
        .expect("certificate verifies");

        // Stop validator 0; the other three keep finalizing.
        let stopped_at = apps[0].height();
        tasks.remove(0).abort();
        let others: Vec<&TestApp> = apps[1..].iter().collect();
        let before = others.iter().map(|a| a.height()).max().unwrap_or(0);
        wait_for(&context, &others, before + 10).await;
        assert!(
            apps[0].height() <= stopped_at + 1,
            "stopped validator kept going"
        );

        // Restart it from its storage: it resumes and catches up.
        let (handle0, _task0) = start_validator(
            &context,
            &mut oracle,
            &keys[0],
            &identity,
            apps[0].clone(),
            0,
            1,
        )
        .await;
        let (resumed, _) = handle0.latest_finalized().await.expect("state survived");
        assert!(resumed >= 1);
        let target = others.iter().map(|a| a.height()).max().unwrap_or(0) + 3;
        wait_for(&context, &apps.iter().collect::<Vec<_>>(), target).await;

        let delivered: Vec<_> = apps.iter().map(|a| a.delivered()).collect();
        assert_same_chain(&delivered, &identity.identity_bytes(), CHAIN);
        delivered
            .iter()
            .map(|d| d.iter().map(|x| x.digest.0).collect())
            .collect()
    })
}

#[test]
fn four_validators_finalize_restart_and_catch_up() {
    for seed in [1, 2, 3] {
        let chains = scenario(seed);
        for chain in &chains {
            assert!(chain.len() >= 20);
        }
        if seed == 1 {
            // The deterministic runtime replays the same execution.
            assert_eq!(chains, scenario(seed));
        }
    }
}

/// Starts four validators on a lossless simulated network.
async fn four(
    context: &Ctx,
    seed: u64,
    apps: &[TestApp],
) -> (
    Oracle<PublicKey, Ctx>,
    Vec<ValidatorKeys>,
    NetworkIdentity,
    Vec<Handle<()>>,
) {
    four_linked(
        context,
        seed,
        apps,
        Link {
            latency: Duration::from_millis(10),
            jitter: Duration::from_millis(3),
            success_rate: 1.0,
        },
    )
    .await
}

async fn four_linked(
    context: &Ctx,
    seed: u64,
    apps: &[TestApp],
    link: Link,
) -> (
    Oracle<PublicKey, Ctx>,
    Vec<ValidatorKeys>,
    NetworkIdentity,
    Vec<Handle<()>>,
) {
    let (network, mut oracle) = Network::new(
        context.with_label("network"),
        simulated::Config {
            max_size: 1024 * 1024,
            disconnect_on_block: true,
            tracked_peer_sets: Some(1),
        },
    );
    network.start();
    let (keys, identity) = dev_genesis(4, seed);
    let participants: Vec<PublicKey> = identity.participants().to_vec();
    oracle
        .manager()
        .track(0, Set::from_iter_dedup(participants.clone()))
        .await;
    for a in &participants {
        for b in &participants {
            if a != b {
                oracle
                    .add_link(a.clone(), b.clone(), link.clone())
                    .await
                    .expect("link");
            }
        }
    }
    let mut tasks = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let (_, task) =
            start_validator(context, &mut oracle, k, &identity, apps[i].clone(), i, 0).await;
        tasks.push(task);
    }
    (oracle, keys, identity, tasks)
}

#[test]
fn every_block_carries_a_verified_seed_of_its_parent_view() {
    let cfg = deterministic::Config::default()
        .with_seed(7)
        .with_timeout(Some(Duration::from_secs(300)));
    Runner::new(cfg).start(|context| async move {
        let apps: Vec<TestApp> = (0..4).map(|_| TestApp::default()).collect();
        let (_oracle, _keys, identity, _tasks) = four(&context, 7, &apps).await;
        wait_for(&context, &apps.iter().collect::<Vec<_>>(), 12).await;
        let scheme = crate::consensus::Scheme::certificate_verifier(
            &consensus_namespace(CHAIN),
            identity.identity(),
        );
        let chain = apps[0].delivered();
        assert!(chain[0].seed.is_none(), "the child of genesis has no seed");
        let mut views = Vec::new();
        for d in &chain[1..] {
            let seed = d.seed.as_ref().expect("every later block carries a seed");
            crate::consensus::check_seed(&scheme, d.height - 1, seed.view, Some(seed))
                .expect("seed verifies against the identity");
            views.push(seed.view);
        }
        assert!(
            views.windows(2).all(|w| w[0] < w[1]),
            "views increase: {views:?}"
        );
        // A forged or misplaced seed is refused.
        let mut forged = chain[3].seed.clone().unwrap();
        forged.signature[5] ^= 1;
        assert!(crate::consensus::check_seed(&scheme, 3, forged.view, Some(&forged)).is_err());
        let other = chain[4].seed.clone().unwrap();
        assert!(matches!(
            crate::consensus::check_seed(&scheme, 3, forged.view, Some(&other)),
            Err(crate::consensus::SeedError::WrongView { .. })
        ));
        assert!(crate::consensus::check_seed(&scheme, 3, 1, None).is_err());
    });
}

#[test]
fn a_failed_apply_is_retried_and_never_acknowledged() {
    let cfg = deterministic::Config::default()
        .with_seed(3)
        .with_timeout(Some(Duration::from_secs(600)));
    Runner::new(cfg).start(|context| async move {
        let apps: Vec<TestApp> = (0..4).map(|_| TestApp::default()).collect();
        // Validator 0 fails twice at height 5 (transient); validator 1 fails
        // for good at height 6.
        *apps[0].fail.lock().unwrap() = Some((5, 2));
        *apps[1].fail.lock().unwrap() = Some((6, u32::MAX));
        let (mut oracle, keys, identity, mut tasks) = four(&context, 3, &apps).await;
        let healthy = [&apps[0], &apps[2], &apps[3]];
        wait_for(&context, &healthy, 20).await;
        assert_eq!(apps[0].halted.lock().unwrap().clone(), None);
        // Validator 1 halted at 6 and went no further: block 6 was never
        // acknowledged, so nothing after it was delivered either.
        assert_eq!(*apps[1].halted.lock().unwrap(), Some(6));
        assert_eq!(apps[1].height(), 5);
        // Once the cause is gone, a restart resumes from block 6.
        tasks.remove(1).abort();
        *apps[1].fail.lock().unwrap() = None;
        *apps[1].halted.lock().unwrap() = None;
        let _restarted = start_validator(
            &context,
            &mut oracle,
            &keys[1],
            &identity,
            apps[1].clone(),
            1,
            1,
        )
        .await;
        let target = apps[0].height() + 2;
        wait_for(&context, &apps.iter().collect::<Vec<_>>(), target).await;
        let delivered: Vec<_> = apps.iter().map(|a| a.delivered()).collect();
        assert_same_chain(&delivered, &identity.identity_bytes(), CHAIN);
    });
}
