//! Element-wise operators, casts, reductions and softmax on exact tensors
//! (spec §4). Every result is range-checked; errors are plain messages that
//! the executor prefixes with the node's name.

use super::arith::{div_round, isqrt, round_shift, round_shift_i64, sqrt_round};
use super::funcs::{self, Table};
use super::ir::{BinOp, BoolOp, CmpOp, Data, IntOp, Ty, UnOp, XT};
use tract_onnx::prelude::DatumType;

pub(crate) type R<T> = Result<T, String>;

pub(crate) use super::bcast::{broadcast_shape, bstrides, for_each_offset, zip2};

pub(crate) fn overflow(what: &str) -> String {
    format!("overflow: {what} does not fit the value range")
}

#[inline(always)]
pub(crate) fn fit128(v: i128) -> R<i64> {
    i64::try_from(v).map_err(|_| overflow("result (int64)"))
}

/// Round half to even of `v / 2^s` for `0 < s < 63`, without branches.
#[inline(always)]
fn rne_shift(v: i64, s: u32) -> i64 {
    let q = v >> s;
    let r = v & ((1i64 << s) - 1);
    let half = 1i64 << (s - 1);
    q.wrapping_add(((r + (q & 1)) > half) as i64)
}

/// The fast forms of the common binary operators: a tight loop without
/// early exits, and a flag that is false when some element needs the
/// checked path (which then recomputes the whole operation).
fn bin_fast(op: BinOp, shift: i32, a: &XT, b: &XT) -> R<Option<XT>> {
    let (x, y) = (a.as_i64()?, b.as_i64()?);
    let fits = |v: i64| (v as i32) as i64 == v;
    let (shape, v, ok) = match op {
        BinOp::Add => map2(x, &a.shape, y, &b.shape, |p, q| {
            let r = p.wrapping_add(q);
            (r, ((p ^ r) & (q ^ r)) >= 0)
        })?,
        BinOp::Sub => map2(x, &a.shape, y, &b.shape, |p, q| {
            let r = p.wrapping_sub(q);
            (r, ((p ^ q) & (p ^ r)) >= 0)
        })?,
        BinOp::Max => map2(x, &a.shape, y, &b.shape, |p, q| (p.max(q), true))?,
        BinOp::Min => map2(x, &a.shape, y, &b.shape, |p, q| (p.min(q), true))?,
        BinOp::Mul if (1..63).contains(&shift) => {
            let s = shift as u32;
            map2(x, &a.shape, y, &b.shape, |p, q| {
                (rne_shift(p.wrapping_mul(q), s), fits(p) & fits(q))
            })?
        }
        BinOp::Div if y.len() == 1 && y[0] > 0 && (0..52).contains(&shift) => {
            // round(x * 2^shift / q), ties to even, for |x * 2^shift| < 2^52:
            // a binary64 quotient (error below one) corrected exactly.
            let q = y[0];
            let qf = q as f64;
            let lim = 1u64 << (52 - shift);
            map2(x, &a.shape, y, &b.shape, |p, _| {
                let n = p.wrapping_shl(shift as u32);
                // Branch-free: the fix-ups and the rounding are selects.
                let d0 = (n as f64 / qf) as i64;
                let r0 = n.wrapping_sub(d0.wrapping_mul(q));
                let lo = (r0 < 0) as i64;
                let (d1, r1) = (d0 - lo, r0 + (q & -lo));
                let hi = (r1 >= q) as i64;
                let (d, r) = (d1 + hi, r1 - (q & -hi));
                let up = ((2 * r > q) | ((2 * r == q) & (d & 1 == 1))) as i64;
                (d + up, p.unsigned_abs() < lim)
            })?
        }
        _ => return Ok(None),
    };
    Ok(ok.then(|| XT::i64(shape, v)))
}

