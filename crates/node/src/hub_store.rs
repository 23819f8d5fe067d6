//! The ledger's [`ModelStore`] on the node's Hub: a published model's bytes
//! are on disk, synced, before the block that publishes them commits.

use verity_hub::Hub;
use verity_ledger::{ModelStore, ModelStoreError};
use verity_primitives::ModelId;

/// The Hub as the ledger's model store.
#[derive(Clone, Debug)]
pub struct HubStore(pub Hub);

impl ModelStore for HubStore {
    fn store(&self, id: &ModelId, bytes: &[u8]) -> Result<(), ModelStoreError> {
        let stored = self.0.put(bytes).map_err(|e| ModelStoreError {
            model: id.to_string(),
            source: Box::new(e),
        })?;
        if stored != *id {
            return Err(ModelStoreError {
                model: id.to_string(),
                source: format!("the bytes are model {stored}").into(),
            });
        }
        Ok(())
    }
}
