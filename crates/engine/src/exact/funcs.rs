//! Tables of non-linear functions (spec §5): entries are the correctly
//! rounded values `round(2^f_out * f(j / 2^T))` of the mathematical
//! function on a grid of step `2^-T`, computed here with integer arithmetic
//! (error below 2^-50 of an output unit, checked to be far from a rounding
//! tie); lookups interpolate linearly between grid points.

use super::arith::{mul_shr, round_shift};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Grid step of every table: `2^-TABLE_GRID_BITS`.
pub const TABLE_GRID_BITS: i32 = 8;

/// Fractional bits of the `exp` table used inside Softmax.
pub const SOFTMAX_EXP_BITS: i32 = 30;

/// ln 2 in Q.124.
const LN2_Q124: i128 = 14_741_610_201_594_580_883_621_508_922_759_655_274;
/// 2 / sqrt(pi) in Q.124.
const TWO_OVER_SQRT_PI_Q124: i128 = 23_997_970_860_221_133_936_072_410_465_895_962_728;

/// A tabulated function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `e^x` (inputs above the table overflow).
    Exp,
    /// `e^x` for `x <= 0` (Softmax).
    ExpNeg,
    /// `erf(x)`.
    Erf,
}

impl Func {
    /// The name used in the spec and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Func::Sigmoid => "sigmoid",
            Func::Tanh => "tanh",
            Func::Exp => "exp",
            Func::ExpNeg => "exp(x<=0)",
            Func::Erf => "erf",
        }
    }
}

/// What happens beyond the last grid point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// The edge entry is used.
    Clamp,
    /// The value overflows (an error).
    Overflow,
}

/// A function table (see the module documentation).
#[derive(Debug)]
pub struct Table {
    /// The function.
    pub func: Func,
    /// Grid index of the first entry (grid point `j` is `j / 2^T`).
    pub lo: i64,
    /// Entries for grid points `lo, lo + 1, ...`.
    pub vals: Vec<i64>,
    /// Rule below the first grid point.
    pub below: Edge,
    /// Rule above the last grid point.
    pub above: Edge,
}

impl Table {
    /// Grid index of the last entry.
    pub fn hi(&self) -> i64 {
        self.lo + self.vals.len() as i64 - 1
    }

    /// The table's value at `x * 2^-fx`; `None` on overflow.
    #[inline]
    pub fn lookup(&self, x: i64, fx: i32) -> Option<i64> {
        let (j, r, sh) = if fx >= TABLE_GRID_BITS {
            let sh = (fx - TABLE_GRID_BITS) as u32;
            if sh >= 63 {
                (
                    if x < 0 { -1 } else { 0 },
                    x - if x < 0 { -1 } else { 0 },
                    63,
                )
            } else {
                let j = x >> sh;
                (j, x - (j << sh), sh)
            }
        } else {
            let up = (TABLE_GRID_BITS - fx) as u32;
            let j = if up >= 63 {
                if x == 0 {
                    0
                } else if x < 0 {
                    i64::MIN
                } else {
                    i64::MAX
                }
            } else {
                x.checked_mul(1i64 << up)
                    .unwrap_or(if x < 0 { i64::MIN } else { i64::MAX })
            };
            (j, 0, 0)
        };
        if j < self.lo {
            return match self.below {
                Edge::Clamp => Some(self.vals[0]),
                Edge::Overflow => None,
            };
        }
        let hi = self.hi();
        if j > hi || (j == hi && r > 0) {
            return match self.above {
                Edge::Clamp => Some(self.vals[self.vals.len() - 1]),
                Edge::Overflow => None,
            };
        }
        let i = (j - self.lo) as usize;
        if r == 0 {
            return Some(self.vals[i]);
        }
        let d = (self.vals[i + 1] - self.vals[i]) as i128 * r as i128;
        Some(self.vals[i] + round_shift(d, sh as i32)? as i64)
    }
}

type Cache = Mutex<HashMap<(Func, i32), Arc<Table>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The table of `func` with `frac` output bits (built once per process).
pub fn table(func: Func, frac: i32) -> Result<Arc<Table>, String> {
    if let Some(t) = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(func, frac))
    {
        return Ok(t.clone());
    }
    let t = Arc::new(build(func, frac)?);
    cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((func, frac), t.clone());
    Ok(t)
}