/// [`zip2`] for infallible element functions returning `(value, ok)`.
fn map2(
    a: &[i64],
    sa: &[usize],
    b: &[i64],
    sb: &[usize],
    f: impl Fn(i64, i64) -> (i64, bool),
) -> R<(Vec<usize>, Vec<i64>, bool)> {
    let out = broadcast_shape(sa, sb)?;
    let n: usize = out.iter().product();
    let mut v = vec![0i64; n];
    let mut ok = true;
    if sa == out.as_slice() && sb == out.as_slice() {
        for ((o, p), q) in v.iter_mut().zip(a).zip(b) {
            let (r, k) = f(*p, *q);
            *o = r;
            ok &= k;
        }
    } else if b.len() == 1 && sa == out.as_slice() {
        let q = b[0];
        for (o, p) in v.iter_mut().zip(a) {
            let (r, k) = f(*p, q);
            *o = r;
            ok &= k;
        }
    } else {
        let mut i = 0;
        let (_, w) = zip2(a, sa, b, sb, |p, q| {
            let (r, k) = f(p, q);
            ok &= k;
            i += 1;
            Ok(r)
        })?;
        v = w;
    }
    Ok((out, v, ok))
}

pub(crate) fn bin(op: BinOp, shift: i32, a: &XT, b: &XT) -> R<XT> {
    if let Some(r) = bin_fast(op, shift, a, b)? {
        return Ok(r);
    }
    let (x, y) = (a.as_i64()?, b.as_i64()?);
    let ovf = || overflow("result (int64)");
    let (shape, v) = match op {
        BinOp::Add => zip2(x, &a.shape, y, &b.shape, |p, q| {
            p.checked_add(q).ok_or_else(ovf)
        })?,
        BinOp::Sub => zip2(x, &a.shape, y, &b.shape, |p, q| {
            p.checked_sub(q).ok_or_else(ovf)
        })?,
        BinOp::Max => zip2(x, &a.shape, y, &b.shape, |p, q| Ok(p.max(q)))?,
        BinOp::Min => zip2(x, &a.shape, y, &b.shape, |p, q| Ok(p.min(q)))?,
        BinOp::Mul if (0..63).contains(&shift) => {
            zip2(x, &a.shape, y, &b.shape, |p, q| match p.checked_mul(q) {
                Some(r) => Ok(round_shift_i64(r, shift as u32)),
                None => fit128(round_shift(p as i128 * q as i128, shift).ok_or_else(ovf)?),
            })?
        }
        BinOp::Mul => zip2(x, &a.shape, y, &b.shape, |p, q| {
            fit128(round_shift(p as i128 * q as i128, shift).ok_or_else(|| overflow("product"))?)
        })?,
        BinOp::Div => zip2(x, &a.shape, y, &b.shape, |p, q| {
            if q == 0 {
                return Err("division by zero".into());
            }
            if (0..62).contains(&shift) && q > 0 {
                if let Some(n) = p.checked_mul(1i64 << shift) {
                    // round(n / q), ties to even, in i64: the quotient is
                    // estimated in binary64 (fast) and corrected exactly.
                    let (d, r) = if n.unsigned_abs() < 1 << 52 && q < 1 << 52 {
                        let mut d = (n as f64 / q as f64) as i64;
                        let mut r = n - d * q;
                        while r < 0 {
                            d -= 1;
                            r += q;
                        }
                        while r >= q {
                            d += 1;
                            r -= q;
                        }
                        (d, r)
                    } else {
                        (n.div_euclid(q), n.rem_euclid(q))
                    };
                    let twice = 2 * r as i128;
                    let up = twice > q as i128 || (twice == q as i128 && d & 1 == 1);
                    return Ok(d + up as i64);
                }
            }
            let (n, d) = if shift >= 0 {
                ((p as i128) << shift.min(63), q as i128)
            } else {
                (p as i128, (q as i128) << (-shift).min(63))
            };
            fit128(div_round(n, d).ok_or_else(|| overflow("quotient"))?)
        })?,
    };
    Ok(XT::i64(shape, v))
}

fn cmp<T: PartialOrd>(op: CmpOp, p: T, q: T) -> bool {
    match op {
        CmpOp::Eq => p == q,
        CmpOp::Ne => p != q,
        CmpOp::Lt => p < q,
        CmpOp::Le => p <= q,
        CmpOp::Gt => p > q,
        CmpOp::Ge => p >= q,
    }
}

