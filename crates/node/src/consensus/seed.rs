//! Per-view VRF seeds for executor draws (DESIGN §2.3).
//!
//! Every notarization and finalization certificate of the threshold scheme
//! carries the group's signature over its round: the view's *seed*. No
//! coalition below the threshold can compute it before the view resolves,
//! and it is unique, so nobody can grind it. A proposer puts the seed of its
//! parent's view into the header ([`BlockSeed`]); every verifier checks it
//! against the network identity before voting ([`check_seed`]). The ledger
//! then draws executors for requests ordered in block `h` from the seed in
//! block `h + 2`, which is the seed of block `h + 1`'s view: a view after the
//! one that ordered the request.
//!
//! [`SeedReporter`] sits between simplex and marshal and records the seeds
//! of the certificates it sees in a bounded [`SeedCache`].

use super::{Scheme, EPOCH};
use commonware_codec::{DecodeExt, Encode};
use commonware_consensus::{
    simplex::{
        scheme::bls12381_threshold::vrf::Seed, scheme::bls12381_threshold::vrf::Seedable,
        types::Activity,
    },
    types::{Round, View},
    Reporter,
};
use commonware_cryptography::{
    bls12381::primitives::variant::{MinSig, Variant},
    sha256::Digest,
};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};
use verity_primitives::BlockSeed;

/// Seeds of recent views (at most [`SeedCache::CAPACITY`], oldest dropped).
#[derive(Clone, Debug, Default)]
pub struct SeedCache {
    seeds: Arc<Mutex<BTreeMap<u64, Vec<u8>>>>,
}

impl SeedCache {
    /// Views remembered.
    pub const CAPACITY: usize = 4_096;

    pub fn insert(&self, view: u64, signature: Vec<u8>) {
        let mut seeds = self.seeds.lock().expect("seed cache lock");
        seeds.insert(view, signature);
        while seeds.len() > Self::CAPACITY {
            seeds.pop_first();
        }
    }

    /// The seed of `view`, if a certificate of that view was seen.
    pub fn get(&self, view: u64) -> Option<BlockSeed> {
        let seeds = self.seeds.lock().expect("seed cache lock");
        seeds.get(&view).map(|signature| BlockSeed {
            view,
            signature: signature.clone(),
        })
    }
}

/// Records the seed of every certificate simplex reports, then passes the
/// activity on.
#[derive(Clone, Debug)]
pub struct SeedReporter<R> {
    pub inner: R,
    pub seeds: SeedCache,
}

impl<R> Reporter for SeedReporter<R>
where
    R: Reporter<Activity = Activity<Scheme, Digest>>,
{
    type Activity = Activity<Scheme, Digest>;

    async fn report(&mut self, activity: Self::Activity) {
        let seed = match &activity {
            Activity::Notarization(n) | Activity::Certification(n) => Some(n.seed()),
            Activity::Finalization(f) => Some(f.seed()),
            _ => None,
        };
        if let Some(seed) = seed.filter(|s| s.round.epoch() == EPOCH) {
            self.seeds
                .insert(seed.round.view().get(), seed.signature.encode().to_vec());
        }
        self.inner.report(activity).await;
    }
}

/// Why a header's seed is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error("the child of genesis carries no seed")]
    Unexpected,
    #[error("the header carries no seed")]
    Missing,
    #[error("the seed is for view {found}, the parent's view is {expected}")]
    WrongView { expected: u64, found: u64 },
    #[error("the seed signature does not decode")]
    Malformed,
    #[error("the seed signature does not verify against the network identity")]
    BadSignature,
}

/// Checks that `seed` is the seed of `parent_view` under `scheme`'s group
/// key (none for the child of genesis, `parent_height == 0`).
pub fn check_seed(
    scheme: &Scheme,
    parent_height: u64,
    parent_view: u64,
    seed: Option<&BlockSeed>,
) -> Result<(), SeedError> {
    let seed = match (parent_height, seed) {
        (0, None) => return Ok(()),
        (0, Some(_)) => return Err(SeedError::Unexpected),
        (_, None) => return Err(SeedError::Missing),
        (_, Some(s)) => s,
    };
    if seed.view != parent_view {
        return Err(SeedError::WrongView {
            expected: parent_view,
            found: seed.view,
        });
    }
    if seed.signature.len() > BlockSeed::MAX_SIGNATURE {
        return Err(SeedError::Malformed);
    }
    let signature = <MinSig as Variant>::Signature::decode(seed.signature.as_slice())
        .map_err(|_| SeedError::Malformed)?;
    let round = Round::new(EPOCH, View::new(seed.view));
    if !Seed::<MinSig>::new(round, signature).verify(scheme) {
        return Err(SeedError::BadSignature);
    }
    Ok(())
}