/// `ceil(n * ln 2 / d)` for small positive `n`, `d`.
fn ceil_ln2(n: i64, d: i64) -> i64 {
    let num = n as i128 * (LN2_Q124 >> 60);
    let den = (d as i128) << 64;
    ((num + den - 1) / den) as i64
}

fn build(func: Func, frac: i32) -> Result<Table, String> {
    if !(0..=40).contains(&frac) {
        return Err(format!(
            "{} table: output fractional bits {frac} outside 0..=40",
            func.name()
        ));
    }
    let g = 1i64 << TABLE_GRID_BITS;
    let f = frac as i64;
    let (lo, hi, below, above) = match func {
        Func::Sigmoid => {
            let r = ceil_ln2(f + 1, 1);
            (-r * g, r * g, Edge::Clamp, Edge::Clamp)
        }
        Func::Tanh => {
            let r = ceil_ln2(f + 2, 2);
            (-r * g, r * g, Edge::Clamp, Edge::Clamp)
        }
        Func::Erf => {
            // Smallest R with R^2 >= (f + 1) ln 2, so erfc(R) < 2^-(f+1).
            let mut r = 1i64;
            while ((r * r) as i128) << 64 < (f + 1) as i128 * (LN2_Q124 >> 60) {
                r += 1;
            }
            (-r * g, r * g, Edge::Clamp, Edge::Clamp)
        }
        Func::Exp => {
            let lo = -ceil_ln2(f + 1, 1) * g;
            // Up to (32 - f) ln 2: entries stay below 2^32 (beyond, the
            // value overflows).
            let hi =
                (((32 - f).max(0) as i128 * (LN2_Q124 >> 60)) >> (64 - TABLE_GRID_BITS)) as i64;
            (lo, hi, Edge::Clamp, Edge::Overflow)
        }
        Func::ExpNeg => (-ceil_ln2(f + 1, 1) * g, 0, Edge::Clamp, Edge::Overflow),
    };
    let mut vals = Vec::with_capacity((hi - lo + 1) as usize);
    for j in lo..=hi {
        let v = entry(func, j, frac)
            .ok_or_else(|| format!("{} table: entry {j} is too close to a tie", func.name()))?;
        if v >= 1i128 << 32 {
            if func == Func::Exp {
                break;
            }
            return Err(format!("{} table: entry {j} overflows", func.name()));
        }
        vals.push(v as i64);
    }
    Ok(Table {
        func,
        lo,
        vals,
        below,
        above,
    })
}

/// `round(2^frac * func(j / 2^T))`, or `None` when the computed value is
/// within 2^-20 of a tie (never observed; the spec value is still defined).
fn entry(func: Func, j: i64, frac: i32) -> Option<i128> {
    let t = TABLE_GRID_BITS as u32;
    let one = 1i128 << 62;
    match func {
        Func::Exp | Func::ExpNeg => {
            let (m, k) = exp_q62(j as i128, t);
            // value = m * 2^(k + frac - 62)
            let s = 62 - k - frac;
            if s <= 0 {
                return Some(i128::MAX);
            }
            if s >= 126 {
                return Some(0);
            }
            round_checked(m, 1i128 << s)
        }
        Func::Sigmoid => {
            let (e, _) = exp_abs_q62(-(j.unsigned_abs() as i128), t);
            // j >= 0: 1 / (1 + e); j < 0: e / (1 + e), with e = e^-|x|.
            let num = if j >= 0 { one } else { e } << frac;
            round_checked(num, one + e)
        }
        Func::Tanh => {
            let (e, _) = exp_abs_q62(-2 * (j.unsigned_abs() as i128), t);
            let v = round_checked((one - e) << frac, one + e)?;
            Some(if j < 0 { -v } else { v })
        }
        Func::Erf => {
            let v = erf_q62(j.unsigned_abs() as i128, t);
            let v = round_checked(v, 1i128 << (62 - frac))?;
            Some(if j < 0 { -v } else { v })
        }
    }
}

/// `round(num / den)` for `den > 0`, refusing values within 2^-20 of a tie.
fn round_checked(num: i128, den: i128) -> Option<i128> {
    let q = num.div_euclid(den);
    let r = num - q * den;
    let d = 2 * r - den;
    if d.abs() <= (den >> 19) {
        return None;
    }
    Some(if d > 0 { q + 1 } else { q })
}

