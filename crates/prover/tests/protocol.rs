//! End-to-end: completeness and soundness of `prove`/`verify` on integer MLPs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use verity_prover::{
    prove, verify, Layer, LookupTable, ModelCommitment, Proof, ProverModel, Rounding,
};

fn matmul(rng: &mut StdRng, rows: usize, cols: usize, w: i64) -> Layer {
    Layer::MatMul {
        rows,
        cols,
        weights: (0..rows * cols).map(|_| rng.gen_range(-w..w)).collect(),
        bias: (0..rows).map(|_| rng.gen_range(-4 * w..4 * w)).collect(),
    }
}

/// matmul → rescale → relu → matmul
fn mlp(seed: u64, input: usize, hidden: usize, out: usize) -> ProverModel {
    let mut rng = StdRng::seed_from_u64(seed);
    let layers = vec![
        matmul(&mut rng, hidden, input, 64),
        Layer::Rescale {
            shift: 8,
            rounding: Rounding::HalfUp,
            out_bits: 12,
        },
        Layer::Relu { in_bits: 12 },
        matmul(&mut rng, out, hidden, 64),
    ];
    ProverModel::new(input, 8, layers).expect("valid model")
}

fn random_input(rng: &mut StdRng, n: usize) -> Vec<i64> {
    (0..n).map(|_| rng.gen_range(-128..128)).collect()
}

#[test]
fn mlp_completeness_over_100_random_inputs() {
    let model = mlp(1, 24, 12, 5);
    let comm = model.commitment().clone();
    let mut rng = StdRng::seed_from_u64(99);
    for _ in 0..100 {
        let x = random_input(&mut rng, 24);
        let (y, proof) = prove(&model, &x).unwrap();
        assert_eq!(y, model.evaluate(&x).unwrap());
        verify(&comm, &x, &y, &proof).unwrap();
    }
}

#[test]
fn soundness_bit_flips_in_output_input_commitment_and_proof() {
    let model = mlp(2, 20, 10, 4);
    let comm = model.commitment().clone();
    let mut rng = StdRng::seed_from_u64(7);
    let x = random_input(&mut rng, 20);
    let (y, proof) = prove(&model, &x).unwrap();
    verify(&comm, &x, &y, &proof).unwrap();

    // every bit of every output value
    for i in 0..y.len() {
        for bit in 0..64 {
            let mut y2 = y.clone();
            y2[i] ^= 1 << bit;
            assert!(
                verify(&comm, &x, &y2, &proof).is_err(),
                "output {i} bit {bit}"
            );
        }
    }
    // every bit of every input value
    for i in 0..x.len() {
        for bit in 0..64 {
            let mut x2 = x.clone();
            x2[i] ^= 1 << bit;
            assert!(
                verify(&comm, &x2, &y, &proof).is_err(),
                "input {i} bit {bit}"
            );
        }
    }
    // every bit of the commitment's encoding
    let cb = comm.to_bytes();
    for pos in 0..cb.len() {
        for bit in 0..8 {
            let mut b = cb.clone();
            b[pos] ^= 1 << bit;
            if let Ok(c2) = ModelCommitment::from_bytes(&b) {
                assert!(
                    verify(&c2, &x, &y, &proof).is_err(),
                    "commitment byte {pos} bit {bit}"
                );
            }
        }
    }
    // bytes of the proof: every byte in release builds, every 13th in debug builds (one bit
    // flip each, rotating the bit)
    let pb = proof.to_bytes();
    let stride = if cfg!(debug_assertions) { 13 } else { 1 };
    for pos in (0..pb.len()).step_by(stride) {
        let mut b = pb.clone();
        b[pos] ^= 1 << (pos % 8);
        assert!(
            verify(&comm, &x, &y, &Proof::from_bytes(&b)).is_err(),
            "proof byte {pos} of {}",
            pb.len()
        );
    }
    // truncated or extended proofs
    assert!(verify(&comm, &x, &y, &Proof::from_bytes(&pb[..pb.len() - 1])).is_err());
    let mut ext = pb.clone();
    ext.push(0);
    assert!(verify(&comm, &x, &y, &Proof::from_bytes(&ext)).is_err());
}

