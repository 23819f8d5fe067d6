//! Conversions between Verity tensors and tract tensors, and input checks.

use crate::EngineError;
use std::collections::HashMap;
use tract_onnx::prelude::{Datum, DatumType, TractResult};
use verity_primitives::{DType, Dim, Tensor, TensorData, TensorSpec, Tensors};

type TTensor = tract_onnx::prelude::Tensor;

/// Checks `input` against the model's input specs: every input present, no
/// unknown name, the declared dtype, the declared rank and fixed dimensions,
/// and the same size wherever two inputs use the same named dimension.
///
/// Errors name the tensor, what was expected and what was got.
pub fn validate_input(specs: &[TensorSpec], input: &Tensors) -> Result<(), EngineError> {
    let list = || {
        specs
            .iter()
            .map(TensorSpec::describe)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for name in input.0.keys() {
        if !specs.iter().any(|s| &s.name == name) {
            return Err(EngineError::InvalidInput(format!(
                "unknown input `{name}`; the model's inputs are: {}",
                list()
            )));
        }
    }
    let mut symbols: HashMap<&str, (usize, &str)> = HashMap::new();
    for spec in specs {
        let Some(t) = input.get(&spec.name) else {
            return Err(EngineError::InvalidInput(format!(
                "missing input `{}`; the model's inputs are: {}",
                spec.name,
                list()
            )));
        };
        let got = || format!("{}{:?}", t.dtype(), t.shape);
        let mismatch = |why: String| {
            EngineError::InvalidInput(format!(
                "input `{}`: expected {}, got {} ({why})",
                spec.name,
                spec.describe(),
                got()
            ))
        };
        if t.dtype() != spec.dtype {
            return Err(mismatch(format!(
                "dtype {} is not {}",
                t.dtype(),
                spec.dtype
            )));
        }
        if t.shape.len() != spec.shape.len() {
            return Err(mismatch(format!(
                "rank {} is not {}",
                t.shape.len(),
                spec.shape.len()
            )));
        }
        for (axis, (d, &n)) in spec.shape.iter().zip(&t.shape).enumerate() {
            match d {
                Dim::Fixed(f) if *f != n as u64 => {
                    return Err(mismatch(format!("dimension {axis} must be {f}")));
                }
                Dim::Symbolic(s) if s != "?" => {
                    if let Some((prev, who)) = symbols.get(s.as_str()) {
                        if *prev != n {
                            return Err(mismatch(format!(
                                "dimension {axis} (`{s}`) is {n} but input `{who}` has {s} = {prev}"
                            )));
                        }
                    } else {
                        symbols.insert(s, (n, &spec.name));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The tract datum type of a Verity dtype.
pub(crate) fn datum_type(d: DType) -> DatumType {
    match d {
        DType::Float32 => DatumType::F32,
        DType::Float64 => DatumType::F64,
        DType::Int64 => DatumType::I64,
        DType::Int32 => DatumType::I32,
        DType::Int8 => DatumType::I8,
        DType::Uint8 => DatumType::U8,
        DType::Bool => DatumType::Bool,
    }
}

fn dtype_of(d: DatumType) -> Option<DType> {
    Some(match d {
        DatumType::F32 => DType::Float32,
        DatumType::F64 => DType::Float64,
        DatumType::I64 | DatumType::TDim => DType::Int64,
        DatumType::I32 => DType::Int32,
        DatumType::I8 => DType::Int8,
        DatumType::U8 => DType::Uint8,
        DatumType::Bool => DType::Bool,
        _ => return None,
    })
}

/// A Verity tensor as a tract tensor.
pub(crate) fn to_tract(t: &Tensor) -> TractResult<TTensor> {
    let s = &t.shape;
    match &t.data {
        TensorData::F32(v) => TTensor::from_shape(s, v),
        TensorData::F64(v) => TTensor::from_shape(s, v),
        TensorData::I64(v) => TTensor::from_shape(s, v),
        TensorData::I32(v) => TTensor::from_shape(s, v),
        TensorData::I8(v) => TTensor::from_shape(s, v),
        TensorData::U8(v) => TTensor::from_shape(s, v),
        TensorData::Bool(v) => TTensor::from_shape(s, v),
    }
}

fn vec_of<T: Datum + Clone>(t: &TTensor) -> TractResult<Vec<T>> {
    Ok(t.try_as_plain_ram()?.as_slice::<T>()?.to_vec())
}

/// A tract tensor as a Verity tensor of dtype `want` (or its natural dtype).
pub(crate) fn from_tract(t: &TTensor, want: Option<DType>) -> Result<Tensor, String> {
    let natural = dtype_of(t.datum_type());
    let dtype = want.or(natural).ok_or_else(|| {
        format!(
            "element type {:?} cannot be returned (supported: float32, float64, int64, int32, int8, uint8, bool)",
            t.datum_type()
        )
    })?;
    let cast = t
        .cast_to_dt(datum_type(dtype))
        .map_err(|e| format!("cannot convert {:?} to {dtype}: {e}", t.datum_type()))?;
    let data = (|| -> TractResult<TensorData> {
        Ok(match dtype {
            DType::Float32 => TensorData::F32(vec_of(&cast)?),
            DType::Float64 => TensorData::F64(vec_of(&cast)?),
            DType::Int64 => TensorData::I64(vec_of(&cast)?),
            DType::Int32 => TensorData::I32(vec_of(&cast)?),
            DType::Int8 => TensorData::I8(vec_of(&cast)?),
            DType::Uint8 => TensorData::U8(vec_of(&cast)?),
            DType::Bool => TensorData::Bool(vec_of(&cast)?),
        })
    })()
    .map_err(|e| format!("reading {dtype} data: {e}"))?;
    Tensor::new("output", t.shape().to_vec(), data).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, dtype: DType, shape: Vec<Dim>) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype,
            shape,
        }
    }

    fn t(shape: Vec<usize>, data: TensorData) -> Tensor {
        Tensor::new("t", shape, data).unwrap()
    }

    #[test]
    fn validation_names_tensor_expected_and_got() {
        let specs = vec![
            spec(
                "a",
                DType::Float32,
                vec![Dim::Symbolic("N".into()), Dim::Fixed(2)],
            ),
            spec("b", DType::Int64, vec![Dim::Symbolic("N".into())]),
        ];
        let mut input = Tensors::default();
        input
            .0
            .insert("a".into(), t(vec![1, 2], TensorData::F32(vec![1.0, 2.0])));
        input
            .0
            .insert("b".into(), t(vec![1], TensorData::I64(vec![3])));
        validate_input(&specs, &input).unwrap();

        let mut bad = input.clone();
        bad.0
            .insert("a".into(), t(vec![2, 1], TensorData::F32(vec![1.0, 2.0])));
        let e = validate_input(&specs, &bad).unwrap_err().to_string();
        assert!(
            e.contains("input `a`") && e.contains("float32[N, 2]"),
            "{e}"
        );
        assert!(
            e.contains("got float32[2, 1]") && e.contains("dimension 1"),
            "{e}"
        );

        let mut bad = input.clone();
        bad.0
            .insert("b".into(), t(vec![2], TensorData::I64(vec![3, 4])));
        let e = validate_input(&specs, &bad).unwrap_err().to_string();
        assert!(e.contains("`N`") && e.contains("input `a`"), "{e}");

        let mut bad = input.clone();
        bad.0
            .insert("b".into(), t(vec![1], TensorData::I32(vec![3])));
        let e = validate_input(&specs, &bad).unwrap_err().to_string();
        assert!(e.contains("dtype int32 is not int64"), "{e}");

        let mut bad = input.clone();
        bad.0.remove("b");
        let e = validate_input(&specs, &bad).unwrap_err().to_string();
        assert!(e.contains("missing input `b`"), "{e}");

        let mut bad = input.clone();
        bad.0
            .insert("c".into(), t(vec![1], TensorData::I64(vec![3])));
        let e = validate_input(&specs, &bad).unwrap_err().to_string();
        assert!(e.contains("unknown input `c`"), "{e}");
    }

    #[test]
    fn round_trip_through_tract() {
        let x = t(vec![2, 2], TensorData::I32(vec![1, -2, 3, 4]));
        let tt = to_tract(&x).unwrap();
        assert_eq!(from_tract(&tt, None).unwrap(), x);
        let as_i64 = from_tract(&tt, Some(DType::Int64)).unwrap();
        assert_eq!(as_i64.data, TensorData::I64(vec![1, -2, 3, 4]));
        let b = t(vec![3], TensorData::Bool(vec![true, false, true]));
        assert_eq!(from_tract(&to_tract(&b).unwrap(), None).unwrap(), b);
    }
}