/// `e^(u / 2^t)` as `(m, k)` with value `m * 2^(k - 62)`, `m` in about
/// `[2^61.5, 2^62.5]`; relative error below 2^-56.
pub(crate) fn exp_q62(u: i128, t: u32) -> (i128, i32) {
    let x = u as f64 / 2f64.powi(t as i32);
    let k = (x / std::f64::consts::LN_2).round() as i128;
    // r = x - k ln2 in Q.100.
    let xq = u << (100 - t);
    let r100 = xq - k * (LN2_Q124 >> 24);
    let r = r100 >> 38; // Q.62
    let mut sum = 1i128 << 62;
    let mut term = 1i128 << 62;
    for n in 1..40 {
        term = mul_shr(term, r, 62) / n;
        if term == 0 {
            break;
        }
        sum += term;
    }
    (sum, k as i32)
}

/// `e^(u / 2^t)` for `u <= 0` as an absolute Q.62 value (`<= 2^62`).
fn exp_abs_q62(u: i128, t: u32) -> (i128, i32) {
    let (m, k) = exp_q62(u, t);
    if k >= 0 {
        return (m << k, 0);
    }
    let s = (-k) as u32;
    (if s >= 127 { 0 } else { m >> s }, 0)
}

/// `erf(u / 2^t)` for `u >= 0` in Q.62, from
/// `erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))`.
fn erf_q62(u: i128, t: u32) -> i128 {
    if u == 0 {
        return 0;
    }
    // Terms in Q.62: a_0 = x, a_n = a_(n-1) * 2 x^2 / (2n + 1).
    let x2n = 2 * u * u; // 2 x^2 = x2n / 2^(2t)
    let mut a = u << (62 - t);
    let mut sum = a;
    let mut n = 1i128;
    while a > 0 && n < 2000 {
        a = ((a * x2n) >> (2 * t)) / (2 * n + 1);
        sum += a;
        n += 1;
    }
    let (m, k) = exp_q62(-(u * u), 2 * t);
    // e^(-x^2) in Q.62 (k <= 0 for x > 0).
    let e = if k >= 0 {
        m << k
    } else if -k >= 127 {
        0
    } else {
        m >> (-k)
    };
    let p = mul_shr(sum, e, 62);
    let v = mul_shr(p, TWO_OVER_SQRT_PI_Q124, 124);
    v.min(1i128 << 62)
}

/// The `ln` table on `[1, 2]`: entries `round(2^frac * ln(j / 2^T))` for
/// `j = 2^T ..= 2^(T+1)`, and the natural logarithm of a fixed-point value
/// (spec §4.4, Ln).
pub struct LnTable {
    frac: i32,
    vals: Vec<i64>,
}

type LnCache = Mutex<HashMap<i32, Arc<LnTable>>>;

fn ln_cache() -> &'static LnCache {
    static CACHE: OnceLock<LnCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// `ln(j / 2^t)` for `2^t <= j <= 2^(t+1)` in Q.62, from
/// `ln y = 2 atanh((y - 1) / (y + 1))`.
fn ln_q62(j: i128, t: u32) -> i128 {
    let one = 1i128 << t;
    let z = ((j - one) << 62) / (j + one);
    let z2 = mul_shr(z, z, 62);
    let (mut term, mut sum, mut k) = (z, 0i128, 0i128);
    while term != 0 && k < 200 {
        sum += term / (2 * k + 1);
        term = mul_shr(term, z2, 62);
        k += 1;
    }
    2 * sum
}

/// The ln table for `frac` output bits (built once per process).
pub fn ln_table(frac: i32) -> Result<Arc<LnTable>, String> {
    if !(0..=40).contains(&frac) {
        return Err(format!(
            "ln table: output fractional bits {frac} outside 0..=40"
        ));
    }
    if let Some(t) = ln_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&frac)
    {
        return Ok(t.clone());
    }
    let t = TABLE_GRID_BITS as u32;
    let mut vals = vec![];
    for j in (1i128 << t)..=(2i128 << t) {
        let v = if j == 1 << t {
            0
        } else {
            round_checked(ln_q62(j, t), 1i128 << (62 - frac))
                .ok_or_else(|| format!("ln table: entry {j} is too close to a tie"))?
        };
        vals.push(v as i64);
    }
    let tab = Arc::new(LnTable { frac, vals });
    ln_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(frac, tab.clone());
    Ok(tab)
}