#[test]
fn proof_for_model_a_fails_for_model_b() {
    let a = mlp(3, 16, 8, 4);
    let b = mlp(4, 16, 8, 4); // same shape, other weights
    let mut rng = StdRng::seed_from_u64(5);
    let x = random_input(&mut rng, 16);
    let (y, proof) = prove(&a, &x).unwrap();
    verify(a.commitment(), &x, &y, &proof).unwrap();
    assert!(verify(b.commitment(), &x, &y, &proof).is_err());
    // even with b's true output
    let yb = b.evaluate(&x).unwrap();
    assert!(verify(b.commitment(), &x, &yb, &proof).is_err());
}

#[test]
fn wrong_output_cannot_be_proven_by_swapping_statements() {
    let model = mlp(5, 16, 8, 4);
    let mut rng = StdRng::seed_from_u64(6);
    let x1 = random_input(&mut rng, 16);
    let x2 = random_input(&mut rng, 16);
    let (y1, p1) = prove(&model, &x1).unwrap();
    let (y2, _) = prove(&model, &x2).unwrap();
    assert!(verify(model.commitment(), &x2, &y2, &p1).is_err());
    assert!(verify(model.commitment(), &x1, &y2, &p1).is_err());
    assert!(verify(model.commitment(), &x2, &y1, &p1).is_err());
}

#[test]
fn other_layer_kinds_and_shapes() {
    let mut rng = StdRng::seed_from_u64(11);
    // a sigmoid-like table on [-64, 64), floor rescales, rescale followed by matmul (range
    // check), a final rescale (public output range), odd sizes, a 1-column matmul
    let table = LookupTable {
        in_min: -64,
        values: (-64..64).map(|v: i64| 64 + v / 2 + (v * v) % 7).collect(),
    };
    let layers = vec![
        matmul(&mut rng, 7, 5, 16),
        Layer::Rescale {
            shift: 5,
            rounding: Rounding::Floor,
            out_bits: 7,
        },
        Layer::Lookup(table),
        matmul(&mut rng, 3, 7, 8),
        Layer::Rescale {
            shift: 0,
            rounding: Rounding::HalfUp,
            out_bits: 16,
        },
        matmul(&mut rng, 1, 3, 8),
        Layer::Rescale {
            shift: 3,
            rounding: Rounding::HalfUp,
            out_bits: 16,
        },
    ];
    let model = ProverModel::new(5, 6, layers).unwrap();
    for _ in 0..4 {
        let x: Vec<i64> = (0..5).map(|_| rng.gen_range(-32..32)).collect();
        let (y, proof) = prove(&model, &x).unwrap();
        verify(model.commitment(), &x, &y, &proof).unwrap();
        let mut y2 = y.clone();
        y2[0] += 1;
        assert!(verify(model.commitment(), &x, &y2, &proof).is_err());
    }
    // relu-only model: no weights at all
    let relu = ProverModel::new(3, 4, vec![Layer::Relu { in_bits: 4 }]).unwrap();
    let (y, proof) = prove(&relu, &[-8, 0, 7]).unwrap();
    assert_eq!(y, vec![0, 0, 7]);
    verify(relu.commitment(), &[-8, 0, 7], &y, &proof).unwrap();
    assert!(verify(relu.commitment(), &[-8, 0, 7], &[1, 0, 7], &proof).is_err());
    // a single matmul: no witness at all
    let mm = ProverModel::new(4, 8, vec![matmul(&mut rng, 2, 4, 8)]).unwrap();
    let (y, proof) = prove(&mm, &[1, 2, 3, 4]).unwrap();
    verify(mm.commitment(), &[1, 2, 3, 4], &y, &proof).unwrap();
}

