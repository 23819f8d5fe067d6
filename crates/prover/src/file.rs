//! The standalone proof file: everything a verifier needs, in one versioned binary.
//!
//! Layout (integers little-endian, lengths `u64`):
//! `"VPRF" | version 1 | model id [32] | outputs (count; each: frac (i32; i32::MIN =
//!  integer), name (len, UTF-8), shape (len, u64…)) | commitment (len, bytes) | input (len, i64…) |
//!  output (len, i64…) | proof (len, bytes)`; trailing bytes are rejected.
//!
//! `model id` is the compiled exact-mode model id (`sha256("verity-exact-v1" ‖ sha256(onnx)
//! ‖ params)`): informational for the verifier, checked when the ONNX file is at hand.

use crate::error::{DecodeError, VerifyError};
use crate::exact::OutputSpec;
use crate::model::ModelCommitment;
use crate::protocol::{verify, Proof};
use verity_engine::exact::dequantize;
use verity_engine::{Tensor, TensorData, Tensors};

const MAGIC: &[u8; 4] = b"VPRF";
/// The proof file format version.
pub const FILE_VERSION: u8 = 1;
/// Largest input or output vector a file may carry.
const MAX_VALUES: usize = 1 << 24;

/// A proof with its statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofFile {
    /// The compiled exact-mode model id.
    pub model_id: [u8; 32],
    /// The output tensors (name, shape, fractional bits), whose values `output`
    /// concatenates in this order.
    pub outputs: Vec<OutputSpec>,
    /// The model commitment.
    pub commitment: ModelCommitment,
    /// The input integers (exact mode's quantized input).
    pub input: Vec<i64>,
    /// The output integers.
    pub output: Vec<i64>,
    /// The proof.
    pub proof: Proof,
}

impl ProofFile {
    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(MAGIC);
        w.push(FILE_VERSION);
        w.extend_from_slice(&self.model_id);
        let len = |w: &mut Vec<u8>, n: usize| w.extend_from_slice(&(n as u64).to_le_bytes());
        len(&mut w, self.outputs.len());
        for o in &self.outputs {
            w.extend_from_slice(&o.frac.unwrap_or(i32::MIN).to_le_bytes());
            len(&mut w, o.name.len());
            w.extend_from_slice(o.name.as_bytes());
            len(&mut w, o.shape.len());
            for d in &o.shape {
                len(&mut w, *d);
            }
        }
        let c = self.commitment.to_bytes();
        len(&mut w, c.len());
        w.extend_from_slice(&c);
        for v in [&self.input, &self.output] {
            len(&mut w, v.len());
            for x in v {
                w.extend_from_slice(&x.to_le_bytes());
            }
        }
        len(&mut w, self.proof.len());
        w.extend_from_slice(self.proof.as_bytes());
        w
    }

    /// Decode strictly (bad magic or version, short input, trailing bytes are errors).
    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Cursor { b, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(DecodeError("not a Verity proof file (bad magic)"));
        }
        if r.take(1)?[0] != FILE_VERSION {
            return Err(DecodeError("unknown proof file version"));
        }
        let mut model_id = [0u8; 32];
        model_id.copy_from_slice(r.take(32)?);
        let count = r.len(64)?;
        let mut outputs = Vec::with_capacity(count);
        for _ in 0..count {
            let frac = i32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
            let nlen = r.len(1024)?;
            let name = String::from_utf8(r.take(nlen)?.to_vec())
                .map_err(|_| DecodeError("output name is not UTF-8"))?;
            let ndim = r.len(16)?;
            let shape = (0..ndim)
                .map(|_| r.len(MAX_VALUES))
                .collect::<Result<_, _>>()?;
            outputs.push(OutputSpec {
                name,
                shape,
                frac: (frac != i32::MIN).then_some(frac),
            });
        }
        let clen = r.len(b.len())?;
        let commitment = ModelCommitment::from_bytes(r.take(clen)?)?;
        let input = r.ints()?;
        let output = r.ints()?;
        let plen = r.len(b.len())?;
        let proof = Proof::from_bytes(r.take(plen)?);
        if r.pos != b.len() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(Self {
            model_id,
            outputs,
            commitment,
            input,
            output,
            proof,
        })
    }

    /// Verify the proof against the statement the file carries.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let n: usize = self
            .outputs
            .iter()
            .map(|o| o.shape.iter().product::<usize>())
            .sum();
        if n != self.output.len() {
            return Err(VerifyError::Statement(
                "output shape does not match the output".into(),
            ));
        }
        verify(&self.commitment, &self.input, &self.output, &self.proof)
    }
}

