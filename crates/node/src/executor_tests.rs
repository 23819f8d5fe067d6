//! The executor's runner: time limits, worker slots, outcomes.

use super::*;
use std::time::Instant;

fn output() -> Result<(Tensors, Option<Vec<u8>>), RunError> {
    Ok((Tensors::default(), None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_the_time_limit_is_reported_as_failed() {
    let workers = Arc::new(Semaphore::new(2));
    let start = Instant::now();
    let out = run_limited(workers, Duration::from_millis(100), || {
        std::thread::sleep(Duration::from_secs(2));
        output()
    })
    .await;
    assert_eq!(
        out,
        Outcome::Failed("execution exceeded the time limit of 0.1 s".into())
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_errors_are_reported_and_local_faults_are_not() {
    let workers = Arc::new(Semaphore::new(1));
    let limit = Duration::from_secs(5);
    let out = run_limited(workers.clone(), limit, || {
        Err(RunError::Engine("invalid input: X is out of range".into()))
    })
    .await;
    assert_eq!(
        out,
        Outcome::Failed("invalid input: X is out of range".into())
    );
    let out = run_limited(workers.clone(), limit, || {
        Err(RunError::Local("hub: file missing".into()))
    })
    .await;
    assert_eq!(out, Outcome::Local("hub: file missing".into()));
    let out = run_limited(workers.clone(), limit, || -> Result<_, RunError> {
        panic!("boom")
    })
    .await;
    assert!(matches!(out, Outcome::Failed(m) if m.contains("panicked")));
    // The key signs a bounded report for a failure, nothing for a local fault.
    let key = PrivateKey::from_dev_seed("exec");
    let long = Outcome::Failed("e\n".repeat(4000));
    let Some(TxBody::Failure(f)) = body(&key, B256::ZERO, &long) else {
        panic!("a failure report")
    };
    f.validate().unwrap();
    assert_eq!(f.signer().unwrap(), key.address());
    assert_eq!(body(&key, B256::ZERO, &Outcome::Local("x".into())), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_does_not_hold_up_the_others() {
    let workers = Arc::new(Semaphore::new(2));
    let slow = tokio::spawn(run_limited(
        workers.clone(),
        Duration::from_secs(10),
        || {
            std::thread::sleep(Duration::from_secs(3));
            output()
        },
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let fast = run_limited(workers.clone(), Duration::from_secs(10), output).await;
    assert!(matches!(fast, Outcome::Output { .. }));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(!slow.is_finished());
    slow.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_run_keeps_its_worker_slot_until_it_ends() {
    let workers = Arc::new(Semaphore::new(1));
    let out = run_limited(workers.clone(), Duration::from_millis(50), || {
        std::thread::sleep(Duration::from_millis(600));
        output()
    })
    .await;
    assert!(matches!(out, Outcome::Failed(_)));
    assert_eq!(
        workers.available_permits(),
        0,
        "the abandoned run still works"
    );
    let start = Instant::now();
    run_limited(workers.clone(), Duration::from_secs(5), output).await;
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(workers.available_permits(), 1);
}
