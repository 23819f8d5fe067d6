//! `verify_finalization` against real threshold certificates.

use super::super::{
    consensus_namespace, dev_genesis, seed_of, verify_finalization, ConsensusError, Finalization,
    EPOCH,
};
use commonware_codec::Encode;
use commonware_consensus::{
    simplex::types::{Finalize, Proposal},
    types::{Round, View},
};
use commonware_cryptography::sha256;
use commonware_parallel::Sequential;

const CHAIN: &str = "verity-test";

fn certificate(seed: u64, digest: [u8; 32], view: u64) -> (Vec<u8>, Vec<u8>) {
    let (keys, network) = dev_genesis(4, seed);
    let ns = consensus_namespace(CHAIN);
    let schemes: Vec<_> = keys
        .iter()
        .map(|k| network.signer_scheme(&ns, k).unwrap())
        .collect();
    let proposal = Proposal::new(
        Round::new(EPOCH, View::new(view)),
        View::new(view - 1),
        sha256::Digest::from(digest),
    );
    // A quorum (3 of 4) is enough.
    let votes: Vec<_> = schemes[..3]
        .iter()
        .map(|s| Finalize::sign(s, proposal.clone()).unwrap())
        .collect();
    let finalization = Finalization::from_finalizes(&schemes[0], &votes, &Sequential).unwrap();
    (finalization.encode().to_vec(), network.identity_bytes())
}

#[test]
fn accepts_a_real_certificate() {
    let digest = [7u8; 32];
    let (cert, identity) = certificate(1, digest, 9);
    let info = verify_finalization(&identity, CHAIN, &cert, &digest).unwrap();
    assert_eq!(info.view, 9);
    assert_eq!(info.parent_view, 8);
    assert_eq!(info.digest, digest);
    assert_eq!(seed_of(&cert).unwrap(), (9, info.seed));
    // The seed is a property of the view, not of the voters.
    let (other_cert, _) = certificate(1, [8u8; 32], 9);
    assert_eq!(seed_of(&other_cert).unwrap().1, info.seed);
}

#[test]
fn rejects_wrong_digest() {
    let (cert, identity) = certificate(1, [7u8; 32], 9);
    assert!(matches!(
        verify_finalization(&identity, CHAIN, &cert, &[8u8; 32]),
        Err(ConsensusError::DigestMismatch { .. })
    ));
}

#[test]
fn rejects_wrong_identity_and_chain() {
    let digest = [7u8; 32];
    let (cert, _) = certificate(1, digest, 9);
    let (_, other_identity) = certificate(2, digest, 9);
    assert!(matches!(
        verify_finalization(&other_identity, CHAIN, &cert, &digest),
        Err(ConsensusError::BadSignature)
    ));
    let (_, identity) = certificate(1, digest, 9);
    assert!(matches!(
        verify_finalization(&identity, "other-chain", &cert, &digest),
        Err(ConsensusError::BadSignature)
    ));
    assert!(matches!(
        verify_finalization(&[1, 2, 3], CHAIN, &cert, &digest),
        Err(ConsensusError::Identity(_))
    ));
}

#[test]
fn rejects_tampered_certificates() {
    let digest = [7u8; 32];
    let (cert, identity) = certificate(1, digest, 9);
    // Flip one bit at every position: nothing may verify, nothing may panic.
    for i in 0..cert.len() {
        let mut bad = cert.clone();
        bad[i] ^= 0x01;
        assert!(
            verify_finalization(&identity, CHAIN, &bad, &digest).is_err(),
            "tampered byte {i} accepted"
        );
        let _ = seed_of(&bad);
    }
    // Truncated and extended encodings.
    assert!(verify_finalization(&identity, CHAIN, &cert[..cert.len() - 1], &digest).is_err());
    let mut longer = cert.clone();
    longer.push(0);
    assert!(verify_finalization(&identity, CHAIN, &longer, &digest).is_err());
    assert!(verify_finalization(&identity, CHAIN, &[], &digest).is_err());
}
