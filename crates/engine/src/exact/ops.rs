//! Element-wise operators, casts, reductions and softmax on exact tensors
//! (spec §4). Every result is range-checked; errors are plain messages that
//! the executor prefixes with the node's name.

use super::arith::{div_round, isqrt, round_shift, round_shift_i64, sqrt_round};
use super::funcs::{self, Func, Table, SOFTMAX_EXP_BITS};
use super::ir::{BinOp, BoolOp, CmpOp, Data, IntOp, Red, Ty, UnOp, XT};
use tract_onnx::prelude::DatumType;

pub(crate) type R<T> = Result<T, String>;

pub(crate) fn overflow(what: &str) -> String {
    format!("overflow: {what} does not fit the value range")
}

#[inline(always)]
pub(crate) fn fit128(v: i128) -> R<i64> {
    i64::try_from(v).map_err(|_| overflow("result (int64)"))
}

/// The broadcast shape of two shapes (ONNX multidirectional broadcasting).
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> R<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

/// Element strides of `shape` seen through the broadcast `out` shape.
fn bstrides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let r = out.len();
    let mut st = vec![0; r];
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        let oi = i + r - shape.len();
        st[oi] = if shape[i] == 1 { 0 } else { acc };
        acc *= shape[i];
    }
    st
}

/// Merges adjacent axes `d, d+1` when every input has
/// `stride[d] == stride[d+1] * dims[d+1]` (drops axes of size 1).
fn coalesce(dims: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut od: Vec<usize> = vec![];
    let mut os: Vec<Vec<usize>> = vec![vec![]; strides.len()];
    for d in 0..dims.len() {
        if dims[d] == 1 {
            continue;
        }
        let merge = od.last().is_some_and(|_| {
            strides.iter().zip(&os).all(|(s, o)| o[o.len() - 1] == s[d] * dims[d])
        });
        if merge {
            let last = od.len() - 1;
            od[last] *= dims[d];
            for (o, s) in os.iter_mut().zip(strides) {
                let l = o.len() - 1;
                o[l] = s[d];
            }
        } else {
            od.push(dims[d]);
            for (o, s) in os.iter_mut().zip(strides) {
                o.push(s[d]);
            }
        }
    }
    if od.is_empty() {
        od.push(1);
        for o in os.iter_mut() {
            o.push(0);
        }
    }
    (od, os)
}

/// For each output element (row-major), the offsets into the inputs.
fn for_each_offset(
    out: &[usize],
    strides: &[Vec<usize>],
    mut f: impl FnMut(&[usize]) -> R<()>,
) -> R<()> {
    let n: usize = out.iter().product();
    if n == 0 {
        return Ok(());
    }
    let r = out.len();
    let k = strides.len();
    let mut idx = vec![0usize; r];
    let mut off = vec![0usize; k];
    for _ in 0..n {
        f(&off)?;
        for d in (0..r).rev() {
            idx[d] += 1;
            for (o, s) in off.iter_mut().zip(strides) {
                *o += s[d];
            }
            if idx[d] < out[d] {
                break;
            }
            for (o, s) in off.iter_mut().zip(strides) {
                *o -= s[d] * out[d];
            }
            idx[d] = 0;
        }
    }
    Ok(())
}

/// Applies `f` element-wise with broadcasting.
pub(crate) fn zip2<A: Copy, B: Copy, O>(
    a: &[A],
    sa: &[usize],
    b: &[B],
    sb: &[usize],
    mut f: impl FnMut(A, B) -> R<O>,
) -> R<(Vec<usize>, Vec<O>)> {
    let out = broadcast_shape(sa, sb)?;
    let n: usize = out.iter().product();
    let mut v = Vec::with_capacity(n);
    if sa == out.as_slice() && sb == out.as_slice() {
        for (x, y) in a.iter().zip(b) {
            v.push(f(*x, *y)?);
        }
    } else if b.len() == 1 {
        for x in a {
            v.push(f(*x, b[0])?);
        }
    } else if a.len() == 1 && sb == out.as_slice() {
        for y in b {
            v.push(f(a[0], *y)?);
        }
    } else {
        // Merge adjacent axes along which both inputs are contiguous (or both
        // broadcast), then run the innermost axis as a tight strided loop.
        let (dims, st) = coalesce(&out, &[bstrides(sa, &out), bstrides(sb, &out)]);
        let r = dims.len();
        let inner = dims[r - 1];
        let (ia, ib) = (st[0][r - 1], st[1][r - 1]);
        let outer: usize = dims[..r - 1].iter().product();
        let mut idx = vec![0usize; r];
        let (mut oa, mut ob) = (0usize, 0usize);
        for _ in 0..outer {
            for t in 0..inner {
                v.push(f(a[oa + t * ia], b[ob + t * ib])?);
            }
            for d in (0..r - 1).rev() {
                idx[d] += 1;
                oa += st[0][d];
                ob += st[1][d];
                if idx[d] < dims[d] {
                    break;
                }
                oa -= st[0][d] * dims[d];
                ob -= st[1][d] * dims[d];
                idx[d] = 0;
            }
        }
    }
    Ok((out, v))
}

pub(crate) fn bin(op: BinOp, shift: i32, a: &XT, b: &XT) -> R<XT> {
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