pub(crate) fn compare(op: CmpOp, a: &XT, b: &XT) -> R<XT> {
    let (shape, v) = match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => zip2(x, &a.shape, y, &b.shape, |p, q| Ok(cmp(op, p, q)))?,
        (Data::Bool(x), Data::Bool(y)) => zip2(x, &a.shape, y, &b.shape, |p, q| Ok(cmp(op, p, q)))?,
        _ => return Err("internal: comparison of different kinds".into()),
    };
    Ok(XT::bool(shape, v))
}

/// Range of an integer element type.
pub(crate) fn int_range(dt: DatumType) -> (i64, i64) {
    match dt {
        DatumType::I8 => (i8::MIN as i64, i8::MAX as i64),
        DatumType::I16 => (i16::MIN as i64, i16::MAX as i64),
        DatumType::I32 => (i32::MIN as i64, i32::MAX as i64),
        DatumType::U8 => (0, u8::MAX as i64),
        DatumType::U16 => (0, u16::MAX as i64),
        DatumType::U32 => (0, u32::MAX as i64),
        DatumType::U64 => (0, i64::MAX),
        _ => (i64::MIN, i64::MAX),
    }
}

fn in_range(v: i64, dt: DatumType) -> R<i64> {
    let (lo, hi) = int_range(dt);
    if v < lo || v > hi {
        return Err(overflow(&format!("integer {v} ({dt:?})")));
    }
    Ok(v)
}

pub(crate) fn int_bin(op: IntOp, dt: DatumType, a: &XT, b: &XT) -> R<XT> {
    let (x, y) = (a.as_i64()?, b.as_i64()?);
    let ovf = || overflow("integer result");
    let (shape, v) = zip2(x, &a.shape, y, &b.shape, |p, q| {
        let r = match op {
            IntOp::Add => p.checked_add(q).ok_or_else(ovf)?,
            IntOp::Sub => p.checked_sub(q).ok_or_else(ovf)?,
            IntOp::Mul => p.checked_mul(q).ok_or_else(ovf)?,
            IntOp::Div => {
                if q == 0 {
                    return Err("integer division by zero".into());
                }
                p.checked_div(q).ok_or_else(ovf)?
            }
            IntOp::Max => p.max(q),
            IntOp::Min => p.min(q),
        };
        in_range(r, dt)
    })?;
    Ok(XT::i64(shape, v))
}

pub(crate) fn bool_bin(op: BoolOp, a: &XT, b: &XT) -> R<XT> {
    let (x, y) = (a.as_bool()?, b.as_bool()?);
    let (shape, v) = zip2(x, &a.shape, y, &b.shape, |p, q| {
        Ok(match op {
            BoolOp::And => p && q,
            BoolOp::Or => p || q,
            BoolOp::Xor => p ^ q,
        })
    })?;
    Ok(XT::bool(shape, v))
}

pub(crate) fn not(a: &XT) -> R<XT> {
    Ok(XT::bool(
        a.shape.clone(),
        a.as_bool()?.iter().map(|b| !b).collect(),
    ))
}

pub(crate) fn where_(c: &XT, a: &XT, b: &XT) -> R<XT> {
    let cond = c.as_bool()?;
    let out = broadcast_shape(&broadcast_shape(&c.shape, &a.shape)?, &b.shape)?;
    let st = [
        bstrides(&c.shape, &out),
        bstrides(&a.shape, &out),
        bstrides(&b.shape, &out),
    ];
    macro_rules! sel {
        ($x:expr, $y:expr, $mk:path) => {{
            let mut v = Vec::with_capacity(out.iter().product());
            for_each_offset(&out, &st, |o| {
                v.push(if cond[o[0]] { $x[o[1]] } else { $y[o[2]] });
                Ok(())
            })?;
            Ok($mk(out, v))
        }};
    }
    match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => sel!(x, y, XT::i64),
        (Data::Bool(x), Data::Bool(y)) => sel!(x, y, XT::bool),
        _ => Err("internal: Where of different kinds".into()),
    }
}

