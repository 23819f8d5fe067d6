//! Settlement's guarded entry point: the registered commitment fixes the output layout and
//! the compiled model, so neither a doctored layout nor a proof made for another layout
//! passes; the layout is in the transcript too.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use verity_engine::{Tensor, TensorData, Tensors};
use verity_prover::{
    prove, OnnxProver, OutputLayout, ProofFile, ProverModel, SettleError, StatementError,
};

fn digits() -> (OnnxProver, Tensors) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/models/sk_digits_mlp.onnx");
    let p = OnnxProver::register(&std::fs::read(path).unwrap()).unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let data: Vec<f32> = (0..64).map(|_| rng.gen_range(0.0..16.0)).collect();
    let t = Tensor::new("X", vec![1, 64], TensorData::F32(data)).unwrap();
    (p, Tensors([("X".to_string(), t)].into_iter().collect()))
}

#[test]
fn settlement_accepts_the_honest_file_and_rejects_other_layouts() {
    let (p, x) = digits();
    let f = p.prove(&x).unwrap();
    let digest = p.commitment().digest();
    let id = p.exact().id();
    let y = f.output_tensors().unwrap();
    let settle = |b: &[u8]| ProofFile::verify_settlement(b, &digest, &id, &x, &y, 16);
    settle(&f.to_bytes()).unwrap();

    // the layout changed consistently in the header and the commitment: the transcript
    // differs, and so does the commitment's digest
    let mut g = f.clone();
    g.outputs.reverse();
    g.commitment.layout.outputs.reverse();
    assert!(g.verify().is_err(), "the layout is not in the transcript");
    assert_eq!(settle(&g.to_bytes()).unwrap_err(), SettleError::Commitment);

    // an executor proving honestly under a commitment with another scale: a valid proof
    // for another commitment than the registered one
    let model = ProverModel::new(
        p.commitment().input_len,
        p.commitment().input_bits,
        p_layers(&p),
    )
    .unwrap();
    let mut layout = p.commitment().layout.clone();
    layout.outputs[1].frac = Some(15);
    let model = model.bind(layout).unwrap();
    let (out, proof) = prove(&model, &f.input).unwrap();
    let h = ProofFile {
        model_id: id,
        outputs: model.commitment().layout.outputs.clone(),
        commitment: model.commitment().clone(),
        input: f.input.clone(),
        output: out,
        proof,
    };
    h.verify().unwrap();
    let posted = h.output_tensors().unwrap();
    assert_eq!(
        ProofFile::verify_settlement(&h.to_bytes(), &digest, &id, &x, &posted, 16).unwrap_err(),
        SettleError::Commitment
    );
    // another compiled-model id, or another posted output
    assert_eq!(settle(&f.to_bytes()).map(|_| ()), Ok(()));
    let other_id = [9u8; 32];
    assert_eq!(
        ProofFile::verify_settlement(&f.to_bytes(), &digest, &other_id, &x, &y, 16).unwrap_err(),
        SettleError::CompiledModel
    );
    assert_eq!(
        ProofFile::verify_settlement(&f.to_bytes(), &digest, &id, &x, &posted, 16).unwrap_err(),
        SettleError::Statement(StatementError::Output)
    );
}

fn p_layers(p: &OnnxProver) -> Vec<verity_prover::Layer> {
    verity_prover::exact::lower(&p.exact().graph().unwrap())
        .unwrap()
        .layers
}

#[test]
fn a_layout_that_does_not_cover_the_output_cannot_be_bound() {
    let (p, _) = digits();
    let model = ProverModel::new(
        p.commitment().input_len,
        p.commitment().input_bits,
        p_layers(&p),
    )
    .unwrap();
    let mut layout: OutputLayout = p.commitment().layout.clone();
    layout.outputs[1].shape = vec![1, 9];
    assert!(model.bind(layout).is_err());
}
