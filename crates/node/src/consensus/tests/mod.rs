//! Consensus tests: a trivial application, the deterministic simulation,
//! a real TCP network with a `kill -9`, and certificate checks.

mod cert;
mod sim;
mod tcp;

use super::{Application, ApplyFailure};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use verity_primitives::{BlockHeader, StateClaim, B256};

/// One delivered block as the test application saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Delivered {
    pub height: u64,
    pub digest: B256,
    pub parent: B256,
    pub finalization: Option<Vec<u8>>,
    pub seed: Option<verity_primitives::BlockSeed>,
}

/// Claims the parent's digest as "state root" and puts the height in the
/// body, so verification has something to check.
#[derive(Clone, Default)]
pub(super) struct TestApp {
    pub delivered: Arc<Mutex<Vec<Delivered>>>,
    /// Fail processing of this height this many more times.
    pub fail: Arc<Mutex<Option<(u64, u32)>>>,
    /// The height the application was halted at, if it was.
    pub halted: Arc<Mutex<Option<u64>>>,
}

fn body_for(height: u64) -> Bytes {
    Bytes::from(format!("block {height}").into_bytes())
}

impl TestApp {
    pub fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().expect("lock").clone()
    }

    /// Highest delivered height (0 if none).
    pub fn height(&self) -> u64 {
        self.delivered
            .lock()
            .expect("lock")
            .last()
            .map_or(0, |d| d.height)
    }
}

impl Application for TestApp {
    async fn propose(&self, parent: &BlockHeader) -> (StateClaim, Bytes) {
        let claim = StateClaim {
            height: parent.height,
            root: parent.digest(),
        };
        (claim, body_for(parent.height + 1))
    }

    async fn verify(&self, parent: &BlockHeader, block: &BlockHeader, body: &Bytes) -> bool {
        block.claim.height == parent.height
            && block.claim.root == parent.digest()
            && *body == body_for(block.height)
    }

    async fn finalized(
        &self,
        header: BlockHeader,
        body: Bytes,
        finalization: Option<Vec<u8>>,
    ) -> Result<(), ApplyFailure> {
        assert_eq!(body, body_for(header.height));
        {
            let mut fail = self.fail.lock().expect("lock");
            if let Some((h, n)) = fail.as_mut() {
                if *h == header.height && *n > 0 {
                    *n -= 1;
                    return Err(ApplyFailure::new(std::io::Error::other("disk full")));
                }
            }
        }
        let mut delivered = self.delivered.lock().expect("lock");
        let entry = Delivered {
            height: header.height,
            digest: header.digest(),
            parent: header.parent,
            finalization,
            seed: header.seed.clone(),
        };
        // At-least-once delivery: a re-delivered block must be identical.
        if let Some(prev) = delivered.iter().find(|d| d.height == header.height) {
            assert_eq!(prev.digest, entry.digest, "conflicting finalized blocks");
            return Ok(());
        }
        if let Some(last) = delivered.last() {
            assert_eq!(last.height + 1, header.height, "out of order delivery");
            assert_eq!(last.digest, header.parent, "broken parent link");
        }
        delivered.push(entry);
        Ok(())
    }

    fn halt(&self, height: u64, _cause: &ApplyFailure) {
        *self.halted.lock().expect("lock") = Some(height);
    }
}

/// Asserts that every application delivered the same chain (on the heights
/// they have in common) and that certificates verify.
pub(super) fn assert_same_chain(apps: &[Vec<Delivered>], identity: &[u8], chain_id: &str) {
    let reference = apps
        .iter()
        .max_by_key(|a| a.len())
        .expect("at least one app");
    for app in apps {
        for d in app {
            let r = reference
                .iter()
                .find(|r| r.height == d.height)
                .expect("reference has every height");
            assert_eq!(r.digest, d.digest, "divergence at height {}", d.height);
            if let Some(cert) = &d.finalization {
                let info = super::verify_finalization(identity, chain_id, cert, &d.digest.0)
                    .expect("delivered certificate verifies");
                assert_eq!(info.digest, d.digest.0);
            }
        }
    }
}
