//! Tree ensemble tests against hand-computed values.

use super::*;
use crate::ml::testutil::*;
use crate::{Engine, TractEngine};
use tract_onnx::pb::AttributeProto;
use verity_primitives::{Tensor as VTensor, TensorData, Tensors};

/// (tree, node, mode, feature, value, true id, false id)
type N = (i64, i64, &'static str, i64, f32, i64, i64);
/// (tree, node, target, weight)
type V = (i64, i64, i64, f32);

fn trees(prefix: &str, nodes: &[N], votes: &[V]) -> Vec<AttributeProto> {
    let col = |f: fn(&N) -> i64| nodes.iter().map(f).collect::<Vec<_>>();
    let modes: Vec<&str> = nodes.iter().map(|n| n.2).collect();
    let vcol = |f: fn(&V) -> i64| votes.iter().map(f).collect::<Vec<_>>();
    vec![
        ints("nodes_treeids", &col(|n| n.0)),
        ints("nodes_nodeids", &col(|n| n.1)),
        strings("nodes_modes", &modes),
        ints("nodes_featureids", &col(|n| n.3)),
        floats(
            "nodes_values",
            &nodes.iter().map(|n| n.4).collect::<Vec<_>>(),
        ),
        ints("nodes_truenodeids", &col(|n| n.5)),
        ints("nodes_falsenodeids", &col(|n| n.6)),
        ints(&format!("{prefix}_treeids"), &vcol(|v| v.0)),
        ints(&format!("{prefix}_nodeids"), &vcol(|v| v.1)),
        ints(&format!("{prefix}_ids"), &vcol(|v| v.2)),
        floats(
            &format!("{prefix}_weights"),
            &votes.iter().map(|v| v.3).collect::<Vec<_>>(),
        ),
    ]
}

/// Tree 0: x0 <= 0.5 ? (class 0 += 1) : (class 1 += 2).
/// Tree 1: x1 < 1.0 ? (class 2 += 0.5, class 0 += 0.25) : (class 1 -= 1).
const NODES: &[N] = &[
    (0, 0, "BRANCH_LEQ", 0, 0.5, 1, 2),
    (0, 1, "LEAF", 0, 0.0, 0, 0),
    (0, 2, "LEAF", 0, 0.0, 0, 0),
    (1, 0, "BRANCH_LT", 1, 1.0, 1, 2),
    (1, 1, "LEAF", 0, 0.0, 0, 0),
    (1, 2, "LEAF", 0, 0.0, 0, 0),
];
const VOTES: &[V] = &[
    (0, 1, 0, 1.0),
    (0, 2, 1, 2.0),
    (1, 1, 2, 0.5),
    (1, 1, 0, 0.25),
    (1, 2, 1, -1.0),
];

fn classifier_node(post: &str, extra: Vec<AttributeProto>) -> NodeProto {
    let mut attrs = trees("class", NODES, VOTES);
    attrs.push(ints("classlabels_int64s", &[10, 20, 30]));
    attrs.push(floats("base_values", &[0.1, 0.2, 0.3]));
    attrs.push(string("post_transform", post));
    attrs.extend(extra);
    node("TreeEnsembleClassifier", 1, 2, attrs)
}

fn close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn classifier_sums_adds_base_and_labels() {
    let k = parse(Classifier::parse, &classifier_node("NONE", vec![])).unwrap();
    // row 0: tree 0 true (c0 + 1), tree 1 false (c1 - 1) -> [1.1, -0.8, 0.3]
    // row 1: tree 0 false (c1 + 2), tree 1 true (c2 + .5, c0 + .25) -> [.35, 2.2, .8]
    let y = k
        .eval(tvec!(value(&[2, 2], &[0.5f32, 1.0, 0.7, 0.2])))
        .unwrap();
    assert_eq!(read::<i64>(&y[0]), vec![10, 20]);
    close(&read::<f32>(&y[1]), &[1.1, -0.8, 0.3, 0.35, 2.2, 0.8]);
}

#[test]
fn classifier_softmax() {
    let k = parse(Classifier::parse, &classifier_node("SOFTMAX", vec![])).unwrap();
    let y = k
        .eval(tvec!(value(&[2, 2], &[0.5f32, 1.0, 0.7, 0.2])))
        .unwrap();
    assert_eq!(read::<i64>(&y[0]), vec![10, 20]);
    close(
        &read::<f32>(&y[1]),
        &[
            0.6254309284,
            0.0935448404,
            0.2810242312,
            0.1120055161,
            0.7123348681,
            0.1756596158,
        ],
    );
}

#[test]
fn missing_values_follow_the_flag() {
    let flags = ints("nodes_missing_value_tracks_true", &[1, 0, 0, 0, 0, 0]);
    let k = parse(Classifier::parse, &classifier_node("NONE", vec![flags])).unwrap();
    // tree 0: NaN goes true (flag set); tree 1: NaN < 1 is false, no flag
    let y = k.eval(tvec!(value(&[2], &[f32::NAN, f32::NAN]))).unwrap();
    assert_eq!(y[1].shape(), &[1, 3]);
    close(&read::<f32>(&y[1]), &[1.1, -0.8, 0.3]);
}

#[test]
fn binary_layout_with_one_weighted_class() {
    let nodes: &[N] = &[
        (0, 0, "BRANCH_LEQ", 0, 0.0, 1, 2),
        (0, 1, "LEAF", 0, 0.0, 0, 0),
        (0, 2, "LEAF", 0, 0.0, 0, 0),
    ];
    let votes: &[V] = &[(0, 1, 0, -2.0), (0, 2, 0, 3.0)];
    let mut attrs = trees("class", nodes, votes);
    attrs.push(ints("classlabels_int64s", &[0, 1]));
    attrs.push(string("post_transform", "LOGISTIC"));
    let k = parse(
        Classifier::parse,
        &node("TreeEnsembleClassifier", 1, 2, attrs),
    )
    .unwrap();
    // s = -2 -> logistic([2, -2]); s = 3 -> logistic([-3, 3])
    let y = k.eval(tvec!(value(&[2, 1], &[-1f32, 1.0]))).unwrap();
    assert_eq!(read::<i64>(&y[0]), vec![0, 1]);
    close(
        &read::<f32>(&y[1]),
        &[0.8807970780, 0.1192029220, 0.0474258732, 0.9525741268],
    );

    let votes: &[V] = &[(0, 1, 0, 0.25), (0, 2, 0, 0.75)];
    let mut attrs = trees("class", nodes, votes);
    attrs.push(ints("classlabels_int64s", &[3, 8]));
    let k = parse(
        Classifier::parse,
        &node("TreeEnsembleClassifier", 1, 2, attrs),
    )
    .unwrap();
    // NONE: [1 - s, s]
    let y = k.eval(tvec!(value(&[2, 1], &[-1f32, 1.0]))).unwrap();
    assert_eq!(read::<i64>(&y[0]), vec![3, 8]);
    close(&read::<f32>(&y[1]), &[0.75, 0.25, 0.25, 0.75]);
}

#[test]
fn string_labels() {
    let mut attrs = trees("class", NODES, VOTES);
    attrs.push(strings("classlabels_strings", &["a", "b", "c"]));
    let k = parse(
        Classifier::parse,
        &node("TreeEnsembleClassifier", 1, 2, attrs),
    )
    .unwrap();
    let y = k
        .eval(tvec!(value(&[2, 2], &[0.5f32, 1.0, 0.7, 0.2])))
        .unwrap();
    assert_eq!(read::<String>(&y[0]), vec!["a", "b"]);
}

/// Tree 0: x0 > 1 ? (t0 += 4, t1 += 2) : (t0 += 0). Tree 1: a leaf, t0 += 2.
fn regressor(agg: &str, post: &str, base: Option<&[f32]>) -> Regressor {
    let nodes: &[N] = &[
        (0, 0, "BRANCH_GT", 0, 1.0, 1, 2),
        (0, 1, "LEAF", 0, 0.0, 0, 0),
        (0, 2, "LEAF", 0, 0.0, 0, 0),
        (1, 0, "LEAF", 0, 0.0, 0, 0),
    ];
    let votes: &[V] = &[
        (0, 1, 0, 4.0),
        (0, 1, 1, 2.0),
        (0, 2, 0, 0.0),
        (1, 0, 0, 2.0),
    ];
    let mut attrs = trees("target", nodes, votes);
    attrs.push(int("n_targets", 2));
    attrs.push(string("aggregate_function", agg));
    attrs.push(string("post_transform", post));
    if let Some(b) = base {
        attrs.push(floats("base_values", b));
    }
    parse(
        Regressor::parse,
        &node("TreeEnsembleRegressor", 1, 1, attrs),
    )
    .unwrap()
}

#[test]
fn regressor_aggregates() {
    let x = || tvec!(value(&[2, 1], &[2f32, 0.0]));
    let run = |r: Regressor| read::<f32>(&r.eval(x()).unwrap()[0]);
    // row 0 votes: t0 {4, 2}, t1 {2}; row 1 votes: t0 {0, 2}, t1 none
    assert_eq!(run(regressor("SUM", "NONE", None)), vec![6., 2., 2., 0.]);
    assert_eq!(
        run(regressor("AVERAGE", "NONE", Some(&[1., -1.]))),
        vec![4., 0., 2., -1.]
    );
    assert_eq!(run(regressor("MIN", "NONE", None)), vec![2., 2., 0., 0.]);
    assert_eq!(
        run(regressor("MAX", "NONE", Some(&[0., 1.]))),
        vec![4., 3., 2., 1.]
    );
    close(
        &run(regressor("SUM", "LOGISTIC", None)),
        &[0.9975273768, 0.8807970780, 0.8807970780, 0.5],
    );
}

#[test]
fn single_target_regressor_applies_only_probit() {
    let nodes: &[N] = &[(0, 0, "LEAF", 0, 0.0, 0, 0)];
    let votes: &[V] = &[(0, 0, 0, 0.975)];
    for (post, want) in [("LOGISTIC", 0.975), ("PROBIT", 1.959964)] {
        let mut attrs = trees("target", nodes, votes);
        attrs.push(string("post_transform", post));
        let r = parse(
            Regressor::parse,
            &node("TreeEnsembleRegressor", 1, 1, attrs),
        )
        .unwrap();
        let y = read::<f32>(&r.eval(tvec!(value(&[1, 1], &[0f32]))).unwrap()[0]);
        assert!((y[0] as f64 - want).abs() < 5e-3, "{post}: {y:?}");
    }
}

#[test]
fn malformed_ensembles_are_rejected() {
    let check = |nodes: &[N], votes: &[V], want: &str| {
        let mut attrs = trees("class", nodes, votes);
        attrs.push(ints("classlabels_int64s", &[0, 1, 2]));
        let e = parse(
            Classifier::parse,
            &node("TreeEnsembleClassifier", 1, 2, attrs),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(want), "{e} does not contain {want}");
    };
    let leaf = |t, n| (t, n, "LEAF", 0, 0.0, 0, 0);
    let cyclic: &[N] = &[
        (0, 0, "BRANCH_LEQ", 0, 0.0, 1, 2),
        (0, 1, "BRANCH_LEQ", 0, 0.0, 0, 2),
        leaf(0, 2),
    ];
    check(cyclic, &[(0, 2, 0, 1.0)], "cycle");
    let dangling: &[N] = &[(0, 0, "BRANCH_LEQ", 0, 0.0, 1, 5), leaf(0, 1)];
    check(dangling, &[], "node 5 does not exist");
    let own: &[N] = &[(0, 0, "BRANCH_LEQ", 0, 0.0, 0, 1), leaf(0, 1)];
    check(own, &[], "itself");
    check(&[leaf(0, 0)], &[(0, 0, 3, 1.0)], "out of range");
    check(&[leaf(0, 0)], &[(0, 7, 0, 1.0)], "does not exist");
    check(&[leaf(0, 0), leaf(0, 0)], &[], "defined twice");
    check(&[(0, 0, "BRANCH_XX", 0, 0.0, 0, 0)], &[], "mode");
    check(
        &[(0, 0, "BRANCH_LEQ", -1, 0.0, 1, 1), leaf(0, 1)],
        &[],
        "negative",
    );

    // Too few features is an evaluation error, not a crash.
    let k = parse(Classifier::parse, &classifier_node("NONE", vec![])).unwrap();
    let e = k.eval(tvec!(value(&[1, 1], &[0f32]))).unwrap_err();
    assert!(e.to_string().contains("feature #1"), "{e}");
}

fn tensors(items: Vec<(&str, Vec<usize>, TensorData)>) -> Tensors {
    let mut t = Tensors::default();
    for (name, shape, data) in items {
        t.0.insert(name.into(), VTensor::new(name, shape, data).unwrap());
    }
    t
}

#[test]
fn runs_inside_a_model() {
    let engine = TractEngine::default();
    let bytes = model_bytes(
        classifier_node("SOFTMAX", vec![]),
        vec![io("X", FLOAT, &[-1, 2])],
        vec![io("Y", INT64, &[-1]), io("Z", FLOAT, &[-1, 3])],
    );
    let info = engine.inspect(&bytes).unwrap();
    assert_eq!(info.ops, vec!["ai.onnx.ml:TreeEnsembleClassifier"]);
    let input = tensors(vec![(
        "X",
        vec![2, 2],
        TensorData::F32(vec![0.5, 1.0, 0.7, 0.2]),
    )]);
    let out = engine.run(&[1; 32], &bytes, &input).unwrap();
    assert_eq!(out.get("Y").unwrap().data, TensorData::I64(vec![10, 20]));
    assert_eq!(out.get("Z").unwrap().shape, vec![2, 3]);

    let nodes: &[N] = &[(0, 0, "LEAF", 0, 0.0, 0, 0)];
    let mut attrs = trees("target", nodes, &[(0, 0, 0, 1.5)]);
    attrs.push(floats("base_values", &[0.5]));
    let bytes = model_bytes(
        node("TreeEnsembleRegressor", 1, 1, attrs),
        vec![io("X", INT64, &[-1, 3])],
        vec![io("Y", FLOAT, &[-1, 1])],
    );
    let input = tensors(vec![(
        "X",
        vec![2, 3],
        TensorData::I64(vec![1, 2, 3, 4, 5, 6]),
    )]);
    let out = engine.run(&[2; 32], &bytes, &input).unwrap();
    assert_eq!(out.get("Y").unwrap().data, TensorData::F32(vec![2.0, 2.0]));
}
