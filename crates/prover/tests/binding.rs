//! The proof binds how its output is read: a true statement posted under another output
//! layout (outputs reordered, another scale) or another compiled-model id is rejected, and
//! so is any flipped byte of the proof file before its input.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use verity_engine::{Tensor, TensorData, Tensors};
use verity_prover::exact::OutputSpec;
use verity_prover::{OnnxProver, ProofFile};

fn onnx(path: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path),
    )
    .unwrap()
}

fn input(p: &OnnxProver, seed: u64, lo: f32, hi: f32) -> Tensors {
    let spec = &p.exact().info().inputs[0];
    let shape: Vec<usize> = spec
        .shape
        .iter()
        .map(|d| match d {
            verity_engine::Dim::Fixed(n) => *n as usize,
            verity_engine::Dim::Symbolic(_) => 1,
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| rng.gen_range(lo..hi))
        .collect();
    let t = Tensor::new(&spec.name, shape, TensorData::F32(data)).unwrap();
    Tensors([(spec.name.clone(), t)].into_iter().collect())
}

/// The file an executor posts after changing the output layout wherever the file keeps it.
fn relayout(f: &ProofFile, change: impl Fn(&mut Vec<OutputSpec>)) -> Vec<u8> {
    let mut g = f.clone();
    change(&mut g.outputs);
    g.to_bytes()
}

fn rejected(bytes: &[u8]) -> bool {
    match ProofFile::from_bytes(bytes) {
        Ok(f) => f.verify().is_err(),
        Err(_) => true,
    }
}

#[test]
fn a_true_statement_under_a_permuted_output_layout_is_rejected() {
    let p = OnnxProver::register(&onnx("examples/models/sk_digits_mlp.onnx")).unwrap();
    let f = p.prove(&input(&p, 1, 0.0, 16.0)).unwrap();
    assert_eq!(f.outputs.len(), 2, "label and probabilities");
    assert!(!rejected(&f.to_bytes()), "the honest file verifies");
    let swapped = relayout(&f, |o| o.reverse());
    assert!(rejected(&swapped), "outputs reordered, still verifies");
    // the same, keeping each output's shape in place (only names and scales move)
    let renamed = relayout(&f, |o| {
        let (a, b) = (o[0].clone(), o[1].clone());
        o[0].name = b.name;
        o[1].name = a.name;
    });
    assert!(rejected(&renamed), "output names swapped, still verifies");
}

#[test]
fn a_true_statement_under_another_scale_is_rejected() {
    let p = OnnxProver::register(&onnx("examples/bench/bench_cnn.onnx")).unwrap();
    let f = p.prove(&input(&p, 2, -1.0, 1.0)).unwrap();
    assert!(!rejected(&f.to_bytes()));
    for frac in [Some(15), Some(17), Some(0), None] {
        let other = relayout(&f, |o| o[0].frac = frac);
        assert!(rejected(&other), "frac {frac:?} still verifies");
    }
    let reshaped = relayout(&f, |o| o[0].shape = vec![o[0].shape.iter().product()]);
    assert!(rejected(&reshaped), "another shape still verifies");
}

#[test]
fn every_byte_before_the_input_is_bound() {
    let p = OnnxProver::register(&onnx("examples/bench/bench_cnn.onnx")).unwrap();
    let f = p.prove(&input(&p, 3, -1.0, 1.0)).unwrap();
    let b = f.to_bytes();
    // everything before the input: header, compiled-model id, output layout, commitment
    let input_at = b.len() - 8 - f.proof.len() - 8 - 8 * f.output.len() - 8 - 8 * f.input.len();
    for i in 0..input_at {
        for bit in [0x01, 0x80] {
            let mut t = b.clone();
            t[i] ^= bit;
            assert!(
                rejected(&t),
                "byte {i} ^ {bit:#x} of {input_at} still verifies"
            );
        }
    }
}