#[test]
fn out_of_range_inference_has_no_proof() {
    let layers = vec![
        Layer::MatMul {
            rows: 1,
            cols: 2,
            weights: vec![100, 100],
            bias: vec![0],
        },
        Layer::Rescale {
            shift: 1,
            rounding: Rounding::Floor,
            out_bits: 8,
        },
    ];
    let model = ProverModel::new(2, 8, layers).unwrap();
    let (y, proof) = prove(&model, &[1, 0]).unwrap(); // 100 >> 1 = 50 fits in 8 bits
    assert_eq!(y, vec![50]);
    verify(model.commitment(), &[1, 0], &y, &proof).unwrap();
    assert!(prove(&model, &[100, 100]).is_err()); // 20000 >> 1 does not
    assert!(prove(&model, &[1000, 0]).is_err()); // input out of range
}

#[test]
fn commitment_round_trips() {
    let model = mlp(8, 10, 6, 3);
    let c = model.commitment();
    assert_eq!(&ModelCommitment::from_bytes(&c.to_bytes()).unwrap(), c);
    assert_ne!(c.digest(), mlp(9, 10, 6, 3).commitment().digest());
}

#[test]
fn half_even_rescale_matches_exact_mode_and_rejects_other_roundings() {
    use verity_prover::model::{rescale_value, round_half_even_shift};
    for (v, s, want) in [
        (5, 1, 2),
        (7, 1, 4),
        (-5, 1, -2),
        (-7, 1, -4),
        (6, 2, 2),
        (10, 2, 2),
        (-6, 2, -2),
        (3, 2, 1),
        (-3, 2, -1),
        (9, 0, 9),
    ] {
        assert_eq!(round_half_even_shift(v, s), want, "{v} >> {s}");
        assert_eq!(rescale_value(v, s, Rounding::HalfEven), want);
    }
    // identity matmul, then a half-even rescale by 2 bits: y = RNE(x / 4)
    let id = |n: usize| Layer::MatMul {
        rows: n,
        cols: n,
        weights: (0..n * n).map(|i| i64::from(i % (n + 1) == 0)).collect(),
        bias: vec![0; n],
    };
    let model = ProverModel::new(
        6,
        8,
        vec![
            id(6),
            Layer::Rescale {
                shift: 2,
                rounding: Rounding::HalfEven,
                out_bits: 8,
            },
        ],
    )
    .unwrap();
    let x = vec![2, 6, -2, -6, 5, 127]; // ties 0.5, 1.5, -0.5, -1.5
    let (y, proof) = prove(&model, &x).unwrap();
    assert_eq!(y, vec![0, 2, 0, -2, 1, 32]);
    verify(model.commitment(), &x, &y, &proof).unwrap();
    // half-up and half-away results differ at the ties and are rejected
    for (i, wrong) in [(0usize, 1i64), (2, -1), (3, -1), (1, 1)] {
        let mut y2 = y.clone();
        y2[i] = wrong;
        assert!(verify(model.commitment(), &x, &y2, &proof).is_err());
    }
    // a committed half-even output feeding a ReLU and another layer, over random inputs
    let mut rng = StdRng::seed_from_u64(21);
    let layers = vec![
        matmul(&mut rng, 9, 12, 32),
        Layer::Rescale {
            shift: 6,
            rounding: Rounding::HalfEven,
            out_bits: 10,
        },
        Layer::Relu { in_bits: 10 },
        matmul(&mut rng, 3, 9, 32),
        Layer::Rescale {
            shift: 3,
            rounding: Rounding::HalfEven,
            out_bits: 16,
        },
    ];
    let model = ProverModel::new(12, 8, layers).unwrap();
    for _ in 0..5 {
        let x = random_input(&mut rng, 12);
        let (y, proof) = prove(&model, &x).unwrap();
        verify(model.commitment(), &x, &y, &proof).unwrap();
        let mut y2 = y.clone();
        y2[1] -= 1;
        assert!(verify(model.commitment(), &x, &y2, &proof).is_err());
    }
}
