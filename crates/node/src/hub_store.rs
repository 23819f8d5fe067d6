//! The ledger's [`ModelOracle`] on the node's engine and Hub: publishes are
//! checked against what the float engine finds in their bytes, and a
//! published model's bytes are on disk, synced, before the block that
//! publishes them commits.

use std::sync::Arc;
use verity_engine::Engine;
use verity_hub::Hub;
use verity_ledger::{InspectError, ModelOracle, ModelShape, ModelStoreError};
use verity_primitives::ModelId;

/// The engine and the Hub as the ledger's model oracle.
#[derive(Clone)]
pub struct NodeModels {
    pub hub: Hub,
    pub engine: Arc<dyn Engine>,
}

impl std::fmt::Debug for NodeModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeModels")
            .field("hub", &self.hub)
            .finish()
    }
}

impl ModelOracle for NodeModels {
    fn inspect(&self, bytes: &[u8]) -> Result<ModelShape, InspectError> {
        let info = self.engine.inspect(bytes).map_err(|e| InspectError {
            code: e.code(),
            source: Box::new(e),
        })?;
        Ok(ModelShape {
            inputs: info.inputs,
            outputs: info.outputs,
            ops: info.ops,
        })
    }

    fn store(&self, id: &ModelId, bytes: &[u8]) -> Result<(), ModelStoreError> {
        let stored = self.hub.put(bytes).map_err(|e| ModelStoreError {
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