/// `round(x / 2^shift)` (or `x * 2^-shift`) into `i32`.
pub(crate) fn rescale(shift: i32, a: &XT) -> R<XT> {
    let x = a.as_i64()?;
    let v = x
        .iter()
        .map(|p| fit128(round_shift(*p as i128, shift).ok_or_else(|| overflow("rescaled value"))?))
        .collect::<R<Vec<_>>>()?;
    Ok(XT::i64(a.shape.clone(), v))
}

fn rsqrt(x: i64, fx: i32, fo: i32) -> R<i64> {
    if x <= 0 {
        return Err(format!("Rsqrt of a non-positive value ({x} * 2^-{fx})"));
    }
    let e = 2 * fo + fx;
    if !(0..=120).contains(&e) {
        return Err("Rsqrt: scale out of range".into());
    }
    // round(sqrt(N / x)) with N = 2^e: s = isqrt(floor(N / x)), then compare
    // N / x with (s + 1/2)^2, i.e. 4N with (2s + 1)^2 x.
    let n = 1u128 << e;
    let x = x as u128;
    let s = isqrt(n / x);
    let lhs = 4 * n;
    let rhs = (2 * s + 1) * (2 * s + 1) * x;
    let r = if lhs > rhs || (lhs == rhs && s % 2 == 1) {
        s + 1
    } else {
        s
    };
    i64::try_from(r).map_err(|_| overflow("Rsqrt result"))
}

pub(crate) fn unary(op: &UnOp, a: &XT) -> R<XT> {
    if matches!(op, UnOp::IntNeg | UnOp::IntAbs) {
        let x = a.as_i64()?;
        let v = x
            .iter()
            .map(|p| {
                match op {
                    UnOp::IntNeg => p.checked_neg(),
                    _ => p.checked_abs(),
                }
                .ok_or_else(|| overflow("integer result"))
            })
            .collect::<R<Vec<_>>>()?;
        return Ok(XT::i64(a.shape.clone(), v));
    }
    let x = a.as_i64()?;
    let f: Box<dyn Fn(i64) -> R<i64>> = match *op {
        UnOp::Neg => Box::new(|p| fit128(-(p as i128))),
        UnOp::Abs => Box::new(|p| fit128((p as i128).abs())),
        UnOp::Sign { fo } => Box::new(move |p| Ok(p.signum() * (1i64 << fo))),
        UnOp::Floor { fx } => Box::new(move |p| {
            if fx <= 0 {
                return Ok(p);
            }
            fit128(((p >> fx) as i128) << fx)
        }),
        UnOp::Ceil { fx } => Box::new(move |p| {
            if fx <= 0 {
                return Ok(p);
            }
            fit128(-(((-(p as i128)) >> fx) << fx))
        }),
        UnOp::Round { fx } => Box::new(move |p| {
            if fx <= 0 {
                return Ok(p);
            }
            fit128((round_shift_i64(p, fx as u32) as i128) << fx)
        }),
        UnOp::Ln { fx, fo } => {
            let t = funcs::ln_table(fo)?;
            Box::new(move |p| {
                t.ln(p, fx)
                    .ok_or_else(|| format!("Ln of a non-positive value ({p} * 2^-{fx})"))
            })
        }
        UnOp::RoundAway { fx } => Box::new(move |p| {
            if fx <= 0 {
                return Ok(p);
            }
            let a = (p as i128).abs();
            let r = ((a + (1i128 << (fx - 1))) >> fx) << fx;
            fit128(if p < 0 { -r } else { r })
        }),
        UnOp::Sqrt { fx, fo } => Box::new(move |p| {
            if p < 0 {
                return Err(format!("Sqrt of a negative value ({p} * 2^-{fx})"));
            }
            let e = 2 * fo - fx;
            let n = if e >= 0 {
                (p as u128) << e
            } else {
                return Err("Sqrt: input scale finer than twice the output scale".into());
            };
            fit128(sqrt_round(n) as i128)
        }),
        UnOp::Rsqrt { fx, fo } => Box::new(move |p| rsqrt(p, fx, fo)),
        UnOp::Recip { fx, fo } => Box::new(move |p| {
            if p == 0 {
                return Err("Reciprocal of zero".into());
            }
            fit128(div_round(1i128 << (fo + fx), p as i128).ok_or_else(|| overflow("reciprocal"))?)
        }),
        UnOp::LeakyRelu { a, fa } => Box::new(move |p| {
            if p >= 0 {
                Ok(p)
            } else {
                fit128(round_shift(p as i128 * a as i128, fa).ok_or_else(|| overflow("product"))?)
            }
        }),
        UnOp::HardSwish { f } => Box::new(move |p| {
            let one = 1i128 << f;
            let t = (p as i128 + 3 * one).clamp(0, 6 * one);
            fit128(div_round(p as i128 * t, 6 * one).ok_or_else(|| overflow("HardSwish"))?)
        }),
        UnOp::IntNeg | UnOp::IntAbs => unreachable!("handled above"),
    };
    let v = x.iter().map(|p| f(*p)).collect::<R<Vec<_>>>()?;
    Ok(XT::i64(a.shape.clone(), v))
}

