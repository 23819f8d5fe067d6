//! Property tests of exact mode, operator by operator (spec §4): each test
//! builds a one-node ONNX model, runs it in exact mode on random inputs
//! lying on the Q.16 grid (so input quantization is exact), and compares
//! every output integer with a straightforward reference written from the
//! spec in this file.

use proptest::prelude::*;
use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use verity_engine::{ExactModel, ExactParams, Tensor, TensorData, Tensors};

const F: i32 = 16;

/// A reference for one element.
type Check = Box<dyn Fn(i64) -> i64>;

// ---------------------------------------------------------------- builders

fn io(name: &str, dims: &[usize]) -> ValueInfoProto {
    io_typed(name, dims, 1)
}

fn io_typed(name: &str, dims: &[usize], elem_type: i32) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(dimension::Value::DimValue(*d as i64)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

fn init(name: &str, dims: &[usize], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|d| *d as i64).collect(),
        data_type: 1,
        float_data: v.to_vec(),
        ..Default::default()
    }
}

struct Case {
    op: &'static str,
    inputs: Vec<(&'static str, Vec<usize>)>,
    inits: Vec<TensorProto>,
    attrs: Vec<AttributeProto>,
    out: Vec<usize>,
}

fn bytes(c: &Case) -> Vec<u8> {
    let mut names: Vec<String> = c.inputs.iter().map(|(n, _)| n.to_string()).collect();
    names.extend(c.inits.iter().map(|t| t.name.clone()));
    let node = NodeProto {
        op_type: c.op.into(),
        name: "n".into(),
        input: names,
        output: vec!["Y".into()],
        attribute: c.attrs.clone(),
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: "".into(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: vec![node],
            input: c.inputs.iter().map(|(n, s)| io(n, s)).collect(),
            output: vec![io_typed(
                "Y",
                &c.out,
                if c.op.starts_with("Arg") { 7 } else { 1 },
            )],
            initializer: c.inits.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Runs `c` on integer inputs `X` (given as `X / 2^16`); the output integers.
fn run(c: &Case, xs: &[Vec<i64>]) -> Result<Vec<i64>, String> {
    let m = ExactModel::compile(&bytes(c), &ExactParams::default()).map_err(|e| e.to_string())?;
    let mut t = Tensors::default();
    for ((name, shape), x) in c.inputs.iter().zip(xs) {
        let data = x.iter().map(|v| *v as f32 / 65536.0).collect();
        t.0.insert(
            name.to_string(),
            Tensor::new(name, shape.clone(), TensorData::F32(data)).unwrap(),
        );
    }
    let out = m.run_exact(&t).map_err(|e| e.to_string())?;
    assert_eq!(out[0].shape, c.out);
    Ok(out[0].values.clone())
}

// ------------------------------------------------- reference arithmetic

/// round(n / d), ties to even (d > 0).
fn rdiv(n: i128, d: i128) -> i128 {
    let q = n.div_euclid(d);
    let r = n - q * d;
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 != 0 => q + 1,
        _ => q,
    }
}

fn rshift(v: i128, s: i32) -> i128 {
    if s <= 0 {
        v << -s
    } else {
        rdiv(v, 1i128 << s)
    }
}

/// The weight rule: (integers, frac).
fn weights(c: &[f32]) -> (Vec<i128>, i32) {
    let m = c.iter().fold(0f64, |m, v| m.max((*v as f64).abs()));
    if m == 0.0 {
        return (vec![0; c.len()], 0);
    }
    let e = m.log2().floor() as i32 + 1;
    let f = 15 - e;
    (
        c.iter()
            .map(|v| (*v as f64 * 2f64.powi(f)).round_ties_even() as i128)
            .collect(),
        f,
    )
}

/// The table lookup of §4.4 with entries from `phi` (binary64 libm).
fn table(phi: fn(f64) -> f64, f: i32, lo: i64, hi: i64, x: i64) -> i64 {
    let entry = |j: i64| (phi(j as f64 / 256.0) * 2f64.powi(f)).round_ties_even() as i64;
    let s = F - 8;
    let j = x >> s;
    let r = x - (j << s);
    if j < lo {
        return entry(lo);
    }
    if j > hi || (j == hi && r > 0) {
        return entry(hi);
    }
    if r == 0 {
        return entry(j);
    }
    entry(j) + rshift((entry(j + 1) - entry(j)) as i128 * r as i128, s) as i64
}

/// The logarithm of §4.4 at output scale 16 for `x * 2^-fx`, `x > 0`.
fn ln_ref(x: i64, fx: i32) -> i64 {
    let p = 63 - x.leading_zeros() as i32;
    let u = (x as u64) << (62 - p);
    let j = (u >> 54) as i64 - 256;
    let r = (u & ((1u64 << 54) - 1)) as i128;
    let e = |k: i64| ((1.0 + k as f64 / 256.0).ln() * 65536.0).round_ties_even() as i64;
    let m = e(j) + rshift((e(j + 1) - e(j)) as i128 * r, 54) as i64;
    m + ((p - fx) as f64 * std::f64::consts::LN_2 * 65536.0).round_ties_even() as i64
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn erf(x: f64) -> f64 {
    let (mut sum, mut term, mut n) = (0f64, x, 0f64);
    while n < 400.0 {
        sum += term;
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

fn vals(n: usize, bound: i64) -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(-bound..=bound, n)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    }
}

fn unary(op: &'static str, attrs: Vec<AttributeProto>, n: usize) -> Case {
    Case {
        op,
        inputs: vec![("X", vec![n])],
        inits: vec![],
        attrs,
        out: vec![n],
    }
}

// ------------------------------------------------------------------ tests

proptest! {
    #![proptest_config(config())]

    #[test]
    fn add_sub_mul_div(x in vals(6, 1 << 22), y in vals(6, 1 << 22)) {
        for op in ["Add", "Sub", "Mul", "Div", "Max", "Min"] {
            let c = Case { op, inputs: vec![("A", vec![2, 3]), ("B", vec![2, 3])], inits: vec![], attrs: vec![], out: vec![2, 3] };
            if op == "Div" && y.contains(&0) { continue; }
            let got = run(&c, &[x.clone(), y.clone()]).unwrap();
            let want: Vec<i64> = x.iter().zip(&y).map(|(a, b)| {
                let (a, b) = (*a as i128, *b as i128);
                (match op {
                    "Add" => a + b, "Sub" => a - b, "Max" => a.max(b), "Min" => a.min(b),
                    "Mul" => rshift(a * b, F),
                    _ => if b < 0 { rdiv(-(a << F), -b) } else { rdiv(a << F, b) },
                }) as i64
            }).collect();
            prop_assert_eq!(got, want, "{}", op);
        }
    }

    #[test]
    fn mul_and_div_by_constants(x in vals(4, 1 << 24), c in prop::collection::vec(-8.0f32..8.0, 4)) {
        prop_assume!(c.iter().all(|v| v.abs() > 1e-3));
        let (q, f) = weights(&c);
        for op in ["Mul", "Div"] {
            let case = Case { op, inputs: vec![("A", vec![4])], inits: vec![init("C", &[4], &c)], attrs: vec![], out: vec![4] };
            let got = run(&case, std::slice::from_ref(&x)).unwrap();
            let want: Vec<i64> = x.iter().zip(&q).map(|(a, b)| {
                let a = *a as i128;
                (if op == "Mul" { rshift(a * b, f) } else if *b < 0 { rdiv(-(a << f), -b) } else { rdiv(a << f, *b) }) as i64
            }).collect();
            prop_assert_eq!(got, want, "{}", op);
        }
    }

    #[test]
    fn activations(x in vals(16, 20 << 16), alpha in 0.001f32..0.5) {
        let (q, fa) = weights(&[alpha]);
        let cases: Vec<(Case, Check)> = vec![
            (unary("Relu", vec![], 16), Box::new(|v| v.max(0))),
            (unary("LeakyRelu", vec![float("alpha", alpha)], 16), Box::new(move |v| if v >= 0 { v } else { rshift(v as i128 * q[0], fa) as i64 })),
            (unary("Sigmoid", vec![], 16), Box::new(|v| table(sigmoid, F, -12 * 256, 12 * 256, v))),
            (unary("Tanh", vec![], 16), Box::new(|v| table(f64::tanh, F, -7 * 256, 7 * 256, v))),
            (unary("Erf", vec![], 16), Box::new(|v| table(erf, F, -4 * 256, 4 * 256, v))),
            (unary("Abs", vec![], 16), Box::new(|v| v.abs())),
            (unary("Neg", vec![], 16), Box::new(|v| -v)),
            (unary("Floor", vec![], 16), Box::new(|v| (v >> 16) << 16)),
            (unary("Round", vec![], 16), Box::new(|v| (rshift(v as i128, 16) << 16) as i64)),
        ];
        for (c, f) in cases {
            let got = run(&c, std::slice::from_ref(&x)).unwrap();
            let want: Vec<i64> = x.iter().map(|v| f(*v)).collect();
            prop_assert_eq!(got, want, "{}", c.op);
        }
    }

    #[test]
    fn exp_sqrt_reciprocal(x in vals(8, 10 << 16)) {
        let got = run(&unary("Exp", vec![], 8), std::slice::from_ref(&x)).unwrap();
        let want: Vec<i64> = x.iter().map(|v| table(f64::exp, F, -12 * 256, 2839, *v)).collect();
        prop_assert_eq!(got, want);
        let pos: Vec<i64> = x.iter().map(|v| v.abs() + 1).collect();
        let got = run(&unary("Sqrt", vec![], 8), std::slice::from_ref(&pos)).unwrap();
        let want: Vec<i64> = pos.iter().map(|v| {
            let n = (*v as u128) << F;
            let s = (n as f64).sqrt() as u128;
            let s = (s.saturating_sub(2)..s + 3).rev().find(|k| k * k <= n).unwrap();
            (if n - s * s > s { s + 1 } else { s }) as i64
        }).collect();
        prop_assert_eq!(got, want);
        let got = run(&unary("Reciprocal", vec![], 8), std::slice::from_ref(&pos)).unwrap();
        let want: Vec<i64> = pos.iter().map(|v| rdiv(1 << (2 * F), *v as i128) as i64).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn ln_and_log_softmax(x in vals(10, 8 << 16)) {
        let pos: Vec<i64> = x.iter().map(|v| v.abs() + 1).collect();
        let got = run(&unary("Log", vec![], 10), std::slice::from_ref(&pos)).unwrap();
        let want: Vec<i64> = pos.iter().map(|v| ln_ref(*v, F)).collect();
        prop_assert_eq!(got, want);
        let c = Case { op: "LogSoftmax", inputs: vec![("X", vec![2, 5])], inits: vec![], attrs: vec![int("axis", 1)], out: vec![2, 5] };
        let got = run(&c, std::slice::from_ref(&x)).unwrap();
        let mut want = vec![];
        for row in x.chunks(5) {
            let m = *row.iter().max().unwrap();
            let s: i64 = row.iter().map(|v| table(f64::exp, 30, -22 * 256, 0, v - m)).sum();
            let l = ln_ref(s, 30);
            want.extend(row.iter().map(|v| v - m - l));
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn softmax(x in vals(10, 8 << 16)) {
        let c = Case { op: "Softmax", inputs: vec![("X", vec![2, 5])], inits: vec![], attrs: vec![int("axis", 1)], out: vec![2, 5] };
        let got = run(&c, std::slice::from_ref(&x)).unwrap();
        let mut want = vec![];
        for row in x.chunks(5) {
            let m = *row.iter().max().unwrap();
            let e: Vec<i64> = row.iter().map(|v| table(f64::exp, 30, -22 * 256, 0, v - m)).collect();
            let s: i128 = e.iter().map(|v| *v as i128).sum();
            want.extend(e.iter().map(|v| rdiv((*v as i128) << F, s) as i64));
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn matmul_and_gemm(x in vals(6, 4 << 16), w in prop::collection::vec(-2.0f32..2.0, 12), b in prop::collection::vec(-1.0f32..1.0, 4)) {
        // X [2, 3] . W [3, 4]
        let (q, f) = weights(&w);
        let c = Case { op: "MatMul", inputs: vec![("X", vec![2, 3])], inits: vec![init("W", &[3, 4], &w)], attrs: vec![], out: vec![2, 4] };
        let got = run(&c, std::slice::from_ref(&x)).unwrap();
        let mut want = vec![];
        for i in 0..2 { for j in 0..4 {
            let s: i128 = (0..3).map(|k| x[i * 3 + k] as i128 * q[k * 4 + j]).sum();
            want.push(rshift(s, f) as i64);
        }}
        prop_assert_eq!(&got, &want);
        // Gemm with transB = 1 (W given as [4, 3]) and a bias: MatMul then Add.
        let wt: Vec<f32> = (0..4).flat_map(|j| (0..3).map(move |k| (j, k))).map(|(j, k)| w[k * 4 + j]).collect();
        let c = Case { op: "Gemm", inputs: vec![("X", vec![2, 3])], inits: vec![init("W", &[4, 3], &wt), init("B", &[4], &b)], attrs: vec![int("transB", 1)], out: vec![2, 4] };
        let got = run(&c, std::slice::from_ref(&x)).unwrap();
        let bq: Vec<i64> = b.iter().map(|v| (*v as f64 * 65536.0).round_ties_even() as i64).collect();
        let want2: Vec<i64> = want.iter().enumerate().map(|(i, v)| v + bq[i % 4]).collect();
        prop_assert_eq!(got, want2);
    }

    #[test]
    fn conv2d(
        x in vals(2 * 4 * 5, 4 << 16),
        w in prop::collection::vec(-1.0f32..1.0, 4 * 2 * 2 * 3),
        b in prop::collection::vec(-1.0f32..1.0, 4),
        stride in 1usize..3, pad in 0usize..2, dil in 1usize..3, group in 1usize..3,
    ) {
        let (cin, h, wd, cout, kh, kw) = (2usize, 4usize, 5usize, 4usize, 2usize, 3usize);
        let cg = cin / group;
        let w = &w[..cout * cg * kh * kw];
        let oh = (h + 2 * pad - dil * (kh - 1) - 1) / stride + 1;
        let ow = (wd + 2 * pad - dil * (kw - 1) - 1) / stride + 1;
        let c = Case {
            op: "Conv",
            inputs: vec![("X", vec![1, cin, h, wd])],
            inits: vec![init("W", &[cout, cg, kh, kw], w), init("B", &[cout], &b)],
            attrs: vec![ints("strides", &[stride as i64; 2]), ints("pads", &[pad as i64; 4]), ints("dilations", &[dil as i64; 2]), int("group", group as i64)],
            out: vec![1, cout, oh, ow],
        };
        let got = run(&c, std::slice::from_ref(&x)).unwrap();
        let (q, f) = weights(w);
        let og = cout / group;
        let mut want = vec![];
        for o in 0..cout { for y in 0..oh { for z in 0..ow {
            let mut s = (b[o] as f64 * 2f64.powi(F + f)).round_ties_even() as i128;
            let g = o / og;
            for ci in 0..cg { for ky in 0..kh { for kx in 0..kw {
                let iy = (y * stride + ky * dil) as i64 - pad as i64;
                let ix = (z * stride + kx * dil) as i64 - pad as i64;
                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 { continue; }
                let xv = x[((g * cg + ci) * h + iy as usize) * wd + ix as usize] as i128;
                s += xv * q[((o * cg + ci) * kh + ky) * kw + kx];
            }}}
            want.push(rshift(s, f) as i64);
        }}}
        prop_assert_eq!(got, want);
    }

    #[test]
    fn pools_and_reductions(x in vals(2 * 5 * 5, 4 << 16), cip in 0i64..2) {
        let pool = |op: &'static str, attrs: Vec<AttributeProto>, out: Vec<usize>| Case { op, inputs: vec![("X", vec![1, 2, 5, 5])], inits: vec![], attrs, out };
        let attrs = vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])];
        let mut a2 = attrs.clone();
        a2.push(int("count_include_pad", cip));
        let got_max = run(&pool("MaxPool", attrs, vec![1, 2, 3, 3]), std::slice::from_ref(&x)).unwrap();
        let got_avg = run(&pool("AveragePool", a2, vec![1, 2, 3, 3]), std::slice::from_ref(&x)).unwrap();
        let (mut wmax, mut wavg) = (vec![], vec![]);
        for c in 0..2 { for y in 0..3 { for z in 0..3 {
            let (mut m, mut s, mut n, mut np) = (i64::MIN, 0i128, 0i128, 0i128);
            for ky in 0..3 { for kx in 0..3 {
                let (iy, ix) = ((y * 2 + ky) as i64 - 1, (z * 2 + kx) as i64 - 1);
                if iy < 6 && ix < 6 { np += 1; }
                if iy < 0 || ix < 0 || iy >= 5 || ix >= 5 { continue; }
                let v = x[(c * 5 + iy as usize) * 5 + ix as usize];
                m = m.max(v); s += v as i128; n += 1;
            }}
            wmax.push(m);
            wavg.push(rdiv(s, if cip == 1 { np } else { n }) as i64);
        }}}
        prop_assert_eq!(got_max, wmax);
        prop_assert_eq!(got_avg, wavg);
        let gap = run(&pool("GlobalAveragePool", vec![], vec![1, 2, 1, 1]), std::slice::from_ref(&x)).unwrap();
        let want: Vec<i64> = x.chunks(25).map(|p| rdiv(p.iter().map(|v| *v as i128).sum(), 25) as i64).collect();
        prop_assert_eq!(gap, want);
        let mean = Case { op: "ReduceMean", inputs: vec![("X", vec![1, 2, 5, 5])], inits: vec![], attrs: vec![ints("axes", &[2, 3]), int("keepdims", 1)], out: vec![1, 2, 1, 1] };
        let got = run(&mean, std::slice::from_ref(&x)).unwrap();
        let want: Vec<i64> = x.chunks(25).map(|p| rdiv(p.iter().map(|v| *v as i128).sum(), 25) as i64).collect();
        prop_assert_eq!(got, want);
        let am = Case { op: "ArgMax", inputs: vec![("X", vec![2, 25])], inits: vec![], attrs: vec![int("axis", 1), int("keepdims", 0)], out: vec![2] };
        let got = run(&am, std::slice::from_ref(&x)).unwrap();
        let want: Vec<i64> = x.chunks(25).map(|p| {
            let mut b = 0;
            for (i, v) in p.iter().enumerate() { if *v > p[b] { b = i; } }
            b as i64
        }).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn data_movement_is_exact(x in vals(24, 1 << 23)) {
        let cases = [
            Case { op: "Transpose", inputs: vec![("X", vec![2, 3, 4])], inits: vec![], attrs: vec![ints("perm", &[2, 0, 1])], out: vec![4, 2, 3] },
            Case { op: "Flatten", inputs: vec![("X", vec![2, 3, 4])], inits: vec![], attrs: vec![int("axis", 1)], out: vec![2, 12] },
        ];
        let t = &cases[0];
        let got = run(t, std::slice::from_ref(&x)).unwrap();
        let mut want = vec![];
        for k in 0..4 { for i in 0..2 { for j in 0..3 { want.push(x[(i * 3 + j) * 4 + k]); }}}
        prop_assert_eq!(got, want);
        let got = run(&cases[1], std::slice::from_ref(&x)).unwrap();
        prop_assert_eq!(got, x.clone());
        let cat = Case { op: "Concat", inputs: vec![("A", vec![2, 3]), ("B", vec![2, 3])], inits: vec![], attrs: vec![int("axis", 1)], out: vec![2, 6] };
        let got = run(&cat, &[x[..6].to_vec(), x[6..12].to_vec()]).unwrap();
        let want: Vec<i64> = (0..2).flat_map(|i| x[i * 3..i * 3 + 3].iter().chain(&x[6 + i * 3..6 + i * 3 + 3]).copied().collect::<Vec<_>>()).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn clip_and_batchnorm(x in vals(8, 8 << 16), lo in -2.0f32..0.0, hi in 0.0f32..2.0, g in prop::collection::vec(0.5f32..2.0, 2), m in prop::collection::vec(-1.0f32..1.0, 2)) {
        let c = Case { op: "Clip", inputs: vec![("X", vec![8])], inits: vec![init("lo", &[], &[lo]), init("hi", &[], &[hi])], attrs: vec![], out: vec![8] };
        let got = run(&c, std::slice::from_ref(&x)).unwrap();
        let q = |v: f32| (v as f64 * 65536.0).round_ties_even() as i64;
        let want: Vec<i64> = x.iter().map(|v| (*v).max(q(lo)).min(q(hi))).collect();
        prop_assert_eq!(got, want);
        // BatchNormalization: Mul by scale = g / sqrt(var + eps) (binary32), Add shift.
        let var = [1.5f32, 0.25];
        let beta = [0.1f32, -0.2];
        let c = Case {
            op: "BatchNormalization",
            inputs: vec![("X", vec![1, 2, 2, 2])],
            inits: vec![init("g", &[2], &g), init("b", &[2], &beta), init("m", &[2], &m), init("v", &[2], &var)],
            attrs: vec![float("epsilon", 1e-5)],
            out: vec![1, 2, 2, 2],
        };
        let got = run(&c, std::slice::from_ref(&x)).unwrap();
        let scale: Vec<f32> = (0..2).map(|i| g[i] / (var[i] + 1e-5f32).sqrt()).collect();
        let shift: Vec<f32> = (0..2).map(|i| beta[i] - (m[i] * g[i]) / (var[i] + 1e-5f32).sqrt()).collect();
        let (sq, sf) = weights(&scale);
        let want: Vec<i64> = x.iter().enumerate().map(|(i, v)| {
            let ch = i / 4;
            rshift(*v as i128 * sq[ch], sf) as i64 + q(shift[ch])
        }).collect();
        prop_assert_eq!(got, want);
    }
}
