//! Bad models and bad inputs give errors, never panics; limits, the
//! deadline, the plan cache and the timing API behave.

use prost::Message;
use std::path::Path;
use std::time::Duration;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use verity_engine::{Engine, EngineError, Limits, Tensor, TensorData, Tensors, TractEngine};

fn model_file(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/models")
        .join(name);
    std::fs::read(p).unwrap()
}

fn iris() -> Vec<u8> {
    model_file("sk_iris_logreg.onnx")
}

fn input(name: &str, shape: Vec<usize>, data: TensorData) -> Tensors {
    let mut t = Tensors::default();
    t.0.insert(name.into(), Tensor::new(name, shape, data).unwrap());
    t
}

fn iris_row() -> Tensors {
    input("X", vec![1, 4], TensorData::F32(vec![5.1, 3.4, 1.5, 0.2]))
}

const K: [u8; 32] = [7; 32];

/// A graph value of ONNX element type `elem_type`; negative dims are symbolic.
fn value_info(name: &str, elem_type: i32, dims: &[i64]) -> ValueInfoProto {
    let dim = |(i, d): (usize, &i64)| Dimension {
        value: Some(if *d < 0 {
            dimension::Value::DimParam(format!("d{i}"))
        } else {
            dimension::Value::DimValue(*d)
        }),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: dims.iter().enumerate().map(dim).collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A model `Y = op(X)` with X, Y float [1, 2].
fn one_node(op_type: &str, domain: &str, initializer: Vec<TensorProto>) -> Vec<u8> {
    let io = (
        vec![value_info("X", 1, &[1, 2])],
        value_info("Y", 1, &[1, 2]),
    );
    one_node_io(op_type, domain, initializer, io)
}

fn one_node_io(
    op_type: &str,
    domain: &str,
    initializer: Vec<TensorProto>,
    (xs, y): (Vec<ValueInfoProto>, ValueInfoProto),
) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: vec![NodeProto {
                op_type: op_type.into(),
                domain: domain.into(),
                input: xs.iter().map(|x| x.name.clone()).collect(),
                output: vec!["Y".into()],
                attribute: vec![],
                ..Default::default()
            }],
            initializer,
            input: xs,
            output: vec![y],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn unsupported_op(e: EngineError) -> String {
    match e {
        EngineError::UnsupportedOp { op, .. } => op,
        other => panic!("expected UnsupportedOp, got {other:?}"),
    }
}

#[test]
fn not_onnx_and_truncated_models_are_invalid() {
    let engine = TractEngine::default();
    for junk in [
        &b""[..],
        b"hello, this is not a model",
        &[0xff; 64],
        b"\x08\x07", // a valid protobuf with only ir_version
    ] {
        let e = engine.inspect(junk).unwrap_err();
        assert!(matches!(e, EngineError::InvalidModel(_)), "{e:?}");
        let e = engine.run(&K, junk, &iris_row()).unwrap_err();
        assert!(matches!(e, EngineError::InvalidModel(_)), "{e:?}");
    }
    for model in ["sk_iris_logreg.onnx", "np_digits_cnn.onnx"] {
        let bytes = model_file(model);
        for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() * 2 / 3] {
            let e = engine.inspect(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(e, EngineError::InvalidModel(_)),
                "{model} cut at {cut}: {e:?}"
            );
        }
    }
}

#[test]
fn unknown_operators_are_named() {
    let engine = TractEngine::default();
    let e = engine
        .inspect(&one_node("NoSuchOp", "", vec![]))
        .unwrap_err();
    assert_eq!(unsupported_op(e), "ai.onnx:NoSuchOp");
    let e = engine
        .run(
            &K,
            &one_node("NoSuchOp", "", vec![]),
            &input("X", vec![1, 2], TensorData::F32(vec![1.0, 2.0])),
        )
        .unwrap_err();
    assert_eq!(unsupported_op(e), "ai.onnx:NoSuchOp");
    let e = engine
        .inspect(&one_node("Gelu", "com.example", vec![]))
        .unwrap_err();
    assert_eq!(unsupported_op(e), "com.example:Gelu");
    let e = engine
        .inspect(&one_node("ZipMap", "ai.onnx.ml", vec![]))
        .unwrap_err();
    assert_eq!(unsupported_op(e), "ai.onnx.ml:ZipMap");
    let e = engine
        .inspect(&one_node("Relu", "ai.onnx.ml", vec![]))
        .unwrap_err();
    assert_eq!(unsupported_op(e), "ai.onnx.ml:Relu");
    // A known operator with attributes it cannot handle names the operator.
    let e = engine
        .inspect(&one_node("TreeEnsembleRegressor", "ai.onnx.ml", vec![]))
        .unwrap_err();
    assert_eq!(unsupported_op(e), "ai.onnx.ml:TreeEnsembleRegressor");
    // A plain supported model still loads.
    let info = engine.inspect(&one_node("Relu", "", vec![])).unwrap();
    assert_eq!(info.ops, vec!["ai.onnx:Relu"]);
}

#[test]
fn external_data_is_refused() {
    let t = TensorProto {
        name: "W".into(),
        dims: vec![2],
        data_type: 1,
        data_location: Some(1),
        external_data: vec![StringStringEntryProto {
            key: "location".into(),
            value: "/etc/passwd".into(),
        }],
        ..Default::default()
    };
    let e = TractEngine::default()
        .inspect(&one_node("Relu", "", vec![t]))
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::InvalidModel(m) if m.contains("external data")),
        "{e:?}"
    );
}

