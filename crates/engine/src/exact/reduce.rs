//! Reductions, Softmax and LogSoftmax (spec §4.8, §4.9).

use super::arith::{div_round, round_shift};
use super::funcs::{self, Func, SOFTMAX_EXP_BITS};
use super::ir::{Red, XT};
use super::ops::{bstrides, fit128, for_each_offset, overflow, R};

/// `(outer, len, inner)` of a contiguous block of axes.
fn lanes(shape: &[usize], axes: &[usize]) -> R<(usize, usize, usize)> {
    let (lo, hi) = (axes[0], axes[axes.len() - 1]);
    if axes.windows(2).any(|w| w[1] != w[0] + 1) || hi >= shape.len() {
        return Err(format!("axes {axes:?} are not contiguous"));
    }
    let outer = shape[..lo].iter().product();
    let len = shape[lo..=hi].iter().product();
    let inner = shape[hi + 1..].iter().product();
    Ok((outer, len, inner))
}

pub(crate) fn reduce(axes: &[usize], red: Red, a: &XT) -> R<XT> {
    let mut axes = axes.to_vec();
    axes.sort_unstable();
    let mut oshape = a.shape.clone();
    for &ax in &axes {
        oshape[ax] = 1;
    }
    if let Red::ArgMax { .. } | Red::ArgMin { .. } = red {
        if axes.len() != 1 {
            return Err("ArgMax/ArgMin over several axes".into());
        }
    }
    let x = a.as_i64()?;
    // Contiguous axes (the common case): one pass over (outer, len, inner).
    if let (Red::Sum | Red::Max | Red::Min, Ok((outer, len, inner))) = (red, lanes(&a.shape, &axes))
    {
        if len == 0 {
            return Err("reduction over an empty axis".into());
        }
        let mut v = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            let base = o * len * inner;
            if red == Red::Sum {
                let mut acc = vec![0i128; inner];
                for k in 0..len {
                    for (s, xv) in acc
                        .iter_mut()
                        .zip(&x[base + k * inner..base + (k + 1) * inner])
                    {
                        *s += *xv as i128;
                    }
                }
                for s in acc {
                    v.push(fit128(s)?);
                }
            } else {
                let mut acc = x[base..base + inner].to_vec();
                for k in 1..len {
                    for (s, xv) in acc
                        .iter_mut()
                        .zip(&x[base + k * inner..base + (k + 1) * inner])
                    {
                        *s = if red == Red::Max {
                            (*s).max(*xv)
                        } else {
                            (*s).min(*xv)
                        };
                    }
                }
                v.extend(acc);
            }
        }
        return Ok(XT::i64(oshape, v));
    }
    let n_out: usize = oshape.iter().product();
    let count: usize = axes.iter().map(|&ax| a.shape[ax]).product();
    // Group the input by output element, in input order.
    let mut groups: Vec<Vec<i64>> = vec![Vec::with_capacity(count); n_out];
    let st = [bstrides(&oshape, &a.shape)];
    let mut i = 0;
    for_each_offset(&a.shape, &st, |o| {
        groups[o[0]].push(x[i]);
        i += 1;
        Ok(())
    })?;
    if let Red::ArgMax { last } | Red::ArgMin { last } = red {
        let max = matches!(red, Red::ArgMax { .. });
        let v = groups
            .iter()
            .map(|g| {
                let mut best = 0usize;
                for (j, p) in g.iter().enumerate() {
                    let better = if max { *p > g[best] } else { *p < g[best] };
                    if better || (last && *p == g[best]) {
                        best = j;
                    }
                }
                best as i64
            })
            .collect();
        return Ok(XT::i64(oshape, v));
    }
    if count == 0 {
        return Err("reduction over an empty axis".into());
    }
    let v = groups
        .iter()
        .map(|g| -> R<i64> {
            match red {
                Red::Sum => fit128(g.iter().map(|p| *p as i128).sum()),
                Red::Max => Ok(*g.iter().max().unwrap_or(&0)),
                Red::Min => Ok(*g.iter().min().unwrap_or(&0)),
                Red::Prod { shift } => {
                    let mut acc = g[0];
                    for p in &g[1..] {
                        acc = fit128(
                            round_shift(acc as i128 * *p as i128, shift)
                                .ok_or_else(|| overflow("product"))?,
                        )?;
                    }
                    Ok(acc)
                }
                Red::MeanOfSquares { shift } => {
                    let mut s: i128 = 0;
                    for p in g {
                        s = s
                            .checked_add((*p as i128) * (*p as i128))
                            .ok_or_else(|| overflow("sum of squares"))?;
                    }
                    let d = (count as i128) << shift.max(0);
                    let s = if shift < 0 {
                        s.checked_mul(1 << (-shift))
                            .ok_or_else(|| overflow("sum of squares"))?
                    } else {
                        s
                    };
                    fit128(div_round(s, d).ok_or_else(|| overflow("mean of squares"))?)
                }
                Red::ArgMax { .. } | Red::ArgMin { .. } => unreachable!("handled above"),
            }
        })
        .collect::<R<Vec<_>>>()?;
    Ok(XT::i64(oshape, v))
}

