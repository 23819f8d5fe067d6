//! Faulty executors: results that a dishonest executor could post for a zk-mode request.
//! Each must be refused by settlement.

use verity_primitives::{Tensor, TensorData, Tensors};
use verity_prover::ProofFile;

/// Ways to lie about a zk result, given the honest output and proof file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZkLie {
    /// Post another output (one value off by one unit in the last place of exact mode)
    /// with the honest proof.
    WrongOutput,
    /// Post that wrong output with a proof file whose statement claims it (the proof
    /// itself is the honest one).
    WrongOutputRestated,
    /// Post the honest output with a proof whose bytes are damaged.
    DamagedProof,
    /// Post the honest output with a proof for another input.
    OtherInput,
    /// Read the proof's output at another scale: the proof file's copy of
    /// the output layout claims one more fractional bit, and the posted
    /// output is the proven integers read at that scale (attack 6 of issue
    /// 9; only the layout's binding into the statement refuses it).
    Rescaled,
}

/// The output and proof file a dishonest executor posts.
pub fn zk_lie(lie: ZkLie, output: &Tensors, proof: &[u8]) -> (Tensors, Vec<u8>) {
    let mut file = ProofFile::from_bytes(proof).expect("an honest proof file");
    let frac = file.outputs.first().and_then(|o| o.frac).unwrap_or(0);
    let wrong = {
        let mut o = output.clone();
        for (name, t) in o.0.iter_mut() {
            if let TensorData::F64(v) = &t.data {
                let mut v = v.clone();
                v[0] += (-f64::from(frac)).exp2();
                *t = Tensor::new(name, t.shape.clone(), TensorData::F64(v)).expect("tensor");
            }
        }
        o
    };
    match lie {
        ZkLie::WrongOutput => (wrong, proof.to_vec()),
        ZkLie::WrongOutputRestated => {
            file.output[0] += 1;
            (wrong, file.to_bytes())
        }
        ZkLie::DamagedProof => {
            let mut p = file.proof.to_bytes();
            let n = p.len();
            p[n / 2] ^= 0x04;
            file.proof = verity_prover::Proof::from_bytes(&p);
            (output.clone(), file.to_bytes())
        }
        ZkLie::OtherInput => {
            file.input[0] += 1;
            (output.clone(), file.to_bytes())
        }
        ZkLie::Rescaled => {
            let mut rescaled = Tensors::default();
            let mut at = 0;
            for o in file.outputs.iter_mut() {
                let n: usize = o.shape.iter().product();
                let ints = &file.output[at..at + n];
                at += n;
                let data = match o.frac.as_mut() {
                    Some(f) => {
                        *f += 1;
                        let scale = (-f64::from(*f)).exp2();
                        TensorData::F64(ints.iter().map(|v| *v as f64 * scale).collect())
                    }
                    None => TensorData::I64(ints.to_vec()),
                };
                let t = Tensor::new(&o.name, o.shape.clone(), data).expect("tensor");
                rescaled.0.insert(o.name.clone(), t);
            }
            (rescaled, file.to_bytes())
        }
    }
}
