//! The canonical encoding of a [`ModelCommitment`] (`"VPMC"`, version 3, parameters, input,
//! layers, weights root, output layout; integers little-endian).

use crate::error::DecodeError;
use crate::layout::OutputLayout;
use crate::merkle::Hash;
use crate::model::*;
use crate::pcs::PcsParams;

impl ModelCommitment {
    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(COMMITMENT_MAGIC);
        w.push(COMMITMENT_VERSION);
        w.push(self.params.log_inv_rate);
        w.extend_from_slice(&self.params.num_queries.to_le_bytes());
        w.extend_from_slice(&(self.input_len as u64).to_le_bytes());
        w.extend_from_slice(&self.input_bits.to_le_bytes());
        w.extend_from_slice(&(self.layers.len() as u32).to_le_bytes());
        for l in &self.layers {
            match l {
                LayerSpec::MatMul {
                    rows,
                    cols,
                    out_bound,
                } => {
                    w.push(0);
                    w.extend_from_slice(&(*rows as u64).to_le_bytes());
                    w.extend_from_slice(&(*cols as u64).to_le_bytes());
                    w.extend_from_slice(&out_bound.to_le_bytes());
                }
                LayerSpec::Rescale {
                    shift,
                    rounding,
                    out_bits,
                } => {
                    w.push(1);
                    w.extend_from_slice(&shift.to_le_bytes());
                    w.push(match rounding {
                        Rounding::Floor => 0,
                        Rounding::HalfUp => 1,
                        Rounding::HalfEven => 2,
                    });
                    w.extend_from_slice(&out_bits.to_le_bytes());
                }
                LayerSpec::Relu { in_bits } => {
                    w.push(2);
                    w.extend_from_slice(&in_bits.to_le_bytes());
                }
                LayerSpec::Lookup(t) => {
                    w.push(3);
                    w.extend_from_slice(&t.in_min.to_le_bytes());
                    put_values(&mut w, &t.values);
                }
                LayerSpec::Conv {
                    win,
                    cout,
                    out_bound,
                } => {
                    w.push(4);
                    put_window(&mut w, win);
                    w.extend_from_slice(&(*cout as u64).to_le_bytes());
                    w.extend_from_slice(&out_bound.to_le_bytes());
                }
                LayerSpec::AddConst { values, out_bits } => {
                    w.push(5);
                    put_values(&mut w, values);
                    w.extend_from_slice(&out_bits.to_le_bytes());
                }
                LayerSpec::MaxPool { win, in_bits } => {
                    w.push(6);
                    put_window(&mut w, win);
                    w.extend_from_slice(&in_bits.to_le_bytes());
                }
                LayerSpec::Copy { src } => {
                    w.push(7);
                    w.extend_from_slice(&(*src as u64).to_le_bytes());
                }
                LayerSpec::ArgMax {
                    lanes,
                    n,
                    last,
                    in_bits,
                } => {
                    w.push(8);
                    w.extend_from_slice(&(*lanes as u64).to_le_bytes());
                    w.extend_from_slice(&(*n as u64).to_le_bytes());
                    w.push(u8::from(*last));
                    w.extend_from_slice(&in_bits.to_le_bytes());
                }
                LayerSpec::Softmax {
                    lanes,
                    n,
                    fx,
                    fo,
                    grid,
                    lo,
                    exp,
                } => {
                    w.push(9);
                    w.extend_from_slice(&(*lanes as u64).to_le_bytes());
                    w.extend_from_slice(&(*n as u64).to_le_bytes());
                    for x in [fx, fo, grid] {
                        w.extend_from_slice(&x.to_le_bytes());
                    }
                    w.extend_from_slice(&lo.to_le_bytes());
                    put_values(&mut w, exp);
                }
                LayerSpec::Concat { parts } => {
                    w.push(10);
                    w.extend_from_slice(&(parts.len() as u64).to_le_bytes());
                    for p in parts {
                        w.extend_from_slice(&(*p as u64).to_le_bytes());
                    }
                }
            }
        }
        w.extend_from_slice(&self.weights_root);
        self.layout.put(&mut w);
        w
    }

    /// Decode (strictly: unknown tags, short input and trailing bytes are errors). The
    /// architecture is validated by [`crate::verify`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        if r.take(4)? != COMMITMENT_MAGIC {
            return Err(DecodeError("bad magic"));
        }
        if r.u8()? != COMMITMENT_VERSION {
            return Err(DecodeError("unknown version"));
        }
        let params = PcsParams {
            log_inv_rate: r.u8()?,
            num_queries: r.u16()?,
        };
        let input_len = r.usize()?;
        let input_bits = r.u32()?;
        let n = r.u32()? as usize;
        let mut layers = Vec::new();
        for _ in 0..n {
            let l = match r.u8()? {
                0 => LayerSpec::MatMul {
                    rows: r.usize()?,
                    cols: r.usize()?,
                    out_bound: r.u64()?,
                },
                1 => LayerSpec::Rescale {
                    shift: r.u32()?,
                    rounding: match r.u8()? {
                        0 => Rounding::Floor,
                        1 => Rounding::HalfUp,
                        2 => Rounding::HalfEven,
                        _ => return Err(DecodeError("bad rounding")),
                    },
                    out_bits: r.u32()?,
                },
                2 => LayerSpec::Relu { in_bits: r.u32()? },
                3 => {
                    let in_min = r.u64()? as i64;
                    let values = r.values(1 << MAX_TABLE_BITS)?;
                    LayerSpec::Lookup(LookupTable { in_min, values })
                }
                4 => LayerSpec::Conv {
                    win: r.window()?,
                    cout: r.usize()?,
                    out_bound: r.u64()?,
                },
                5 => LayerSpec::AddConst {
                    values: r.values(1 << MAX_VECTOR_LOG)?,
                    out_bits: r.u32()?,
                },
                6 => LayerSpec::MaxPool {
                    win: r.window()?,
                    in_bits: r.u32()?,
                },
                7 => LayerSpec::Copy { src: r.usize()? },
                8 => LayerSpec::ArgMax {
                    lanes: r.usize()?,
                    n: r.usize()?,
                    last: match r.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(DecodeError("bad flag")),
                    },
                    in_bits: r.u32()?,
                },
                9 => LayerSpec::Softmax {
                    lanes: r.usize()?,
                    n: r.usize()?,
                    fx: r.u32()?,
                    fo: r.u32()?,
                    grid: r.u32()?,
                    lo: r.u64()? as i64,
                    exp: r.values(1 << MAX_TABLE_BITS)?,
                },
                10 => {
                    let n = r.usize()?;
                    if n > 64 {
                        return Err(DecodeError("too many parts"));
                    }
                    LayerSpec::Concat {
                        parts: (0..n).map(|_| r.usize()).collect::<Result<_, _>>()?,
                    }
                }
                _ => return Err(DecodeError("bad layer tag")),
            };
            layers.push(l);
        }
        let mut weights_root = [0u8; 32];
        weights_root.copy_from_slice(r.take(32)?);
        let layout = OutputLayout::read(&mut r)?;
        if !r.done() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(Self {
            input_len,
            input_bits,
            layers,
            params,
            weights_root,
            layout,
        })
    }

    /// A 32-byte id of the commitment (BLAKE3 of its encoding).
    pub fn digest(&self) -> Hash {
        *blake3::hash(&self.to_bytes()).as_bytes()
    }
}