impl ProofFile {
    /// The outputs as exact mode returns them (fixed point as `float64`, exact).
    pub fn output_tensors(&self) -> Result<Tensors, String> {
        let mut out = Tensors::default();
        let mut at = 0usize;
        for o in &self.outputs {
            let n: usize = o.shape.iter().product();
            let vals = self
                .output
                .get(at..at + n)
                .ok_or("the output is shorter than its shapes")?;
            at += n;
            let data = match o.frac {
                Some(f) => TensorData::F64(vals.iter().map(|v| dequantize(*v, f)).collect()),
                None => TensorData::I64(vals.to_vec()),
            };
            let t = Tensor::new(&o.name, o.shape.clone(), data).map_err(|e| e.to_string())?;
            out.0.insert(o.name.clone(), t);
        }
        Ok(out)
    }

    /// Checks that this file's statement is about `input` and `output`: its input is
    /// exact mode's quantization of `input` (`round(x·2^frac)`, ties to even) and its
    /// output is `output`, name, shape and values.
    pub fn check_statement(
        &self,
        input: &Tensors,
        output: &Tensors,
        frac: i32,
    ) -> Result<(), String> {
        let [t] = input.0.values().collect::<Vec<_>>()[..] else {
            return Err("zk proofs cover single-input models".into());
        };
        let scale = (frac as f64).exp2();
        let q: Vec<i64> = match &t.data {
            TensorData::F32(v) => v
                .iter()
                .map(|x| (*x as f64 * scale).round_ties_even() as i64)
                .collect(),
            TensorData::F64(v) => v
                .iter()
                .map(|x| (x * scale).round_ties_even() as i64)
                .collect(),
            _ => return Err("the proven input must be a float tensor".into()),
        };
        if q != self.input {
            return Err("the proof is for another input".into());
        }
        if &self.output_tensors()? != output {
            return Err("the proof is for another output".into());
        }
        Ok(())
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError("overflow"))?;
        let s = self.b.get(self.pos..end).ok_or(DecodeError("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    fn len(&mut self, max: usize) -> Result<usize, DecodeError> {
        let v = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        usize::try_from(v)
            .ok()
            .filter(|n| *n <= max)
            .ok_or(DecodeError("length out of range"))
    }
    fn ints(&mut self) -> Result<Vec<i64>, DecodeError> {
        let n = self.len(MAX_VALUES)?;
        let raw = self.take(n.checked_mul(8).ok_or(DecodeError("overflow"))?)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layer, ProverModel};
    use crate::protocol::prove;

    #[test]
    fn round_trip_verify_and_tamper() {
        let m = ProverModel::new(
            3,
            8,
            vec![Layer::MatMul {
                rows: 2,
                cols: 3,
                weights: vec![1, -2, 3, 4, 5, -6],
                bias: vec![7, -8],
            }],
        )
        .unwrap();
        let x = vec![3, -1, 4];
        let (y, proof) = prove(&m, &x).unwrap();
        let f = ProofFile {
            model_id: [7; 32],
            outputs: vec![OutputSpec {
                name: "y".into(),
                shape: vec![1, 2],
                frac: Some(16),
            }],
            commitment: m.commitment().clone(),
            input: x,
            output: y,
            proof,
        };
        let b = f.to_bytes();
        let g = ProofFile::from_bytes(&b).unwrap();
        assert_eq!(g, f);
        g.verify().unwrap();
        assert!(ProofFile::from_bytes(&b[..b.len() - 1]).is_err());
        assert!(ProofFile::from_bytes(&[b.as_slice(), &[0]].concat()).is_err());
        // every byte after the model id and frac matters
        for i in (60..b.len()).step_by(7) {
            let mut t = b.clone();
            t[i] ^= 0x10;
            if let Ok(h) = ProofFile::from_bytes(&t) {
                assert!(h.verify().is_err(), "byte {i} flipped still verifies");
            }
        }
    }
}
