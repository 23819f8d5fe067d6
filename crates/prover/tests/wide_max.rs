//! Wide maxima (sumcheck degrees above 20, where the Lagrange denominators no longer fit an
//! `i64`) prove and verify.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use verity_prover::{prove, verify, Layer, ProverModel, Window};

fn pool(c: usize, ih: usize, iw: usize, k: usize, stride: usize) -> Window {
    Window {
        c,
        ih,
        iw,
        in_stride: ih * iw,
        oh: (ih - k) / stride + 1,
        ow: (iw - k) / stride + 1,
        kh: k,
        kw: k,
        sh: stride,
        sw: stride,
        dh: 1,
        dw: 1,
        ph: 0,
        pw: 0,
    }
}

fn prove_and_verify(m: &ProverModel, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Vec<i64> = (0..m.commitment().input_len)
        .map(|_| rng.gen_range(-100..100))
        .collect();
    let (y, proof) = prove(m, &x).unwrap();
    verify(m.commitment(), &x, &y, &proof).unwrap();
    let mut y2 = y.clone();
    y2[0] += 1;
    assert!(verify(m.commitment(), &x, &y2, &proof).is_err());
}

#[test]
fn a_5x5_max_pool_proves_and_verifies() {
    // 2 channels of 7×7, 5×5 windows at stride 2: 25 operands per maximum
    let m = ProverModel::new(
        98,
        8,
        vec![Layer::MaxPool {
            win: pool(2, 7, 7, 5, 2),
            in_bits: 8,
        }],
    )
    .unwrap();
    prove_and_verify(&m, 1);
}

#[test]
fn a_global_max_pool_proves_and_verifies() {
    // 3 channels of 8×8, one window each: 64 operands per maximum
    let m = ProverModel::new(
        192,
        8,
        vec![Layer::MaxPool {
            win: pool(3, 8, 8, 8, 1),
            in_bits: 8,
        }],
    )
    .unwrap();
    prove_and_verify(&m, 2);
}

#[test]
fn a_wide_argmax_proves_and_verifies() {
    // two rows of 40 classes (with one row the zero check has no sumcheck round)
    let m = ProverModel::new(
        80,
        8,
        vec![Layer::ArgMax {
            lanes: 2,
            n: 40,
            last: false,
            in_bits: 8,
        }],
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let x: Vec<i64> = (0..80).map(|_| rng.gen_range(-100..100)).collect();
    let (y, proof) = prove(&m, &x).unwrap();
    verify(m.commitment(), &x, &y, &proof).unwrap();
    let mut y2 = y.clone();
    y2[0] = (y2[0] + 1) % 40;
    assert!(verify(m.commitment(), &x, &y2, &proof).is_err());
}