pub(crate) fn table(t: &Table, fx: i32, a: &XT) -> R<XT> {
    let x = a.as_i64()?;
    let v = x
        .iter()
        .map(|p| {
            t.lookup(*p, fx)
                .ok_or_else(|| overflow(&format!("{} of {p} * 2^-{fx}", t.func.name())))
        })
        .collect::<R<Vec<_>>>()?;
    Ok(XT::i64(a.shape.clone(), v))
}

pub(crate) fn cast(from: Ty, to: Ty, a: &XT) -> R<XT> {
    let shape = a.shape.clone();
    Ok(match (from, to) {
        (Ty::Fixed(f), Ty::Fixed(g)) => rescale(f - g, a)?,
        (Ty::Int(_), Ty::Fixed(f)) => {
            let v = a
                .as_i64()?
                .iter()
                .map(|p| fit128(round_shift(*p as i128, -f).ok_or_else(|| overflow("cast"))?))
                .collect::<R<Vec<_>>>()?;
            XT::i64(shape, v)
        }
        (Ty::Bool, Ty::Fixed(f)) => {
            let one = fit128(round_shift(1, -f).ok_or_else(|| overflow("cast"))?)?;
            XT::i64(
                shape,
                a.as_bool()?
                    .iter()
                    .map(|b| if *b { one } else { 0 })
                    .collect(),
            )
        }
        (Ty::Fixed(f), Ty::Int(dt)) => {
            // Truncation toward zero, as float-to-integer casts do.
            let v = a
                .as_i64()?
                .iter()
                .map(|p| {
                    let p = *p;
                    let t = if f <= 0 {
                        p.checked_mul(1i64 << (-f).min(62))
                            .ok_or_else(|| overflow("cast"))?
                    } else if f >= 63 {
                        0
                    } else if p >= 0 {
                        p >> f
                    } else {
                        -(((-(p as i128)) >> f) as i64)
                    };
                    in_range(t, dt)
                })
                .collect::<R<Vec<_>>>()?;
            XT::i64(shape, v)
        }
        (Ty::Fixed(_), Ty::Bool) => XT::bool(shape, a.as_i64()?.iter().map(|p| *p != 0).collect()),
        (Ty::Int(_), Ty::Bool) => XT::bool(shape, a.as_i64()?.iter().map(|p| *p != 0).collect()),
        (Ty::Bool, Ty::Int(_)) => XT::i64(shape, a.as_bool()?.iter().map(|b| *b as i64).collect()),
        (Ty::Int(_), Ty::Int(dt)) => XT::i64(
            shape,
            a.as_i64()?
                .iter()
                .map(|p| in_range(*p, dt))
                .collect::<R<Vec<_>>>()?,
        ),
        (Ty::Bool, Ty::Bool) => a.clone(),
    })
}