#[test]
fn inputs_are_checked_before_execution() {
    let engine = TractEngine::default();
    let bytes = iris();
    let msg = |t: Tensors| match engine.run(&K, &bytes, &t).unwrap_err() {
        EngineError::InvalidInput(m) => m,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let m = msg(input("x", vec![1, 4], TensorData::F32(vec![0.0; 4])));
    assert!(
        m.contains("unknown input `x`") && m.contains("X: float32[?, 4]"),
        "{m}"
    );
    let m = msg(Tensors::default());
    assert!(m.contains("missing input `X`"), "{m}");
    let m = msg(input("X", vec![1, 3], TensorData::F32(vec![0.0; 3])));
    assert!(
        m.contains("input `X`: expected X: float32[?, 4], got float32[1, 3]"),
        "{m}"
    );
    let m = msg(input("X", vec![4], TensorData::F32(vec![0.0; 4])));
    assert!(m.contains("rank 1 is not 2"), "{m}");
    let m = msg(input("X", vec![1, 4], TensorData::F64(vec![0.0; 4])));
    assert!(m.contains("dtype float64 is not float32"), "{m}");
    let mut two = iris_row();
    two.0.insert(
        "Y".into(),
        Tensor::new("Y", vec![1], TensorData::F32(vec![0.0])).unwrap(),
    );
    assert!(msg(two).contains("unknown input `Y`"));
    // The engine still works afterwards.
    let out = engine.run(&K, &bytes, &iris_row()).unwrap();
    assert_eq!(out.get("label").unwrap().data, TensorData::I64(vec![0]));
}

#[test]
fn limits_are_enforced() {
    let engine = TractEngine::default();
    let bytes = iris();
    let limited = |f: fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        l
    };
    let big = input("X", vec![1000, 4], TensorData::F32(vec![0.0; 4000]));
    let e = engine
        .run_with_limits(&K, &bytes, &big, &limited(|l| l.max_input_elements = 100))
        .unwrap_err();
    assert!(matches!(e, EngineError::LimitExceeded(_)), "{e:?}");
    let e = engine
        .run_with_limits(&K, &bytes, &big, &limited(|l| l.max_input_bytes = 1000))
        .unwrap_err();
    assert!(matches!(e, EngineError::LimitExceeded(_)), "{e:?}");
    let e = engine
        .run_with_limits(
            &K,
            &bytes,
            &iris_row(),
            &limited(|l| l.max_model_bytes = 100),
        )
        .unwrap_err();
    assert!(matches!(e, EngineError::LimitExceeded(_)), "{e:?}");
    let e = engine
        .run_with_limits(&K, &bytes, &big, &limited(|l| l.max_tensor_elements = 1000))
        .unwrap_err();
    assert!(matches!(e, EngineError::LimitExceeded(m) if m.contains("elements")));

    // A deadline already passed stops the run at the first node.
    let cnn = model_file("np_digits_cnn.onnx");
    let pixels = input("pixels", vec![1, 1, 8, 8], TensorData::F32(vec![1.0; 64]));
    let e = engine
        .run_with_limits(
            &[9; 32],
            &cnn,
            &pixels,
            &limited(|l| l.max_exec_time = Duration::ZERO),
        )
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::LimitExceeded(m) if m.contains("deadline")),
        "{e:?}"
    );
    // Within limits, it runs.
    engine.run(&[9; 32], &cnn, &pixels).unwrap();

    // A tensor whose size depends on input values is checked before the
    // node computes it.
    let io = (
        vec![
            value_info("S", 7, &[]),
            value_info("L", 7, &[]),
            value_info("D", 7, &[]),
        ],
        value_info("Y", 7, &[-1]),
    );
    let range = one_node_io("Range", "", vec![], io);
    let args = |l| {
        let mut t = input("S", vec![], TensorData::I64(vec![0]));
        t.0.insert(
            "L".into(),
            Tensor::new("L", vec![], TensorData::I64(vec![l])).unwrap(),
        );
        t.0.insert(
            "D".into(),
            Tensor::new("D", vec![], TensorData::I64(vec![1])).unwrap(),
        );
        t
    };
    let out = engine.run(&[10; 32], &range, &args(3)).unwrap();
    assert_eq!(out.get("Y").unwrap().data, TensorData::I64(vec![0, 1, 2]));
    let e = engine
        .run(&[10; 32], &range, &args(100_000_000_000))
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::LimitExceeded(m) if m.contains("100000000000")),
        "{e:?}"
    );
}

