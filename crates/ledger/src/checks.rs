//! Transaction checks that read no state: signature, chain, model and
//! tensor schemas, limits.

use crate::{Params, TxError};
use verity_primitives::{
    Address, DType, InferenceRequest, Mode, ModelId, ModelManifest, SignedTx, TensorSpec, Tensors,
};

/// Checks that need no state: signature and chain.
pub(crate) fn check_static(stx: &SignedTx, chain_id: u64) -> Result<(), TxError> {
    if stx.tx.chain_id != chain_id {
        return Err(TxError::WrongChain {
            expected: chain_id,
            got: stx.tx.chain_id,
        });
    }
    stx.verify_signature()
        .map_err(|e| TxError::BadSignature(e.to_string()))
}

pub(crate) fn check_publish(
    params: &Params,
    from: &Address,
    m: &ModelManifest,
    onnx: &[u8],
) -> Result<(), TxError> {
    if onnx.len() as u64 > params.max_model_bytes {
        return Err(TxError::TooLarge(format!(
            "model is {} bytes, the limit is {}",
            onnx.len(),
            params.max_model_bytes
        )));
    }
    if ModelId::of_bytes(onnx) != m.model_id {
        return Err(TxError::InvalidModel(
            "model_id is not the CID of the ONNX bytes".into(),
        ));
    }
    if m.size != onnx.len() as u64 {
        return Err(TxError::InvalidModel(
            "manifest size does not match the ONNX bytes".into(),
        ));
    }
    if m.publisher != *from {
        return Err(TxError::InvalidModel(
            "manifest publisher is not the sender".into(),
        ));
    }
    m.validate_fields().map_err(TxError::InvalidModel)
}

/// The manifest must declare exactly what the oracle finds in the bytes
/// (inputs, outputs, operators); the bytes must load as a model.
pub(crate) fn check_model_bytes(
    models: Option<&dyn crate::ModelOracle>,
    m: &ModelManifest,
    onnx: &[u8],
) -> Result<(), TxError> {
    let Some(models) = models else {
        return Ok(());
    };
    // An engine panic on hostile bytes is a refusal, the same on every node.
    let shape = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| models.inspect(onnx)))
        .map_err(|_| TxError::InvalidModel("the engine failed on these bytes".into()))?
        .map_err(|e| TxError::ModelRejected {
            code: e.code,
            message: e.to_string(),
        })?;
    if shape.inputs != m.inputs || shape.outputs != m.outputs {
        return Err(TxError::InvalidModel(
            "declared inputs/outputs differ from the ONNX graph".into(),
        ));
    }
    if shape.ops != m.ops {
        return Err(TxError::InvalidModel(
            "declared ops differ from the ONNX graph".into(),
        ));
    }
    Ok(())
}

/// Checks an inference request against the model schema and limits.
pub(crate) fn check_request(
    params: &Params,
    m: &ModelManifest,
    req: &InferenceRequest,
) -> Result<(), TxError> {
    if !matches!(req.mode, Mode::Vanilla | Mode::Exact | Mode::Zk) {
        return Err(TxError::UnsupportedMode(req.mode.name().into()));
    }
    if req.max_fee < m.price {
        return Err(TxError::FeeTooLow {
            max_fee: req.max_fee,
            price: m.price,
        });
    }
    check_tensors(&m.inputs, &req.input, params.max_input_elements, "input")
        .map_err(TxError::InvalidInput)?;
    if req.mode == Mode::Zk {
        // the proof covers the model compiled for its declared shapes, symbolic ones as 1
        for spec in &m.inputs {
            let Some(t) = req.input.get(&spec.name) else {
                continue;
            };
            for (i, (d, n)) in spec.shape.iter().zip(&t.shape).enumerate() {
                if matches!(d, verity_primitives::Dim::Symbolic(_)) && *n != 1 {
                    return Err(TxError::InvalidInput(format!(
                        "zk mode proves one sample at a time: input `{}` dimension {i} is {n}, \
                         must be 1",
                        spec.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Outputs must match the manifest; exact mode writes float outputs as the
/// exact float64 value of their fixed-point result.
pub(crate) fn check_outputs(
    params: &Params,
    m: &ModelManifest,
    out: &Tensors,
    mode: Mode,
) -> Result<(), TxError> {
    let specs: Vec<TensorSpec> = m
        .outputs
        .iter()
        .map(|s| match (mode, s.dtype) {
            (Mode::Exact | Mode::Zk, DType::Float32) => TensorSpec {
                dtype: DType::Float64,
                ..s.clone()
            },
            _ => s.clone(),
        })
        .collect();
    check_tensors(&specs, out, params.max_output_elements, "output").map_err(TxError::InvalidResult)
}

/// Names, dtypes and shapes must match the declared specs exactly.
pub fn check_tensors(
    specs: &[verity_primitives::TensorSpec],
    t: &Tensors,
    max_elements: u64,
    what: &str,
) -> Result<(), String> {
    let total = t.total_len() as u64;
    if total > max_elements {
        return Err(format!(
            "{what} has {total} elements, the limit is {max_elements}"
        ));
    }
    for name in t.0.keys() {
        if !specs.iter().any(|s| &s.name == name) {
            let expected: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "unknown {what} tensor `{name}` (the model's {what}s are {expected:?})"
            ));
        }
    }
    for spec in specs {
        let tensor = t.get(&spec.name).ok_or_else(|| {
            format!(
                "missing {what} tensor `{}` ({})",
                spec.name,
                spec.describe()
            )
        })?;
        if tensor.dtype() != spec.dtype {
            return Err(format!(
                "{what} `{}` has dtype {}, expected {}",
                spec.name,
                tensor.dtype(),
                spec.describe()
            ));
        }
        if !spec.accepts_shape(&tensor.shape) {
            return Err(format!(
                "{what} `{}` has shape {:?}, expected {}",
                spec.name,
                tensor.shape,
                spec.describe()
            ));
        }
    }
    Ok(())
}
