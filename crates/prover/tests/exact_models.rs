//! Proofs of exact-mode inference on real ONNX models: the lowered circuit computes exactly
//! exact mode's integers, proofs verify for random inputs, and what cannot be proven is
//! refused by operator name.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use verity_engine::{ExactModel, ExactParams, Tensor, TensorData, Tensors};
use verity_prover::exact::{self, LowerError, VALUE_BITS};
use verity_prover::{prove, verify, ProverModel};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn compile(path: &str) -> ExactModel {
    let bytes = std::fs::read(repo(path)).unwrap();
    ExactModel::compile(&bytes, &ExactParams::default()).unwrap()
}

fn register(m: &ExactModel) -> (ProverModel, exact::Lowered) {
    let low = exact::lower(&m.graph().unwrap()).unwrap();
    let pm = ProverModel::new(low.input_len, VALUE_BITS, low.layers.clone()).unwrap();
    (pm, low)
}

fn random_input(m: &ExactModel, rng: &mut StdRng) -> Tensors {
    random_input_in(m, rng, -1.0, 1.0)
}

fn random_input_in(m: &ExactModel, rng: &mut StdRng, lo: f32, hi: f32) -> Tensors {
    let spec = &m.info().inputs[0];
    let shape: Vec<usize> = spec
        .shape
        .iter()
        .map(|d| match d {
            verity_engine::Dim::Fixed(n) => *n as usize,
            verity_engine::Dim::Symbolic(_) => 1,
        })
        .collect();
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.gen_range(lo..hi)).collect();
    let t = Tensor::new(&spec.name, shape, TensorData::F32(data)).unwrap();
    Tensors([(spec.name.clone(), t)].into_iter().collect())
}

/// For `runs` random inputs: the circuit's output equals exact mode's, and the proof
/// verifies against the commitment alone.
fn complete(path: &str, runs: usize) {
    complete_in(path, runs, -1.0, 1.0)
}

fn complete_in(path: &str, runs: usize, lo: f32, hi: f32) {
    let m = compile(path);
    let (pm, low) = register(&m);
    let comm = pm.commitment().clone();
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..runs {
        let input = random_input_in(&m, &mut rng, lo, hi);
        let x = m.quantize_inputs(&input).unwrap().remove(0);
        let exact_out = m.run_exact(&input).unwrap();
        let names: Vec<&String> = exact_out.iter().map(|o| &o.name).collect();
        assert_eq!(
            names,
            low.outputs.iter().map(|o| &o.name).collect::<Vec<_>>()
        );
        let want: Vec<i64> = exact_out.into_iter().flat_map(|o| o.values).collect();
        let (y, proof) = prove(&pm, &x).unwrap();
        assert_eq!(y, want, "{path}: circuit and exact mode differ");
        verify(&comm, &x, &y, &proof).unwrap();
    }
}

#[test]
fn bench_mlp_proofs_match_exact_mode() {
    complete("examples/bench/bench_mlp.onnx", 100);
}

#[test]
fn bench_cnn_proofs_match_exact_mode() {
    complete("examples/bench/bench_cnn.onnx", 100);
}

/// The example classifiers, heads included (Softmax, ArgMax, the class lookup, two
/// outputs): digits features are 0..16.
#[test]
fn example_digits_mlp_proofs_match_exact_mode() {
    complete_in("examples/models/sk_digits_mlp.onnx", 100, 0.0, 16.0);
}

#[test]
fn example_digits_cnn_proofs_match_exact_mode() {
    complete_in("examples/models/np_digits_cnn.onnx", 100, 0.0, 16.0);
}

#[test]
fn uncovered_operators_are_named() {
    for (path, must) in [
        ("examples/models/magika_standard_v3_3.onnx", "Tanh"),
        ("examples/models/sk_breast_cancer_rf.onnx", "Tree"),
    ] {
        let g = compile(path).graph().unwrap();
        match exact::lower(&g) {
            Err(LowerError::Unsupported(ops)) => {
                assert!(ops.iter().any(|o| o.contains(must)), "{path}: {ops:?}")
            }
            other => panic!("{path}: {other:?}"),
        }
        assert!(!exact::unsupported_ops(&g).is_empty());
    }
}

/// Bit flips in the output, input, model commitment and proof of a CNN proof all fail;
/// the proof does not verify for a model that differs in one weight.
#[test]
fn bench_cnn_proof_soundness() {
    let m = compile("examples/bench/bench_cnn.onnx");
    let (pm, low) = register(&m);
    let comm = pm.commitment().clone();
    let input = random_input(&m, &mut StdRng::seed_from_u64(8));
    let x = m.quantize_inputs(&input).unwrap().remove(0);
    let (y, proof) = prove(&pm, &x).unwrap();
    verify(&comm, &x, &y, &proof).unwrap();
    for i in 0..y.len() {
        for bit in [0, 7, 31, 63] {
            let mut y2 = y.clone();
            y2[i] ^= 1 << bit;
            assert!(
                verify(&comm, &x, &y2, &proof).is_err(),
                "output {i} bit {bit}"
            );
        }
    }
    for i in (0..x.len()).step_by(37) {
        let mut x2 = x.clone();
        x2[i] ^= 1;
        assert!(verify(&comm, &x2, &y, &proof).is_err(), "input {i}");
    }
    let cb = comm.to_bytes();
    for i in 0..cb.len() {
        let mut b = cb.clone();
        b[i] ^= 0x01;
        if let Ok(c2) = verity_prover::ModelCommitment::from_bytes(&b) {
            assert!(verify(&c2, &x, &y, &proof).is_err(), "commitment byte {i}");
        }
    }
    let pb = proof.to_bytes();
    for i in (0..pb.len()).step_by(pb.len() / 300) {
        let mut b = pb.clone();
        b[i] ^= 0x80;
        let bad = verity_prover::Proof::from_bytes(&b);
        assert!(verify(&comm, &x, &y, &bad).is_err(), "proof byte {i}");
    }
    let mut layers = low.layers.clone();
    if let verity_prover::Layer::Conv { weights, .. } = &mut layers[0] {
        weights[0] += 1;
    }
    let other = ProverModel::new(low.input_len, VALUE_BITS, layers).unwrap();
    assert!(verify(other.commitment(), &x, &y, &proof).is_err());
}
