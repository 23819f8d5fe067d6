//! Test vectors that fix the model-commitment encoding (version 3: the output layout and
//! compiled-model id at its end) and its digest: a change to either is a format change and
//! must bump the version.

use verity_prover::{
    Layer, ModelCommitment, OutputLayout, OutputSpec, ProverModel, Rounding, Window,
};

fn model() -> ProverModel {
    let win = Window {
        c: 1,
        ih: 3,
        iw: 3,
        in_stride: 9,
        oh: 2,
        ow: 2,
        kh: 2,
        kw: 2,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        ph: 0,
        pw: 0,
    };
    let layers = vec![
        Layer::Conv {
            win,
            cout: 1,
            weights: vec![1, -2, 3, -4],
            bias: vec![5],
        },
        Layer::Rescale {
            shift: 1,
            rounding: Rounding::HalfEven,
            out_bits: 8,
        },
        Layer::Relu { in_bits: 8 },
        Layer::MatMul {
            rows: 2,
            cols: 4,
            weights: vec![1, 2, 3, 4, -1, -2, -3, -4],
            bias: vec![0, 1],
        },
        Layer::AddConst {
            values: vec![7, -7],
            out_bits: 16,
        },
    ];
    ProverModel::new(9, 8, layers)
        .unwrap()
        .bind(OutputLayout {
            model_id: [0x11; 32],
            outputs: vec![OutputSpec {
                name: "logits".into(),
                shape: vec![1, 2],
                frac: Some(16),
            }],
        })
        .unwrap()
}

#[test]
fn commitment_encoding_is_fixed() {
    let c = model().commitment().clone();
    let b = c.to_bytes();
    assert_eq!(&b[..5], b"VPMC\x03");
    assert_eq!(ModelCommitment::from_bytes(&b).unwrap(), c);
    assert_eq!(b.len(), EXPECTED_LEN, "encoding length changed");
    assert_eq!(
        hex(&c.digest()),
        EXPECTED_DIGEST,
        "encoding or weights root changed"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const EXPECTED_LEN: usize = 332;
const EXPECTED_DIGEST: &str = "5190c78eba8a5eaaef2f9d76cbebed0aabae5635911667ec6b52103b9eb87a9d";