/// Softmax over `axis` (spec §4.7).
pub(crate) fn softmax(axis: usize, fx: i32, fo: i32, a: &XT) -> R<XT> {
    let t = funcs::table(Func::ExpNeg, SOFTMAX_EXP_BITS)?;
    let x = a.as_i64()?;
    let (outer, len, inner) = lanes(&a.shape, &[axis])?;
    let mut out = vec![0i64; x.len()];
    let mut e = vec![0i64; len];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            let at = |k: usize| base + k * inner;
            let m = (0..len).map(|k| x[at(k)]).max().unwrap_or(0) as i128;
            let mut s: i64 = 0;
            for (k, ek) in e.iter_mut().enumerate() {
                let d = (x[at(k)] as i128 - m).max(i64::MIN as i128 / 2) as i64;
                *ek = t
                    .lookup(d, fx)
                    .ok_or_else(|| overflow("softmax exponential"))?;
                s += *ek;
            }
            for (k, ek) in e.iter().enumerate() {
                let z =
                    div_round((*ek as i128) << fo, s as i128).ok_or_else(|| overflow("softmax"))?;
                out[at(k)] = fit128(z)?;
            }
        }
    }
    Ok(XT::i64(a.shape.clone(), out))
}

/// LogSoftmax over `axis` (spec §4.9): `Z_i = round_shift(X_i - m, fx -
/// fo) - Ln_fo(s)`, with `s` the Softmax sum of `e_i` at `2^-30` and `Ln_fo`
/// the logarithm of §4.4 read at input scale 30.
pub(crate) fn log_softmax(axis: usize, fx: i32, fo: i32, a: &XT) -> R<XT> {
    let t = funcs::table(Func::ExpNeg, SOFTMAX_EXP_BITS)?;
    let ln = funcs::ln_table(fo)?;
    let x = a.as_i64()?;
    let (outer, len, inner) = lanes(&a.shape, &[axis])?;
    let mut out = vec![0i64; x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            let at = |k: usize| base + k * inner;
            let m = (0..len).map(|k| x[at(k)]).max().unwrap_or(0) as i128;
            let mut s: i64 = 0;
            for k in 0..len {
                let d = (x[at(k)] as i128 - m).max(i64::MIN as i128 / 2) as i64;
                s += t
                    .lookup(d, fx)
                    .ok_or_else(|| overflow("softmax exponential"))?;
            }
            let l = ln
                .ln(s, SOFTMAX_EXP_BITS)
                .ok_or_else(|| overflow("log of the softmax sum"))?;
            for k in 0..len {
                let d = round_shift(x[at(k)] as i128 - m, fx - fo)
                    .ok_or_else(|| overflow("log softmax"))?;
                out[at(k)] = fit128(d - l as i128)?;
            }
        }
    }
    Ok(XT::i64(a.shape.clone(), out))
}
