//! Prove/verify benchmark for a 784-128-10 integer MLP (the shape of the EZKL MLP example):
//! `matmul(784→128) → rescale → relu → matmul(128→10)`, 8-bit weights and inputs.
//!
//! Run: `cargo run -p verity-prover --release --example bench_mlp [runs]`.
//! Prints registration (weight commitment) time, prove and verify times (mean and min over
//! the runs), proof size and the process's peak resident memory.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use verity_prover::{prove, verify, Layer, ProverModel, Rounding};

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn mlp(rng: &mut StdRng, shift: u32, act_bits: u32, rounding: Rounding) -> Vec<Layer> {
    let mut mm = |rows: usize, cols: usize| Layer::MatMul {
        rows,
        cols,
        weights: (0..rows * cols).map(|_| rng.gen_range(-128..128)).collect(),
        bias: (0..rows).map(|_| rng.gen_range(-4096..4096)).collect(),
    };
    let l1 = mm(128, 784);
    let l2 = mm(10, 128);
    vec![
        l1,
        Layer::Rescale {
            shift,
            rounding,
            out_bits: act_bits,
        },
        Layer::Relu { in_bits: act_bits },
        l2,
    ]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    println!("verity-prover bench: MLP 784-128-10, {runs} runs per configuration");
    for (name, shift, bits, rounding) in [
        ("act16", 10u32, 16u32, Rounding::HalfUp),
        ("act16-half-even", 10, 16, Rounding::HalfEven),
        ("act8", 14, 8, Rounding::HalfUp),
    ] {
        let mut rng = StdRng::seed_from_u64(42);
        let layers = mlp(&mut rng, shift, bits, rounding);
        let t = Instant::now();
        let model = ProverModel::new(784, 8, layers).expect("model");
        let reg = t.elapsed();
        let comm = model.commitment().clone();
        let mut prove_t = Vec::new();
        let mut verify_t = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            let x: Vec<i64> = (0..784).map(|_| rng.gen_range(-128..128)).collect();
            let t = Instant::now();
            let (y, proof) = prove(&model, &x).expect("prove");
            prove_t.push(t.elapsed());
            let t = Instant::now();
            verify(&comm, &x, &y, &proof).expect("verify");
            verify_t.push(t.elapsed());
            size = proof.len();
        }
        let mean = |v: &[Duration]| ms(v.iter().sum::<Duration>()) / v.len() as f64;
        let min = |v: &[Duration]| v.iter().map(|d| ms(*d)).fold(f64::INFINITY, f64::min);
        println!(
            "{name}: shift {shift}, activations {bits} bits | register {:.1} ms | prove mean {:.1} ms min {:.1} ms | verify mean {:.2} ms min {:.2} ms | proof {} bytes ({:.1} KiB) | weights commitment data {:.1} MiB",
            ms(reg),
            mean(&prove_t),
            min(&prove_t),
            mean(&verify_t),
            min(&verify_t),
            size,
            size as f64 / 1024.0,
            model.committed_bytes() as f64 / (1024.0 * 1024.0),
        );
    }
    if let Some(kib) = peak_rss_kib() {
        println!(
            "peak resident memory (whole process): {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
}