/// A strict little-endian reader over a byte string.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }
    /// Whether every byte has been read.
    pub(crate) fn done(&self) -> bool {
        self.pos == self.b.len()
    }
    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError("overflow"))?;
        let s = self.b.get(self.pos..end).ok_or(DecodeError("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2)?);
        Ok(u16::from_le_bytes(a))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    pub(crate) fn usize(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.u64()?).map_err(|_| DecodeError("length too large"))
    }
    /// A `u64` length, at most `max`.
    pub(crate) fn len(&mut self, max: usize) -> Result<usize, DecodeError> {
        usize::try_from(self.u64()?)
            .ok()
            .filter(|n| *n <= max)
            .ok_or(DecodeError("length out of range"))
    }
    pub(crate) fn values(&mut self, max: usize) -> Result<Vec<i64>, DecodeError> {
        let len = self.usize()?;
        if len > max || len.saturating_mul(8) > self.remaining() {
            return Err(DecodeError("value list too long"));
        }
        (0..len).map(|_| Ok(self.u64()? as i64)).collect()
    }
    pub(crate) fn window(&mut self) -> Result<Window, DecodeError> {
        let mut f = [0usize; 14];
        for x in &mut f {
            *x = self.usize()?;
        }
        Ok(Window::from_fields(f))
    }
}

fn put_values(w: &mut Vec<u8>, values: &[i64]) {
    w.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for v in values {
        w.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_window(w: &mut Vec<u8>, win: &Window) {
    for x in win.fields() {
        w.extend_from_slice(&(x as u64).to_le_bytes());
    }
}
