//! How a proven output vector is read ([`OutputLayout`]): the compiled exact-mode model it
//! comes from and its outputs (name, shape, fixed-point scale or integer type, order).
//!
//! The layout is part of the [`crate::ModelCommitment`] (encoding version 3), so it is in the
//! commitment's digest that the network registers and in the Fiat–Shamir statement: a proof
//! verifies only under the layout it was made for, and a model registered once has one
//! layout. A model registered without one ([`OutputLayout::default`]) has a raw output
//! vector and an all-zero model id.

use crate::encode::Reader;
use crate::error::{DecodeError, ModelError};

/// Most outputs a layout may list.
pub const MAX_OUTPUTS: usize = 64;
/// Longest output name, in bytes.
pub const MAX_NAME: usize = 1024;
/// Most dimensions of an output.
pub const MAX_DIMS: usize = 16;
/// Largest output dimension (and output length).
pub const MAX_DIM: usize = 1 << 24;

/// One graph output, in the order the proven output vector concatenates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub name: String,
    pub shape: Vec<usize>,
    /// Fractional bits of a fixed-point output; `None` for integers.
    pub frac: Option<i32>,
}

impl OutputSpec {
    /// The number of values (`None` when the shape's product overflows).
    pub fn len(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d))
    }

    /// Whether the output has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// The compiled-model id and the outputs of a proven statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputLayout {
    /// The compiled exact-mode model id (`sha256("verity-exact-v1" ‖ sha256(onnx) ‖
    /// params)`), all zero for a model registered without one.
    pub model_id: [u8; 32],
    /// The outputs; empty: a raw output vector.
    pub outputs: Vec<OutputSpec>,
}

/// `frac` of an integer output in the encoding.
const INTEGER: i32 = i32::MIN;

impl OutputLayout {
    /// The total number of values the outputs hold (`None` on overflow).
    pub fn len(&self) -> Option<usize> {
        self.outputs
            .iter()
            .try_fold(0usize, |a, o| a.checked_add(o.len()?))
    }

    /// Whether the layout lists no output (a raw output vector).
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Within the encoding's limits, and covering an output vector of `out_len` values
    /// exactly (when it lists outputs).
    pub(crate) fn check(&self, out_len: usize) -> Result<(), ModelError> {
        let bad = |s| Err(ModelError::Layout(s));
        if self.outputs.len() > MAX_OUTPUTS {
            return bad("too many outputs");
        }
        for o in &self.outputs {
            if o.name.len() > MAX_NAME || o.shape.len() > MAX_DIMS {
                return bad("an output name or shape is too long");
            }
            if o.shape.iter().any(|d| *d > MAX_DIM) || o.frac == Some(INTEGER) {
                return bad("an output dimension or scale is out of range");
            }
        }
        if !self.is_empty() && self.len() != Some(out_len) {
            return bad("the outputs' shapes do not cover the output vector");
        }
        Ok(())
    }

    /// Appends the canonical encoding: `model id [32] | count (u32) | each output: frac
    /// (i32; i32::MIN = integer), name (u64 length, UTF-8), shape (u64 count, u64…)`.
    pub(crate) fn put(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.model_id);
        w.extend_from_slice(&(self.outputs.len() as u32).to_le_bytes());
        let len = |w: &mut Vec<u8>, n: usize| w.extend_from_slice(&(n as u64).to_le_bytes());
        for o in &self.outputs {
            w.extend_from_slice(&o.frac.unwrap_or(INTEGER).to_le_bytes());
            len(w, o.name.len());
            w.extend_from_slice(o.name.as_bytes());
            len(w, o.shape.len());
            for d in &o.shape {
                len(w, *d);
            }
        }
    }

    /// Decodes [`OutputLayout::put`]'s encoding; every length is bounded before anything
    /// is allocated.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut model_id = [0u8; 32];
        model_id.copy_from_slice(r.take(32)?);
        let count = r.u32()? as usize;
        if count > MAX_OUTPUTS {
            return Err(DecodeError("too many outputs"));
        }
        let mut outputs = Vec::with_capacity(count);
        for _ in 0..count {
            let frac = r.u32()? as i32;
            let nlen = r.len(MAX_NAME)?;
            let name = String::from_utf8(r.take(nlen)?.to_vec())
                .map_err(|_| DecodeError("output name is not UTF-8"))?;
            let ndim = r.len(MAX_DIMS)?;
            let shape = (0..ndim)
                .map(|_| r.len(MAX_DIM))
                .collect::<Result<_, _>>()?;
            outputs.push(OutputSpec {
                name,
                shape,
                frac: (frac != INTEGER).then_some(frac),
            });
        }
        Ok(Self { model_id, outputs })
    }
}