#[test]
fn plans_are_cached_per_shape_and_timed() {
    let engine = TractEngine::with_cache_capacity(Limits::default(), 2, 2);
    let bytes = iris();
    let rows = |n: usize| input("X", vec![n, 4], TensorData::F32(vec![1.0; 4 * n]));
    let a = engine.prepare(&K, &bytes, &rows(1)).unwrap();
    let b = engine.prepare(&K, &bytes, &rows(1)).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    engine.run(&K, &bytes, &rows(3)).unwrap();
    assert_eq!(engine.cached_plans(), 2);
    engine.run(&K, &bytes, &rows(5)).unwrap();
    assert_eq!(engine.cached_plans(), 2, "bounded");
    assert_eq!(a.input_shapes(), &[vec![1, 4]]);

    // The prepared plan runs only its own shapes.
    assert!(matches!(
        a.run(&rows(2), None),
        Err(EngineError::InvalidInput(_))
    ));
    let out = a.run(&rows(1), None).unwrap();
    assert_eq!(out.get("probabilities").unwrap().shape, vec![1, 3]);

    let t = a.time_runs(&rows(1), 5, Duration::from_secs(10)).unwrap();
    assert_eq!(t.samples.len(), 5);
    assert!(t.percentile(10.0) <= t.median() && t.median() <= t.percentile(90.0));
    assert!(t.mean() > Duration::ZERO);
}

#[test]
fn engine_is_shareable() {
    fn check<T: Send + Sync>() {}
    check::<TractEngine>();
    check::<verity_engine::PreparedModel>();
    let engine: std::sync::Arc<dyn Engine> = std::sync::Arc::new(TractEngine::default());
    let bytes = std::sync::Arc::new(iris());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (engine, bytes) = (engine.clone(), bytes.clone());
            std::thread::spawn(move || engine.run(&K, &bytes, &iris_row()).unwrap())
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert_eq!(out.get("label").unwrap().data, TensorData::I64(vec![0]));
    }
}

#[test]
fn exact_mode_runs_under_the_same_limits() {
    use verity_engine::{ExactEngine, ExactParams};
    let limited = |f: fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        ExactEngine::with_limits(ExactParams::default(), l)
    };
    let cnn = model_file("np_digits_cnn.onnx");
    let pixels = input("pixels", vec![1, 1, 8, 8], TensorData::F32(vec![1.0; 64]));
    // A deadline already passed stops the run at the first step.
    let e = limited(|l| l.max_exec_time = Duration::ZERO)
        .run(&[9; 32], &cnn, &pixels)
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::LimitExceeded(m) if m.contains("deadline")),
        "{e:?}"
    );
    // The largest tensor a step computes is bounded.
    let e = limited(|l| l.max_tensor_elements = 100)
        .run(&[9; 32], &cnn, &pixels)
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::LimitExceeded(m) if m.contains("elements")),
        "{e:?}"
    );
    // Model and input sizes too.
    let e = limited(|l| l.max_model_bytes = 100)
        .run(&[9; 32], &cnn, &pixels)
        .unwrap_err();
    assert!(matches!(e, EngineError::LimitExceeded(_)), "{e:?}");
    let e = limited(|l| l.max_input_elements = 10)
        .run(&[9; 32], &cnn, &pixels)
        .unwrap_err();
    assert!(matches!(e, EngineError::LimitExceeded(_)), "{e:?}");
    // Within limits, it runs.
    ExactEngine::default().run(&[9; 32], &cnn, &pixels).unwrap();
}

#[test]
fn exact_compile_refusals_are_remembered() {
    // Admission asks the exact engine about every exact request; a model
    // that cannot compile must not be compiled again on every ask.
    let engine = verity_engine::ExactEngine::default();
    let bad = one_node("NoSuchOp", "", vec![]);
    let first = engine.model(&[7; 32], &bad).unwrap_err();
    assert_eq!(engine.compiles(), 1);
    for _ in 0..5 {
        assert_eq!(engine.model(&[7; 32], &bad).unwrap_err(), first);
    }
    assert_eq!(engine.compiles(), 1, "refusal served from the cache");
    let good = one_node("Relu", "", vec![]);
    engine.model(&[8; 32], &good).unwrap();
    engine.model(&[8; 32], &good).unwrap();
    assert_eq!(engine.compiles(), 2);
}
