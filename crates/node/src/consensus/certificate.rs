//! Offline checks of finalization certificates.
//!
//! A finalization certificate is the encoded commonware `Finalization`: the
//! proposal (round, parent view, block digest) and one recovered threshold
//! signature pair (vote + VRF seed). Checking it needs only the group public
//! key and the chain id (which fixes the signing namespace).

use super::{consensus_namespace, ConsensusError, Finalization, Identity, Scheme, EPOCH};
use commonware_codec::{Decode, DecodeExt, Encode};
use commonware_consensus::{Epochable, Viewable};
use commonware_parallel::Sequential;
use rand::rngs::OsRng;
use verity_primitives::codec::sha256;

/// What a valid finalization certificate says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedInfo {
    /// The consensus view in which the block was finalized.
    pub view: u64,
    /// The view of the block's parent proposal.
    pub parent_view: u64,
    /// The finalized block digest (= header digest).
    pub digest: [u8; 32],
    /// sha256 of the view's VRF seed signature: unbiasable randomness for
    /// this view (see [`seed_of`] for when it may be used).
    pub seed: [u8; 32],
}

/// Decodes `cert` and checks that it is a valid finalization, under the
/// group key `identity` (encoded) and the chain `chain_id`, of exactly
/// `block_digest`.
pub fn verify_finalization(
    identity: &[u8],
    chain_id: &str,
    cert: &[u8],
    block_digest: &[u8; 32],
) -> Result<FinalizedInfo, ConsensusError> {
    let identity =
        Identity::decode(identity).map_err(|e| ConsensusError::Identity(e.to_string()))?;
    let finalization = decode_finalization(cert)?;
    if finalization.epoch() != EPOCH {
        return Err(ConsensusError::WrongEpoch(finalization.epoch().get()));
    }
    let found = finalization.proposal.payload.0;
    if &found != block_digest {
        return Err(ConsensusError::DigestMismatch {
            expected: hex::encode(block_digest),
            found: hex::encode(found),
        });
    }
    let scheme = Scheme::certificate_verifier(&consensus_namespace(chain_id), identity);
    if !finalization.verify(&mut OsRng, &scheme, &Sequential) {
        return Err(ConsensusError::BadSignature);
    }
    info_of(&finalization)
}

/// The VRF seed (sha256 of the seed signature) and view of a certificate,
/// WITHOUT checking its signature: use only on certificates that were
/// verified (e.g. those consensus hands out, or after
/// [`verify_finalization`]).
///
/// The seed of view `v` is known to Byzantine validators before `v`
/// resolves, so randomness for work ordered in view `v` must come from a
/// later view (DESIGN.md §2).
pub fn seed_of(cert: &[u8]) -> Result<(u64, [u8; 32]), ConsensusError> {
    let info = info_of(&decode_finalization(cert)?)?;
    Ok((info.view, info.seed))
}

/// Decodes an encoded finalization (no trailing bytes allowed).
pub fn decode_finalization(cert: &[u8]) -> Result<Finalization, ConsensusError> {
    Finalization::decode_cfg(cert, &())
        .map_err(|e| ConsensusError::CertificateDecode(e.to_string()))
}

fn info_of(finalization: &Finalization) -> Result<FinalizedInfo, ConsensusError> {
    let signature = finalization
        .certificate
        .get()
        .ok_or_else(|| ConsensusError::CertificateDecode("invalid signature point".into()))?;
    Ok(FinalizedInfo {
        view: finalization.view().get(),
        parent_view: finalization.proposal.parent.get(),
        digest: finalization.proposal.payload.0,
        seed: sha256(&signature.seed_signature.encode()),
    })
}
