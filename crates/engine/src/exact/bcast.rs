//! ONNX multidirectional broadcasting on exact tensors: shapes, strides, and the
//! element-wise iteration every binary operator uses.

use super::ops::R;

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
pub(crate) fn bstrides(shape: &[usize], out: &[usize]) -> Vec<usize> {
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
            strides
                .iter()
                .zip(&os)
                .all(|(s, o)| o[o.len() - 1] == s[d] * dims[d])
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
pub(crate) fn for_each_offset(
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
