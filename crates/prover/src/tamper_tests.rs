//! A cheating prover against the convolution, max pool, wide rescale and ReLU, constant
//! addition, gather and limb relations: each lie is caught by the verifier.

use crate::model::{Layer, ProverModel, Rounding, Window};
use crate::plan::AuxDef;
use crate::protocol::{prove_with, verify};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn model() -> ProverModel {
    let mut rng = StdRng::seed_from_u64(3);
    let conv = Window {
        c: 1,
        ih: 6,
        iw: 5,
        in_stride: 30,
        oh: 4,
        ow: 3,
        kh: 3,
        kw: 3,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        ph: 0,
        pw: 0,
    };
    let pool = Window {
        c: 2,
        ih: 4,
        iw: 3,
        in_stride: 16,
        oh: 2,
        ow: 1,
        kh: 2,
        kw: 2,
        sh: 2,
        sw: 2,
        dh: 1,
        dw: 1,
        ph: 0,
        pw: 0,
    };
    let mut w = |n: usize, m: i64| (0..n).map(|_| rng.gen_range(-m..m)).collect::<Vec<i64>>();
    let layers = vec![
        Layer::Conv {
            win: conv,
            cout: 2,
            weights: w(18, 1 << 14),
            bias: w(2, 1 << 20),
        },
        Layer::Rescale {
            shift: 18,
            rounding: Rounding::HalfEven,
            out_bits: 32,
        },
        Layer::Relu { in_bits: 32 },
        Layer::MaxPool {
            win: pool,
            in_bits: 32,
        },
        Layer::MatMul {
            rows: 3,
            cols: 4,
            weights: w(12, 1 << 14),
            bias: vec![0; 3],
        },
        Layer::Rescale {
            shift: 4,
            rounding: Rounding::HalfEven,
            out_bits: 32,
        },
        Layer::AddConst {
            values: vec![5, -7, 100],
            out_bits: 32,
        },
    ];
    ProverModel::new(30, 32, layers).unwrap()
}