impl LnTable {
    /// `ln(x * 2^-fx)` at this table's scale, `None` for `x <= 0`:
    /// with `x = 2^p * m`, `m` in `[1, 2)`: `K(p - fx) + lookup(m)` where
    /// `K(e) = round(e * ln 2 * 2^frac)` and `m` is looked up on the grid
    /// with linear interpolation of its remaining bits.
    pub fn ln(&self, x: i64, fx: i32) -> Option<i64> {
        if x <= 0 {
            return None;
        }
        let p = 63 - x.leading_zeros() as i32; // 2^p <= x < 2^(p+1)
        let u = (x as u64) << (62 - p); // m in Q.62, in [2^62, 2^63)
        let sh = 62 - TABLE_GRID_BITS as u32;
        let j = (u >> sh) as usize - (1 << TABLE_GRID_BITS);
        let r = (u & ((1u64 << sh) - 1)) as i128;
        let (a, b) = (self.vals[j], self.vals[j + 1]);
        let m = a + round_shift((b - a) as i128 * r, sh as i32)? as i64;
        let e = (p - fx) as i128;
        let k = round_shift(e * (LN2_Q124 >> 24), 100 - self.frac)? as i64;
        m.checked_add(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(func: Func, frac: i32, f: impl Fn(f64) -> f64) {
        let t = table(func, frac).unwrap();
        let scale = (1u64 << frac) as f64;
        for (i, v) in t.vals.iter().enumerate() {
            let x = (t.lo + i as i64) as f64 / 256.0;
            let want = f(x) * scale;
            assert!(
                (*v as f64 - want).abs() <= 0.5 + 1e-6 * want.abs().max(1.0),
                "{func:?} at {x}: {v} vs {want}"
            );
        }
    }

    #[test]
    fn ln_is_correctly_rounded_on_the_grid() {
        let t = ln_table(16).unwrap();
        for (i, v) in t.vals.iter().enumerate() {
            let want = (1.0 + i as f64 / 256.0).ln() * 65536.0;
            assert!((*v as f64 - want).abs() <= 0.5 + 1e-9, "{i}: {v} vs {want}");
        }
        assert_eq!(t.ln(65536, 16), Some(0));
        assert_eq!(t.ln(131072, 16), Some(45426)); // ln 2 = 0.693147 * 65536
        assert_eq!(t.ln(0, 16), None);
        let x = 3.7f64;
        let got = t.ln((x * 65536.0) as i64, 16).unwrap() as f64 / 65536.0;
        assert!((got - x.ln()).abs() < 4e-5, "{got}");
    }

    #[test]
    fn tables_are_correctly_rounded() {
        check(Func::Sigmoid, 16, |x| 1.0 / (1.0 + (-x).exp()));
        check(Func::Tanh, 16, f64::tanh);
        check(Func::Exp, 16, f64::exp);
        check(Func::ExpNeg, 30, f64::exp);
        check(Func::Erf, 16, erf_ref);
        let s = table(Func::Sigmoid, 16).unwrap();
        assert_eq!(s.lookup(0, 16), Some(32768));
        assert_eq!(s.lookup(100 << 16, 16), Some(65536));
        assert_eq!(s.lookup(-100 << 16, 16), Some(0));
        let e = table(Func::Exp, 16).unwrap();
        assert_eq!(e.lookup(0, 16), Some(65536));
        assert_eq!(e.lookup(12 << 16, 16), None);
        assert_eq!(e.lookup(-20 << 16, 16), Some(0));
    }

    /// Abramowitz-Stegun 7.1.26 is too coarse; use the series for checks.
    fn erf_ref(x: f64) -> f64 {
        let mut sum: f64 = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-18 * sum.abs().max(1e-300) || n < 3.0 {
            sum += term;
            n += 1.0;
            term *= 2.0 * x * x / (2.0 * n + 1.0);
            if n > 500.0 {
                break;
            }
        }
        2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
    }
}
