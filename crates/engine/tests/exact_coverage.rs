//! Exact mode on architectures the example models lack (spec §3.5): a
//! transformer block (LayerNormalization, multi-head causal attention with a
//! -1e9 mask, exact GELU), LSTM, GRU, ConvTranspose, Resize (nearest and
//! linear), LogSoftmax, and one-node models of the usual activations and
//! normalizations (Elu, Selu, PRelu, Softplus, HardSigmoid, Softsign,
//! ThresholdedRelu, Mish, Gelu, InstanceNormalization, ReduceL2,
//! ReduceMax). Each compiles with no unsupported operator and
//! stays within a tolerance of onnxruntime's float outputs
//! (`tests/exact_data/coverage/`, made by `make_coverage_models.py`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use verity_engine::{ExactModel, ExactParams, Tensors};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/exact_data/coverage")
}

#[test]
fn unseen_architectures_compile_and_match_onnxruntime() {
    // (model, largest allowed absolute error)
    let cases = [
        ("xformer", 2e-2),
        ("lstm", 1e-3),
        ("gru", 1e-3),
        ("deconv", 1e-3),
        ("resize", 1e-4),
        ("resize_lin", 1e-4),
        ("logsoftmax", 1e-3),
        ("a_elu", 1e-3),
        ("a_selu", 1e-3),
        ("a_prelu", 1e-3),
        ("a_softplus", 1e-3),
        ("a_hardsigmoid", 1e-3),
        ("a_softsign", 1e-3),
        ("a_thresholdedrelu", 1e-3),
        ("a_mish", 1e-3),
        ("a_gelu20", 1e-3),
        ("a_instnorm", 1e-3),
        ("a_reducel2", 1e-3),
        ("a_reducemax", 1e-3),
    ];
    for (name, tol) in cases {
        let bytes = std::fs::read(dir().join(format!("{name}.onnx"))).unwrap();
        assert_eq!(
            ExactModel::unsupported_ops(&bytes).unwrap(),
            Vec::<String>::new(),
            "{name}"
        );
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let input = Tensors::from_json(&v["inputs"]).unwrap();
        let want = Tensors::from_json(&v["outputs"]).unwrap();
        let m = ExactModel::compile(&bytes, &ExactParams::default()).unwrap();
        let got = m.run(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (k, w) in &want.0 {
            let (g, w) = (got.0[k].data.to_f64(), w.data.to_f64());
            assert_eq!(g.len(), w.len(), "{name} {k}");
            let err = g
                .iter()
                .zip(&w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            println!("{name:<12} {k}: max |err| {err:.3e}");
            assert!(err <= tol, "{name} {k}: max error {err} > {tol}");
        }
    }
}

/// An operator exact mode cannot lower is named, and listed.
#[test]
fn unsupported_operators_are_named() {
    use prost::Message;
    use tract_onnx::pb::{self, type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto};
    let io = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto {
                    dim: vec![pb::tensor_shape_proto::Dimension {
                        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(3)),
                        ..Default::default()
                    }],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: "".into(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: vec![NodeProto {
                op_type: "Sin".into(),
                name: "sine".into(),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![io("x")],
            output: vec![io("y")],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    assert_eq!(
        ExactModel::unsupported_ops(&bytes).unwrap(),
        vec!["ai.onnx:Sin".to_string()]
    );
    let e = ExactModel::compile(&bytes, &ExactParams::default()).unwrap_err();
    assert_eq!(e.code(), "unsupported_op");
    assert!(
        e.to_string().contains("ai.onnx:Sin") && e.to_string().contains("sine"),
        "{e}"
    );
}