#[test]
fn lies_in_every_new_relation_are_rejected() {
    let m = model();
    let mut rng = StdRng::seed_from_u64(11);
    let x: Vec<i64> = (0..30)
        .map(|_| rng.gen_range(-(1 << 18)..1 << 18))
        .collect();
    let (y, p) = prove_with(&m, &x, None).unwrap();
    assert_eq!(y, m.evaluate(&x).unwrap());
    verify(m.commitment(), &x, &y, &p).unwrap();
    let vals = m.run(&x).unwrap();
    let neg = vals[2]
        .iter()
        .position(|v| *v < 0)
        .expect("a negative pre-activation");
    let pos = vals[2]
        .iter()
        .position(|v| *v > 0)
        .expect("a positive pre-activation");
    let aux_id =
        |f: &dyn Fn(&AuxDef) -> bool| m.plan.nl + 1 + m.plan.aux.iter().position(f).unwrap();
    let gather = aux_id(&|d| matches!(d, AuxDef::Gather { .. }));
    let limb = aux_id(&|d| matches!(d, AuxDef::Limb { .. }));
    let half = aux_id(&|d| matches!(d, AuxDef::Half(_)));
    // the window of pool output 0 reads relu outputs at 0, 1, 3, 4 of channel 0
    let window: Vec<i64> = [0, 1, 3, 4].iter().map(|i| vals[3][*i]).collect();
    let mut sorted = window.clone();
    sorted.sort_unstable();
    let (second, top) = (sorted[2], sorted[3]);
    type Case = (&'static str, Box<dyn Fn(&mut [Vec<i64>], bool)>);
    let cases: Vec<Case> = vec![
        (
            "conv output",
            Box::new(|v, aux| {
                if !aux {
                    v[1][0] += 1
                }
            }),
        ),
        (
            "conv output gap",
            Box::new(|v, aux| {
                if !aux {
                    v[1][13] = 5
                }
            }),
        ),
        (
            "rescale output",
            Box::new(|v, aux| {
                if !aux {
                    v[2][0] += 1
                }
            }),
        ),
        (
            "rescale output far",
            Box::new(|v, aux| {
                if !aux {
                    v[2][1] += 1 << 17
                }
            }),
        ),
        (
            "relu passes a negative value",
            Box::new(move |v, aux| {
                if !aux {
                    v[3][neg] = v[2][neg]
                }
            }),
        ),
        (
            "relu zeroes a positive value",
            Box::new(move |v, aux| {
                if !aux {
                    v[3][pos] = 0
                }
            }),
        ),
        (
            "max pool picks a smaller tap",
            Box::new(move |v, aux| {
                if !aux {
                    v[4][0] = second
                }
            }),
        ),
        (
            "max pool above every tap",
            Box::new(move |v, aux| {
                if !aux {
                    v[4][0] = top + 1
                }
            }),
        ),
        (
            "matmul output",
            Box::new(|v, aux| {
                if !aux {
                    v[5][1] -= 1
                }
            }),
        ),
        (
            "addend",
            Box::new(|v, aux| {
                if !aux {
                    v[6][2] += 3
                }
            }),
        ),
        (
            "gathered entry",
            Box::new(move |v, aux| {
                if aux {
                    v[gather][0] += 1
                }
            }),
        ),
        (
            "limb",
            Box::new(move |v, aux| {
                if aux {
                    v[limb][0] += 1
                }
            }),
        ),
        (
            "parity witness",
            Box::new(move |v, aux| {
                if aux {
                    v[half][0] += 1
                }
            }),
        ),
    ];
    for (name, t) in cases {
        let (y2, p2) = prove_with(&m, &x, Some(t.as_ref())).unwrap();
        assert_eq!(y2, y);
        assert!(
            verify(m.commitment(), &x, &y, &p2).is_err(),
            "{name} accepted"
        );
    }
}

fn head_model() -> ProverModel {
    let (grid, lo, exp) = verity_engine::exact::softmax_exp_table().unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let layers = vec![
        Layer::MatMul {
            rows: 4,
            cols: 8,
            weights: (0..32)
                .map(|_| rng.gen_range(-(1 << 12)..1 << 12))
                .collect(),
            bias: vec![0; 4],
        },
        Layer::Rescale {
            shift: 8,
            rounding: Rounding::HalfEven,
            out_bits: 32,
        },
        Layer::Softmax {
            lanes: 1,
            n: 4,
            fx: 16,
            fo: 16,
            grid: grid as u32,
            lo,
            exp,
        },
        Layer::Copy { src: 2 },
        Layer::ArgMax {
            lanes: 1,
            n: 4,
            last: false,
            in_bits: 32,
        },
        Layer::Concat { parts: vec![5, 3] },
    ];
    ProverModel::new(8, 32, layers).unwrap()
}

#[test]
fn lies_in_the_classifier_head_are_rejected() {
    let m = head_model();
    let x: Vec<i64> = vec![65536, -30000, 12345, 70000, -65536, 4000, 100, -9];
    let (y, p) = prove_with(&m, &x, None).unwrap();
    assert_eq!(y, m.evaluate(&x).unwrap());
    verify(m.commitment(), &x, &y, &p).unwrap();
    let vals = m.run(&x).unwrap();
    let best = vals[5][0] as usize;
    let other = (best + 1) % 4;
    let onehot = |k: usize| {
        m.plan.nl
            + 1
            + m.plan
                .aux
                .iter()
                .position(|d| matches!(d, AuxDef::OneHot { k: j, .. } if *j == k))
                .unwrap()
    };
    let (b_best, b_other) = (onehot(best), onehot(other));
    let poly = m.plan.nl
        + 1
        + m.plan
            .aux
            .iter()
            .position(|d| matches!(d, AuxDef::Poly(_)))
            .unwrap();
    let table = m.plan.nl
        + 1
        + m.plan
            .aux
            .iter()
            .position(|d| matches!(d, AuxDef::TableAt { .. }))
            .unwrap();
    type Case = (&'static str, Box<dyn Fn(&mut [Vec<i64>], bool)>);
    let cases: Vec<Case> = vec![
        (
            "softmax output",
            Box::new(|v, aux| {
                if !aux {
                    v[3][1] += 1
                }
            }),
        ),
        (
            "copied vector",
            Box::new(|v, aux| {
                if !aux {
                    v[4][0] += 1
                }
            }),
        ),
        (
            "argmax index",
            Box::new(move |v, aux| {
                if !aux {
                    v[5][0] = other as i64
                }
            }),
        ),
        (
            "argmax index with a matching one-hot",
            Box::new(move |v, aux| {
                if aux {
                    v[5][0] = other as i64;
                    v[b_best][0] = 0;
                    v[b_other][0] = 1;
                }
            }),
        ),
        (
            "interpolation product",
            Box::new(move |v, aux| {
                if aux {
                    v[poly][0] += 1
                }
            }),
        ),
        (
            "table entry",
            Box::new(move |v, aux| {
                if aux {
                    v[table][0] += 1
                }
            }),
        ),
    ];
    for (name, t) in cases {
        let (_, p2) = prove_with(&m, &x, Some(t.as_ref())).unwrap();
        assert!(
            verify(m.commitment(), &x, &y, &p2).is_err(),
            "{name} accepted"
        );
    }
}
