//! The `post_transform` attribute shared by the ONNX-ML classifiers and
//! regressors.

use tract_onnx::tract_hir::internal::{bail, TractResult};

/// What is applied to a row of scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PostTransform {
    None,
    Softmax,
    Logistic,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub(crate) fn parse(s: Option<&str>) -> TractResult<Self> {
        Ok(match s.unwrap_or("NONE") {
            "NONE" => PostTransform::None,
            "SOFTMAX" => PostTransform::Softmax,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => PostTransform::Probit,
            other => bail!("unknown post_transform `{other}`"),
        })
    }

    /// Applies the transform to one row of scores, in place.
    pub(crate) fn apply(self, row: &mut [f64]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => row.iter_mut().for_each(|v| *v = logistic(*v)),
            PostTransform::Probit => row.iter_mut().for_each(|v| *v = probit(*v)),
            PostTransform::Softmax => softmax(row),
            PostTransform::SoftmaxZero => softmax_zero(row),
        }
    }
}

/// `1 / (1 + e^-x)`, computed without overflow for large `|x|`.
pub(crate) fn logistic(x: f64) -> f64 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

fn softmax(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

/// Softmax where scores of exactly (within 1e-7) zero stay (scaled) zero.
fn softmax_zero(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0;
    for v in row.iter_mut() {
        if *v > 1e-7 || *v < -1e-7 {
            *v = (*v - max).exp();
        } else {
            *v *= exp_neg_max;
        }
        sum += *v;
    }
    if sum == 0.0 {
        row.iter_mut().for_each(|v| *v = 0.5);
    } else {
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// The approximation of the inverse error function used by the ONNX-ML
/// reference implementation and onnxruntime (Winitzki, a = 0.147).
fn erf_inv(x: f64) -> f64 {
    let sgn = if x < 0.0 { -1.0 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    if x == 0.0 {
        return 0.0;
    }
    let log = x.ln();
    let v = 2.0 / (std::f64::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

/// `sqrt(2) * erfinv(2x - 1)`: the normal quantile of `x`.
pub(crate) fn probit(x: f64) -> f64 {
    std::f64::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn transforms_match_hand_values() {
        let mut r = [1.0, 2.0, 3.0];
        PostTransform::Softmax.apply(&mut r);
        // e^-2, e^-1, 1 over their sum 1.503214724
        close(&r, &[0.090030573, 0.244728471, 0.665240956]);

        let mut r = [0.0, 0.0, 2.0];
        PostTransform::SoftmaxZero.apply(&mut r);
        close(&r, &[0.0, 0.0, 1.0]);

        let mut r = [-1.0, 0.0, 1.0];
        PostTransform::Logistic.apply(&mut r);
        close(&r, &[0.268941421, 0.5, 0.731058579]);
        assert_eq!(logistic(-1000.0), 0.0);
        assert_eq!(logistic(1000.0), 1.0);

        // probit(0.5) = 0; probit(0.975) ~ 1.95996 (the approximation is
        // good to about 2e-3 there).
        assert!(probit(0.5).abs() < 1e-12);
        assert!((probit(0.975) - 1.959964).abs() < 5e-3, "{}", probit(0.975));
        assert!((probit(0.025) + 1.959964).abs() < 5e-3);

        assert!(PostTransform::parse(Some("NOPE")).is_err());
        assert_eq!(PostTransform::parse(None).unwrap(), PostTransform::None);
    }
}
