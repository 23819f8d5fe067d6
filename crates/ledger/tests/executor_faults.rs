//! Executors that fail or stay silent: signed failure results end a
//! request at once with the engine's error and refund it; a silent
//! executor's request is reassigned once, then expires.

mod common;

use common::{outcome_code, seed, World};
use verity_ledger::{draw_reassignment, RequestStatus, TxError};
use verity_primitives::{
    failure::MAX_FAILURE_ERROR_BYTES, InferenceFailure, PrivateKey, TxBody, B256,
};

/// Orders a request and applies the two blocks after it, so that it is
/// assigned; returns its id.
fn assigned_request(w: &mut World, l: &verity_ledger::Ledger, nonce: u64) -> B256 {
    let req = w.infer(nonce, 500);
    w.block(l, std::slice::from_ref(&req));
    w.block(l, &[]);
    w.block(l, &[]);
    assert!(matches!(
        l.request(&req.id()).unwrap().unwrap().status,
        RequestStatus::Assigned { .. }
    ));
    req.id()
}

fn assignee(l: &verity_ledger::Ledger, id: &B256) -> verity_primitives::Address {
    match l.request(id).unwrap().unwrap().status {
        RequestStatus::Assigned { executor, .. } | RequestStatus::Reassigned { executor, .. } => {
            executor
        }
        other => panic!("not assigned: {other:?}"),
    }
}

