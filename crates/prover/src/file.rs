//! The standalone proof file: everything a verifier needs, in one versioned binary.
//!
//! Layout (integers little-endian, lengths `u64`):
//! `"VPRF" | version 2 | layout (model id [32], outputs) | commitment (len, bytes) | input
//! (len, i64…) | output (len, i64…) | proof (len, bytes)`; trailing bytes are rejected.
//!
//! The layout (the compiled exact-mode model id, `sha256("verity-exact-v1" ‖ sha256(onnx) ‖
//! params)`, and each output's name, shape and fractional bits, in order; encoded as in
//! [`crate::layout`]) is a copy of the commitment's [`crate::OutputLayout`], which is what the
//! proof binds: a file whose copy differs from its commitment's is rejected when decoded and
//! when verified. Every length is bounded before anything is allocated. Files from the
//! network are checked by [`crate::settle`]'s guarded entry points.

use crate::encode::Reader;
use crate::error::{DecodeError, VerifyError};
use crate::exact::OutputSpec;
use crate::layout::{OutputLayout, MAX_DIM};
use crate::model::ModelCommitment;
use crate::protocol::{verify, Proof};

const MAGIC: &[u8; 4] = b"VPRF";
/// The proof file format version.
pub const FILE_VERSION: u8 = 2;
/// Largest input or output vector a file may carry.
const MAX_VALUES: usize = MAX_DIM;

/// A proof with its statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofFile {
    /// The compiled exact-mode model id (a copy of `commitment.layout.model_id`).
    pub model_id: [u8; 32],
    /// The output tensors (name, shape, fractional bits), whose values `output`
    /// concatenates in this order (a copy of `commitment.layout.outputs`).
    pub outputs: Vec<OutputSpec>,
    /// The model commitment, output layout included.
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
        OutputLayout {
            model_id: self.model_id,
            outputs: self.outputs.clone(),
        }
        .put(&mut w);
        let len = |w: &mut Vec<u8>, n: usize| w.extend_from_slice(&(n as u64).to_le_bytes());
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

    /// Decode strictly (bad magic or version, short input, trailing bytes, a layout that is
    /// not the commitment's are errors).
    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        if r.take(4)? != MAGIC {
            return Err(DecodeError("not a Verity proof file (bad magic)"));
        }
        if r.u8()? != FILE_VERSION {
            return Err(DecodeError("unknown proof file version"));
        }
        let layout = OutputLayout::read(&mut r)?;
        let clen = r.len(r.remaining())?;
        let commitment = ModelCommitment::from_bytes(r.take(clen)?)?;
        if commitment.layout != layout {
            return Err(DecodeError(
                "the file's output layout or model id is not its commitment's",
            ));
        }
        let input = ints(&mut r)?;
        let output = ints(&mut r)?;
        let plen = r.len(r.remaining())?;
        let proof = Proof::from_bytes(r.take(plen)?);
        if !r.done() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(Self {
            model_id: layout.model_id,
            outputs: layout.outputs,
            commitment,
            input,
            output,
            proof,
        })
    }

    /// Verify the proof against the statement the file carries (its layout included).
    /// Files from the network go through [`ProofFile::verify_bytes`] or
    /// [`ProofFile::verify_settlement`], which also turn a panic into an error.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let layout = &self.commitment.layout;
        if layout.model_id != self.model_id || layout.outputs != self.outputs {
            return Err(VerifyError::Layout(
                "the file's output layout or model id is not its commitment's",
            ));
        }
        if layout.len() != Some(self.output.len()) {
            return Err(VerifyError::Layout(
                "the output shapes do not match the output",
            ));
        }
        verify(&self.commitment, &self.input, &self.output, &self.proof)
    }
}

fn ints(r: &mut Reader<'_>) -> Result<Vec<i64>, DecodeError> {
    let n = r.len(MAX_VALUES)?;
    let raw = r.take(n.checked_mul(8).ok_or(DecodeError("overflow"))?)?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layer, ProverModel};
    use crate::protocol::prove;

    #[test]
    fn round_trip_verify_and_tamper() {
        let outputs = vec![OutputSpec {
            name: "y".into(),
            shape: vec![1, 2],
            frac: Some(16),
        }];
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
        .unwrap()
        .bind(OutputLayout {
            model_id: [7; 32],
            outputs: outputs.clone(),
        })
        .unwrap();
        let x = vec![3, -1, 4];
        let (y, proof) = prove(&m, &x).unwrap();
        let f = ProofFile {
            model_id: [7; 32],
            outputs,
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
        // every byte matters
        for i in 0..b.len() {
            let mut t = b.clone();
            t[i] ^= 0x10;
            if let Ok(h) = ProofFile::from_bytes(&t) {
                assert!(h.verify().is_err(), "byte {i} flipped still verifies");
            }
        }
        // a struct whose layout copy differs from its commitment's does not verify
        let mut h = f.clone();
        h.outputs[0].frac = Some(15);
        assert!(matches!(h.verify(), Err(VerifyError::Layout(_))));
        let mut h = f;
        h.model_id[0] ^= 1;
        assert!(matches!(h.verify(), Err(VerifyError::Layout(_))));
    }
}
