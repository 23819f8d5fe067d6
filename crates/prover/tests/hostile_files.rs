//! The verifier is total on hostile proof files: garbage, truncated files and huge length
//! prefixes are errors, never panics or acceptances.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use verity_prover::{prove, Layer, OutputLayout, OutputSpec, ProofFile, ProverModel};

fn honest_file() -> Vec<u8> {
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
        outputs: vec![OutputSpec {
            name: "y".into(),
            shape: vec![1, 2],
            frac: Some(16),
        }],
    })
    .unwrap();
    let x = vec![3, -1, 4];
    let (y, proof) = prove(&m, &x).unwrap();
    ProofFile {
        model_id: m.commitment().layout.model_id,
        outputs: m.commitment().layout.outputs.clone(),
        commitment: m.commitment().clone(),
        input: x,
        output: y,
        proof,
    }
    .to_bytes()
}

/// Decode and verify; a panic fails the test. The guarded entry point agrees.
fn check(bytes: &[u8]) -> bool {
    let plain = match ProofFile::from_bytes(bytes) {
        Ok(f) => f.verify().is_ok(),
        Err(_) => false,
    };
    assert_eq!(ProofFile::verify_bytes(bytes).is_ok(), plain);
    plain
}

#[test]
fn garbage_truncated_and_huge_length_prefixes_are_errors() {
    let good = honest_file();
    assert!(check(&good));
    let mut rng = StdRng::seed_from_u64(9);
    for n in [0, 1, 4, 5, 37, 100, 1000, 100_000] {
        let junk: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
        assert!(!check(&junk));
        let mut prefixed = good[..5].to_vec();
        prefixed.extend(&junk);
        assert!(!check(&prefixed));
    }
    for len in 0..good.len() {
        assert!(!check(&good[..len]), "truncated to {len}");
    }
    // every 8-byte window overwritten by a huge (or wrapping) length
    for at in 0..good.len().saturating_sub(8) {
        for v in [u64::MAX, 1 << 63, 1 << 40, (1 << 24) + 1, 1 << 24] {
            let mut t = good.clone();
            t[at..at + 8].copy_from_slice(&v.to_le_bytes());
            assert!(t == good || !check(&t), "length {v} at {at}");
        }
    }
}

/// Output layouts whose shapes multiply past `usize` are errors, in the file's copy and in
/// the commitment.
#[test]
fn overflowing_output_shapes_are_errors() {
    let good = ProofFile::from_bytes(&honest_file()).unwrap();
    for shape in [vec![1 << 24; 16], vec![1 << 24, 1 << 24, 1 << 24, 0]] {
        let mut f = good.clone();
        f.outputs[0].shape = shape.clone();
        assert!(!check(&f.to_bytes()));
        f.commitment.layout.outputs[0].shape = shape;
        assert!(!check(&f.to_bytes()));
        assert!(f.verify().is_err());
        assert!(f.output_tensors().is_err());
    }
}