fn invalid_result(r: Result<(), TxError>, needle: &str) {
    match r {
        Err(TxError::InvalidResult(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected invalid_result with `{needle}`, got {other:?}"),
    }
}

#[test]
fn a_signed_failure_fails_the_request_at_once_and_refunds_the_escrow() {
    let mut w = World::new();
    let l = w.ledger();
    let rid = assigned_request(&mut w, &l, 0);
    let fail = w.failure(&w.exec, 0, rid, "exact: node `mm` (MatMul): overflow");
    l.check_tx(&fail, 16).unwrap();
    let out = w.block(&l, std::slice::from_ref(&fail));
    assert_eq!(out.applied, 1, "{out:?}");
    assert_eq!(outcome_code(&l, &fail), None);
    let RequestStatus::Failed { reason } = l.request(&rid).unwrap().unwrap().status else {
        panic!("the request fails at once")
    };
    assert_eq!(
        reason,
        format!(
            "executor {}: exact: node `mm` (MatMul): overflow",
            w.exec.address()
        )
    );
    // The whole escrow comes back; the executor earns nothing, and its
    // report is free (like a settling result), so an unfunded executor can
    // always report.
    assert_eq!(l.account(&w.alice.address()).unwrap().balance, 10_000 - 10);
    let exec = l.account(&w.exec.address()).unwrap();
    assert_eq!((exec.balance, exec.nonce), (0, 1));
    assert!(l.assigned_to(&w.exec.address()).unwrap().is_empty());
    // Neither a second report nor a late result applies.
    invalid_result(
        l.check_tx(&w.failure(&w.exec, 1, rid, "again"), 16),
        "not awaiting",
    );
    invalid_result(l.check_tx(&w.result(1, rid, 1.0), 16), "not awaiting");
    // The expiry that would have come later changes nothing.
    for _ in 0..5 {
        w.block(&l, &[]);
    }
    assert_eq!(l.account(&w.alice.address()).unwrap().balance, 10_000 - 10);
}

#[test]
fn failures_are_accepted_only_from_the_assigned_executor_with_a_valid_report() {
    let mut w = World::new();
    let l = w.ledger();
    let req = w.infer(0, 500);
    w.block(&l, std::slice::from_ref(&req));
    let rid = req.id();
    // Not assigned yet.
    invalid_result(
        l.check_tx(&w.failure(&w.exec, 0, rid, "boom"), 16),
        "not awaiting",
    );
    w.block(&l, &[]);
    w.block(&l, &[]);
    // Someone else's request: refused at admission and in a block.
    let stranger = PrivateKey::from_dev_seed("stranger");
    let forged = w.failure(&stranger, 0, rid, "boom");
    invalid_result(l.check_tx(&forged, 16), "assigned to");
    assert!(matches!(
        l.check_tx(&w.failure(&w.exec, 0, B256::repeat_byte(9), "boom"), 16),
        Err(TxError::UnknownRequest(_))
    ));
    // The assigned executor's transaction, but the report signed by
    // another key, or over another message.
    let mut wrong_signer = InferenceFailure::signed(&stranger, rid, "boom");
    let tx = w.tx(&w.exec, 0, TxBody::Failure(wrong_signer.clone()));
    invalid_result(l.check_tx(&tx, 16), "signature");
    wrong_signer.signature = InferenceFailure::signed(&w.exec, rid, "other").signature;
    let tx = w.tx(&w.exec, 0, TxBody::Failure(wrong_signer));
    invalid_result(l.check_tx(&tx, 16), "signature");
    // Bounded, printable messages only.
    let mut long = InferenceFailure::signed(&w.exec, rid, "x");
    long.error = "x".repeat(MAX_FAILURE_ERROR_BYTES + 1);
    let long = w.tx(&w.exec, 0, TxBody::Failure(long));
    invalid_result(l.check_tx(&long, 16), "limit");
    let mut control = InferenceFailure::signed(&w.exec, rid, "x");
    control.error = "line\u{1b}[2J".into();
    let control = w.tx(&w.exec, 0, TxBody::Failure(control));
    invalid_result(l.check_tx(&control, 16), "control character");
    // Included anyway by a Byzantine proposer: they fail (the sender pays
    // the fee), and the request stays assigned.
    w.block(&l, &[forged.clone(), long.clone()]);
    assert_eq!(outcome_code(&l, &forged).as_deref(), Some("invalid_result"));
    assert_eq!(outcome_code(&l, &long).as_deref(), Some("invalid_result"));
    assert_eq!(l.account(&w.exec.address()).unwrap().nonce, 1);
    assert_eq!(assignee(&l, &rid), w.exec.address());
}

#[test]
fn a_silent_executor_is_reassigned_once_to_another_then_the_request_expires() {
    let mut w = World::with_executors(3);
    w.genesis.params.request_timeout = 4;
    let l = w.ledger();
    let rid = assigned_request(&mut w, &l, 0);
    let assigned_at = w.height;
    let RequestStatus::Assigned {
        executor: silent,
        deadline,
        ..
    } = l.request(&rid).unwrap().unwrap().status
    else {
        panic!()
    };
    // The first executor has half the timeout.
    assert_eq!(deadline, assigned_at + 2);
    while w.height < deadline {
        w.block(&l, &[]);
        assert!(matches!(
            l.request(&rid).unwrap().unwrap().status,
            RequestStatus::Assigned { .. }
        ));
    }
    w.block(&l, &[]);
    let RequestStatus::Reassigned {
        executor,
        deadline: second,
        seed: used,
        silent: recorded,
    } = l.request(&rid).unwrap().unwrap().status
    else {
        panic!("reassigned after the first deadline")
    };
    assert_eq!(recorded, silent);
    assert_ne!(executor, silent, "another executor is drawn");
    // The request still expires when it would have without reassignment.
    assert_eq!(second, assigned_at + 4);
    // Anyone recomputes the second draw from the record.
    assert_eq!(used, seed(w.height));
    let all = l.executors().unwrap();
    assert_eq!(
        draw_reassignment(&all, &used.randomness(), &rid, &silent),
        Some(executor)
    );
    assert_eq!(l.assigned_to(&executor).unwrap().len(), 1);
    assert!(l.assigned_to(&silent).unwrap().is_empty());
    // The silent executor may no longer post; the new one may.
    let late = w.result_from(w.key_of(&silent), 0, rid, 1.0);
    invalid_result(l.check_tx(&late, 16), "assigned to");
    let good = w.result_from(w.key_of(&executor), 0, rid, 1.0);
    l.check_tx(&good, 16).unwrap();

    // A second request nobody answers: reassigned once, then it expires
    // and refunds.
    let rid2 = assigned_request(&mut w, &l, 1);
    let balance = l.account(&w.alice.address()).unwrap().balance;
    let mut reassignments = 0;
    for _ in 0..8 {
        let before = l.request(&rid2).unwrap().unwrap().status;
        w.block(&l, &[]);
        let after = l.request(&rid2).unwrap().unwrap().status;
        if matches!(after, RequestStatus::Reassigned { .. })
            && !matches!(before, RequestStatus::Reassigned { .. })
        {
            reassignments += 1;
        }
    }
    assert_eq!(reassignments, 1);
    let RequestStatus::Failed { reason } = l.request(&rid2).unwrap().unwrap().status else {
        panic!("expired")
    };
    assert!(reason.contains("reassigned from"), "{reason}");
    assert_eq!(
        l.account(&w.alice.address()).unwrap().balance,
        balance + 500
    );
}

#[test]
fn with_one_executor_the_reassignment_gives_it_a_second_deadline() {
    let mut w = World::new();
    let l = w.ledger();
    let rid = assigned_request(&mut w, &l, 0);
    // request_timeout 3: the first deadline is one block after assignment.
    w.block(&l, &[]);
    w.block(&l, &[]);
    let RequestStatus::Reassigned {
        executor, silent, ..
    } = l.request(&rid).unwrap().unwrap().status
    else {
        panic!("reassigned")
    };
    assert_eq!((executor, silent), (w.exec.address(), w.exec.address()));
    let res = w.result(0, rid, 2.0);
    let out = w.block(&l, std::slice::from_ref(&res));
    assert_eq!(out.receipts.len(), 1, "{out:?}");
}
