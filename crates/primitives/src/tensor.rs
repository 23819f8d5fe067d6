//! Tensors and their JSON form (DESIGN §7):
//! `{"name": {"shape": [..], "dtype": "float32", "data": [..row-major..]}}`.
//!
//! Numbers may also be written in the OpenGradient form
//! `{"value": int, "decimals": int}` (meaning `value * 10^-decimals`).
//! Non-finite floats are written as the strings `"NaN"`, `"Infinity"`,
//! `"-Infinity"`, since JSON has no literal for them.

use crate::TensorError;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Element types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    Float32,
    Float64,
    Int64,
    Int32,
    Int8,
    Uint8,
    Bool,
}

impl DType {
    pub const ALL: [DType; 7] = [
        DType::Float32,
        DType::Float64,
        DType::Int64,
        DType::Int32,
        DType::Int8,
        DType::Uint8,
        DType::Bool,
    ];

    /// numpy-style name.
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Int64 => "int64",
            DType::Int32 => "int32",
            DType::Int8 => "int8",
            DType::Uint8 => "uint8",
            DType::Bool => "bool",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(c: u8) -> Option<Self> {
        Self::ALL.get(c as usize).copied()
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Float64 | DType::Int64 => 8,
            DType::Float32 | DType::Int32 => 4,
            DType::Int8 | DType::Uint8 | DType::Bool => 1,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Typed, row-major element storage.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
}

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::Float32,
            TensorData::F64(_) => DType::Float64,
            TensorData::I64(_) => DType::Int64,
            TensorData::I32(_) => DType::Int32,
            TensorData::I8(_) => DType::Int8,
            TensorData::U8(_) => DType::Uint8,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Little-endian bytes of the elements (bool as 0/1).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        fn cat<const N: usize, T: Copy>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            v.iter().flat_map(|x| f(*x)).collect()
        }
        match self {
            TensorData::F32(v) => cat(v, f32::to_le_bytes),
            TensorData::F64(v) => cat(v, f64::to_le_bytes),
            TensorData::I64(v) => cat(v, i64::to_le_bytes),
            TensorData::I32(v) => cat(v, i32::to_le_bytes),
            TensorData::I8(v) => cat(v, i8::to_le_bytes),
            TensorData::U8(v) => v.clone(),
            TensorData::Bool(v) => v.iter().map(|b| *b as u8).collect(),
        }
    }

    /// Inverse of [`TensorData::to_le_bytes`].
    pub fn from_le_bytes(dtype: DType, b: &[u8]) -> Result<Self, String> {
        if !b.len().is_multiple_of(dtype.size()) {
            return Err(format!(
                "{} bytes is not a whole number of {dtype}",
                b.len()
            ));
        }
        fn chunks<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
            b.chunks_exact(N)
                .map(|c| f(c.try_into().expect("exact chunk")))
                .collect()
        }
        Ok(match dtype {
            DType::Float32 => TensorData::F32(chunks(b, f32::from_le_bytes)),
            DType::Float64 => TensorData::F64(chunks(b, f64::from_le_bytes)),
            DType::Int64 => TensorData::I64(chunks(b, i64::from_le_bytes)),
            DType::Int32 => TensorData::I32(chunks(b, i32::from_le_bytes)),
            DType::Int8 => TensorData::I8(chunks(b, i8::from_le_bytes)),
            DType::Uint8 => TensorData::U8(b.to_vec()),
            DType::Bool => TensorData::Bool(
                b.iter()
                    .map(|x| match x {
                        0 => Ok(false),
                        1 => Ok(true),
                        _ => Err(format!("bool byte {x} is not 0 or 1")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Elements as f64 (for comparisons and reports).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            TensorData::F32(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::F64(v) => v.clone(),
            TensorData::I64(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::I32(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::I8(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::U8(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::Bool(v) => v.iter().map(|x| *x as u8 as f64).collect(),
        }
    }
}

/// A dense tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    /// Builds a tensor, checking that `shape` matches the element count.
    pub fn new(name: &str, shape: Vec<usize>, data: TensorData) -> Result<Self, TensorError> {
        let expected = shape
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d))
            .ok_or_else(|| TensorError::Malformed {
                name: name.into(),
                reason: format!("shape {shape:?} overflows"),
            })?;
        if expected != data.len() {
            return Err(TensorError::ShapeMismatch {
                name: name.into(),
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Parses the JSON form of one tensor.
    pub fn from_json(name: &str, v: &Value) -> Result<Self, TensorError> {
        let mal = |reason: &str| TensorError::Malformed {
            name: name.into(),
            reason: reason.into(),
        };
        let obj = v
            .as_object()
            .ok_or_else(|| mal("expected an object with `shape`, `dtype` and `data`"))?;
        for k in obj.keys() {
            if !matches!(k.as_str(), "shape" | "dtype" | "data") {
                return Err(mal(&format!(
                    "unknown field `{k}` (expected shape, dtype, data)"
                )));
            }
        }
        let dtype_s = obj
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| mal("missing string field `dtype`"))?;
        let dtype = DType::from_name(dtype_s).ok_or_else(|| TensorError::UnknownDType {
            name: name.into(),
            dtype: dtype_s.into(),
        })?;
        let shape = obj
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| mal("missing array field `shape`"))?
            .iter()
            .map(|d| {
                d.as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| mal("`shape` must hold non-negative integers"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let data = obj.get("data").ok_or_else(|| mal("missing field `data`"))?;
        // A scalar may be written as a bare number.
        let items: Vec<&Value> = match data {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let data = parse_items(name, dtype, &items)?;
        Tensor::new(name, shape, data)
    }

    /// The JSON form of one tensor.
    pub fn to_json(&self) -> Value {
        let data: Vec<Value> = match &self.data {
            TensorData::F32(v) => v.iter().map(|x| float_json(*x as f64, Some(*x))).collect(),
            TensorData::F64(v) => v.iter().map(|x| float_json(*x, None)).collect(),
            TensorData::I64(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::I32(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::I8(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::U8(v) => v.iter().map(|x| Value::from(*x)).collect(),
            TensorData::Bool(v) => v.iter().map(|x| Value::from(*x)).collect(),
        };
        serde_json::json!({"shape": self.shape, "dtype": self.dtype().name(), "data": data})
    }
}

fn float_json(x: f64, as_f32: Option<f32>) -> Value {
    if x.is_nan() {
        Value::from("NaN")
    } else if x.is_infinite() {
        Value::from(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else if let Some(f) = as_f32 {
        // Shortest decimal that reads back to the same f32.
        let s = f.to_string();
        serde_json::from_str(&s).unwrap_or(Value::from(x))
    } else {
        Value::from(x)
    }
}

fn parse_float(name: &str, v: &Value) -> Result<f64, TensorError> {
    let bad = || TensorError::BadValue {
        name: name.into(),
        value: v.to_string(),
        dtype: "number",
    };
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(bad),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(bad()),
        },
        Value::Object(o) => {
            let value = o.get("value").and_then(Value::as_i64).ok_or_else(bad)?;
            let decimals = o.get("decimals").and_then(Value::as_i64).ok_or_else(bad)?;
            if o.len() != 2 || !(0..=30).contains(&decimals) {
                return Err(bad());
            }
            Ok(value as f64 / 10f64.powi(decimals as i32))
        }
        _ => Err(bad()),
    }
}

fn parse_int(name: &str, dtype: DType, v: &Value, min: i64, max: i64) -> Result<i64, TensorError> {
    let bad = || TensorError::BadValue {
        name: name.into(),
        value: v.to_string(),
        dtype: dtype.name(),
    };
    let x = match v {
        Value::Number(n) => n.as_i64().ok_or_else(bad)?,
        Value::Object(_) => {
            let f = parse_float(name, v)?;
            if f.fract() != 0.0 || !f.is_finite() {
                return Err(bad());
            }
            f as i64
        }
        _ => return Err(bad()),
    };
    if x < min || x > max {
        return Err(bad());
    }
    Ok(x)
}

fn parse_items(name: &str, dtype: DType, items: &[&Value]) -> Result<TensorData, TensorError> {
    let ints = |min, max| -> Result<Vec<i64>, TensorError> {
        items
            .iter()
            .map(|v| parse_int(name, dtype, v, min, max))
            .collect()
    };
    Ok(match dtype {
        DType::Float32 => TensorData::F32(
            items
                .iter()
                .map(|v| parse_float(name, v).map(|x| x as f32))
                .collect::<Result<_, _>>()?,
        ),
        DType::Float64 => TensorData::F64(
            items
                .iter()
                .map(|v| parse_float(name, v))
                .collect::<Result<_, _>>()?,
        ),
        DType::Int64 => TensorData::I64(ints(i64::MIN, i64::MAX)?),
        DType::Int32 => TensorData::I32(
            ints(i32::MIN as i64, i32::MAX as i64)?
                .into_iter()
                .map(|x| x as i32)
                .collect(),
        ),
        DType::Int8 => TensorData::I8(ints(-128, 127)?.into_iter().map(|x| x as i8).collect()),
        DType::Uint8 => TensorData::U8(ints(0, 255)?.into_iter().map(|x| x as u8).collect()),
        DType::Bool => TensorData::Bool(
            items
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => Ok(*b),
                    Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
                    Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
                    _ => Err(TensorError::BadValue {
                        name: name.into(),
                        value: v.to_string(),
                        dtype: "bool",
                    }),
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

impl BorshSerialize for Tensor {
    fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.dtype().code(), w)?;
        let shape: Vec<u64> = self.shape.iter().map(|d| *d as u64).collect();
        BorshSerialize::serialize(&shape, w)?;
        BorshSerialize::serialize(&self.data.to_le_bytes(), w)
    }
}

impl BorshDeserialize for Tensor {
    fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let code = u8::deserialize_reader(r)?;
        let dtype = DType::from_code(code).ok_or_else(|| invalid(format!("dtype code {code}")))?;
        let shape: Vec<u64> = Vec::deserialize_reader(r)?;
        let shape = shape
            .into_iter()
            .map(|d| usize::try_from(d).map_err(|_| invalid("dimension too large".into())))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes: Vec<u8> = Vec::deserialize_reader(r)?;
        let data = TensorData::from_le_bytes(dtype, &bytes).map_err(invalid)?;
        Tensor::new("decoded", shape, data).map_err(|e| invalid(e.to_string()))
    }
}

/// Named tensors, ordered by name so that the encoding is canonical.
#[derive(Clone, Debug, Default, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct Tensors(pub BTreeMap<String, Tensor>);

impl Tensors {
    /// Parses `{"name": tensor, ...}`.
    pub fn from_json(v: &Value) -> Result<Self, TensorError> {
        let obj = v.as_object().ok_or_else(|| TensorError::Malformed {
            name: "<root>".into(),
            reason: "expected an object mapping tensor names to tensors".into(),
        })?;
        let mut out = BTreeMap::new();
        for (k, t) in obj {
            out.insert(k.clone(), Tensor::from_json(k, t)?);
        }
        Ok(Self(out))
    }

    pub fn from_json_str(s: &str) -> Result<Self, TensorError> {
        let v: Value = serde_json::from_str(s).map_err(|e| TensorError::Malformed {
            name: "<root>".into(),
            reason: format!("invalid JSON: {e}"),
        })?;
        Self::from_json(&v)
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, t)| (k.clone(), t.to_json()))
                .collect(),
        )
    }

    /// Total number of elements.
    pub fn total_len(&self) -> usize {
        self.0.values().map(Tensor::len).sum()
    }

    /// keccak-256 of the canonical encoding.
    pub fn hash(&self) -> crate::B256 {
        let mut bytes = vec![crate::codec::VERSION];
        BorshSerialize::serialize(self, &mut bytes).expect("vec write");
        crate::codec::keccak(&bytes)
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.0.get(name)
    }
}

impl Serialize for Tensors {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// Streams, with element limits checked while parsing (see
/// [`crate::tensor_stream`]).
impl<'de> Deserialize<'de> for Tensors {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::tensor_stream::deserialize_tensors(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::VERSION;

    #[test]
    fn json_round_trip_and_hash_vector() {
        let t = Tensors::from_json_str(
            r#"{"X": {"shape": [1, 4], "dtype": "float32", "data": [5.1, 3.4, 1.5, 0.2]}}"#,
        )
        .unwrap();
        let back = Tensors::from_json(&t.to_json()).unwrap();
        assert_eq!(t, back);
        assert_eq!(
            t.to_json().to_string(),
            r#"{"X":{"data":[5.1,3.4,1.5,0.2],"dtype":"float32","shape":[1,4]}}"#
        );
        let mut enc = vec![VERSION];
        BorshSerialize::serialize(&t, &mut enc).unwrap();
        // Pinned encoding: version, map len, name, dtype, shape, raw LE data.
        assert_eq!(
            hex::encode(&enc),
            "0101000000010000005800020000000100000000000000040000000000000010000000\
             3333a3409a9959400000c03fcdcc4c3e"
        );
    }

    #[test]
    fn opengradient_numbers() {
        let t = Tensors::from_json_str(
            r#"{"a": {"shape": [2], "dtype": "float32", "data": [{"value": 15, "decimals": 1}, 2]}}"#,
        )
        .unwrap();
        assert_eq!(t.get("a").unwrap().data, TensorData::F32(vec![1.5, 2.0]));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Tensors::from_json_str(r#"{"a": {"shape": [3], "dtype": "float32", "data": [1]}}"#)
            .unwrap_err();
        assert!(
            e.to_string().contains("holds 3 values but data has 1"),
            "{e}"
        );
        let e = Tensors::from_json_str(r#"{"a": {"shape": [1], "dtype": "complex", "data": [1]}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("unsupported dtype `complex`"), "{e}");
        let e = Tensors::from_json_str(r#"{"a": {"shape": [1], "dtype": "int8", "data": [300]}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("not a valid int8"), "{e}");
        assert!(Tensors::from_json_str("{not json").is_err());
        assert!(Tensors::from_json_str("[1,2]").is_err());
    }

    #[test]
    fn non_finite_floats_survive_json() {
        let t = Tensor::new(
            "x",
            vec![3],
            TensorData::F32(vec![f32::NAN, f32::INFINITY, -1.0]),
        )
        .unwrap();
        let back = Tensor::from_json("x", &t.to_json()).unwrap();
        assert_eq!(t.to_json(), back.to_json());
    }
}
