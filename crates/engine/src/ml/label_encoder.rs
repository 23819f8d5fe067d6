//! ai.onnx.ml `LabelEncoder` (versions 1, 2 and 4).
//!
//! Maps each input element through `keys_*` → `values_*` (or the
//! `*_tensor` forms of version 4); an element that is no key becomes the
//! default (`default_*`, `default_tensor`; -1, -0.0 or "_Unused" when
//! absent). Float keys match by value, NaN matching NaN and -0.0 matching
//! 0.0; when a key repeats, its first value is used. Version 1
//! (`classes_strings`) maps strings to their index, or int64 indices to
//! strings, depending on the input type.

use super::{built, Kernel};
use std::collections::HashMap;
use std::sync::Arc;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::{NodeProto, TensorProto};
use tract_onnx::tract_hir::internal::*;

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Str,
}

fn kind_of(dt: DatumType) -> Option<Kind> {
    if dt == String::datum_type() {
        Some(Kind::Str)
    } else if dt.is_float() {
        Some(Kind::Float)
    } else if dt.is_integer() {
        Some(Kind::Int)
    } else {
        None
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    I(i64),
    F(u64),
    S(String),
}

fn float_key(x: f64) -> Key {
    Key::F(if x.is_nan() {
        f64::NAN.to_bits()
    } else if x == 0.0 {
        0f64.to_bits()
    } else {
        x.to_bits()
    })
}

/// The keys of a 1-D tensor (or of the elements of an input).
fn keys_of(t: &Tensor) -> TractResult<Vec<Key>> {
    Ok(match kind_of(t.datum_type()) {
        Some(Kind::Str) => {
            let p = t.try_as_plain_ram()?;
            p.as_slice::<String>()?
                .iter()
                .cloned()
                .map(Key::S)
                .collect()
        }
        Some(Kind::Float) => {
            let c = t.cast_to::<f64>()?;
            let p = c.try_as_plain_ram()?;
            p.as_slice::<f64>()?.iter().map(|x| float_key(*x)).collect()
        }
        Some(Kind::Int) => {
            let c = t.cast_to::<i64>()?;
            let p = c.try_as_plain_ram()?;
            p.as_slice::<i64>()?.iter().map(|x| Key::I(*x)).collect()
        }
        None => bail!("LabelEncoder does not handle {:?}", t.datum_type()),
    })
}

/// One direction of the mapping.
#[derive(Debug)]
struct Encoding {
    kind: Kind,
    map: HashMap<Key, usize>,
    values: Arc<Tensor>,
    default: Arc<Tensor>,
}

impl Encoding {
    fn new(keys: &Tensor, values: Tensor, default: Tensor) -> TractResult<Self> {
        let kind = kind_of(keys.datum_type()).context("keys of an unsupported type")?;
        ensure!(
            kind_of(values.datum_type()).is_some(),
            "values of an unsupported type"
        );
        ensure!(
            keys.len() == values.len(),
            "{} keys for {} values",
            keys.len(),
            values.len()
        );
        ensure!(
            default.datum_type() == values.datum_type() && default.len() == 1,
            "the default must be one value of the values' type"
        );
        let mut map = HashMap::new();
        for (i, k) in keys_of(keys)?.into_iter().enumerate() {
            map.entry(k).or_insert(i);
        }
        Ok(Self {
            kind,
            map,
            values: values.into_shape(&[keys.len()])?.into_arc_tensor(),
            default: default.into_shape(&[])?.into_arc_tensor(),
        })
    }

    fn gather<T: Datum + Clone>(
        &self,
        idx: &[Option<usize>],
        shape: &[usize],
    ) -> TractResult<Tensor> {
        let v = self.values.try_as_plain_ram()?;
        let v = v.as_slice::<T>()?;
        let d = self.default.try_as_plain_ram()?;
        let d = d.as_slice::<T>()?[0].clone();
        let out: Vec<T> = idx
            .iter()
            .map(|i| i.map(|i| v[i].clone()).unwrap_or_else(|| d.clone()))
            .collect();
        Ok(tract_ndarray::ArrayD::from_shape_vec(shape, out)?.into_tensor())
    }

    fn eval(&self, x: &Tensor) -> TractResult<Tensor> {
        let idx: Vec<Option<usize>> = keys_of(x)?
            .iter()
            .map(|k| self.map.get(k).copied())
            .collect();
        let s = x.shape();
        match self.values.datum_type() {
            DatumType::I64 => self.gather::<i64>(&idx, s),
            DatumType::I32 => self.gather::<i32>(&idx, s),
            DatumType::I16 => self.gather::<i16>(&idx, s),
            DatumType::F32 => self.gather::<f32>(&idx, s),
            DatumType::F64 => self.gather::<f64>(&idx, s),
            dt if dt == String::datum_type() => self.gather::<String>(&idx, s),
            dt => bail!("LabelEncoder values of type {dt:?} are not supported"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct LabelEncoder {
    /// One encoding per accepted input kind.
    encodings: Vec<Encoding>,
}

fn strings_tensor(v: &[String]) -> Tensor {
    tract_ndarray::Array1::from_vec(v.to_vec()).into_tensor()
}

impl LabelEncoder {
    pub(crate) fn parse(ctx: &ParsingContext, node: &NodeProto) -> TractResult<Self> {
        let default_int = node.get_attr_opt::<i64>("default_int64")?.unwrap_or(-1);
        let default_str = node
            .get_attr_opt::<String>("default_string")?
            .unwrap_or_else(|| "_Unused".into());
        if let Some(classes) = node.get_attr_opt_tvec::<String>("classes_strings")? {
            let n = classes.len() as i64;
            let classes = strings_tensor(&classes);
            let indices = tensor1(&(0..n).collect::<Vec<i64>>());
            let to_index = Encoding::new(&classes, indices.clone(), tensor0(default_int))?;
            let to_class = Encoding::new(&indices, classes, tensor0(default_str))?;
            return Ok(Self {
                encodings: vec![to_index, to_class],
            });
        }
        let list = |what: &str| -> TractResult<Option<Tensor>> {
            let mut found = vec![];
            if let Some(v) = node.get_attr_opt_slice::<i64>(&format!("{what}_int64s"))? {
                found.push(tensor1(v));
            }
            if let Some(v) = node.get_attr_opt_slice::<f32>(&format!("{what}_floats"))? {
                found.push(tensor1(v));
            }
            if let Some(v) = node.get_attr_opt_tvec::<String>(&format!("{what}_strings"))? {
                found.push(strings_tensor(&v));
            }
            if let Some(t) = node.get_attr_opt::<&TensorProto>(&format!("{what}_tensor"))? {
                found.push(ctx.load_tensor(t)?);
            }
            ensure!(found.len() <= 1, "more than one {what}_* attribute is set");
            Ok(found.pop())
        };
        let keys = list("keys")?.context("no keys_* attribute")?;
        let values = list("values")?.context("no values_* attribute")?;
        let default = match node.get_attr_opt::<&TensorProto>("default_tensor")? {
            Some(t) => ctx.load_tensor(t)?,
            None => match kind_of(values.datum_type()) {
                Some(Kind::Str) => tensor0(default_str),
                Some(Kind::Float) => {
                    let f = node.get_attr_opt::<f32>("default_float")?.unwrap_or(-0.0);
                    tensor0(f).cast_to_dt(values.datum_type())?.into_owned()
                }
                _ => tensor0(default_int)
                    .cast_to_dt(values.datum_type())?
                    .into_owned(),
            },
        };
        Ok(Self {
            encodings: vec![Encoding::new(&keys, values, default)?],
        })
    }

    fn encoding(&self, input: DatumType) -> TractResult<&Encoding> {
        let kind = kind_of(input).with_context(|| format!("{input:?} inputs are not supported"))?;
        self.encodings
            .iter()
            .find(|e| e.kind == kind)
            .with_context(|| format!("the keys do not match {input:?} inputs"))
    }
}

impl Kernel for LabelEncoder {
    fn name(&self) -> &'static str {
        "LabelEncoder"
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        if let [only] = &self.encodings[..] {
            s.equals(&outputs[0].datum_type, only.values.datum_type())
        } else {
            s.given(&inputs[0].datum_type, move |s, dt| {
                let e = self.encoding(dt)?;
                s.equals(&outputs[0].datum_type, e.values.datum_type())
            })
        }
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let e = self.encoding(inputs[0].datum_type)?;
        Ok(tvec!(e.values.datum_type().fact(inputs[0].shape.clone())))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let e = self.encoding(inputs[0].datum_type())?;
        Ok(tvec!(e.eval(&inputs[0])?.into_tvalue()))
    }
}

pub(crate) fn label_encoder(ctx: &ParsingContext, node: &NodeProto) -> Built {
    built(LabelEncoder::parse(ctx, node)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::testutil::*;

    #[test]
    fn strings_to_ints_with_default() {
        let n = node(
            "LabelEncoder",
            1,
            1,
            vec![
                strings("keys_strings", &["a", "b", "c"]),
                ints("values_int64s", &[10, 20, 30]),
                int("default_int64", 99),
            ],
        );
        let k = parse(LabelEncoder::parse, &n).unwrap();
        let y = k.eval(tvec!(strings_value(&["c", "x", "a"]))).unwrap();
        assert_eq!(read::<i64>(&y[0]), vec![30, 99, 10]);
        assert!(k.eval(tvec!(value(&[1], &[1i64]))).is_err());
    }

    #[test]
    fn floats_to_strings_nan_and_zero() {
        let n = node(
            "LabelEncoder",
            1,
            1,
            vec![
                floats("keys_floats", &[f32::NAN, 0.0, 2.5]),
                strings("values_strings", &["nan", "zero", "two"]),
            ],
        );
        let k = parse(LabelEncoder::parse, &n).unwrap();
        let y = k
            .eval(tvec!(value(&[2, 2], &[f32::NAN, -0.0, 2.5, 1.0])))
            .unwrap();
        assert_eq!(y[0].shape(), &[2, 2]);
        assert_eq!(read::<String>(&y[0]), vec!["nan", "zero", "two", "_Unused"]);
    }

    #[test]
    fn ints_to_floats_default_is_negative_zero() {
        let n = node(
            "LabelEncoder",
            1,
            1,
            vec![
                ints("keys_int64s", &[1, 2]),
                floats("values_floats", &[0.5, 1.5]),
            ],
        );
        let k = parse(LabelEncoder::parse, &n).unwrap();
        let y = k.eval(tvec!(value(&[3], &[2i64, 1, 3]))).unwrap();
        let y = read::<f32>(&y[0]);
        assert_eq!(&y[..2], &[1.5, 0.5]);
        assert!(y[2] == 0.0 && y[2].is_sign_negative());
    }

    #[test]
    fn version_1_both_directions() {
        let n = node(
            "LabelEncoder",
            1,
            1,
            vec![
                strings("classes_strings", &["x", "y"]),
                string("default_string", "?"),
            ],
        );
        let k = parse(LabelEncoder::parse, &n).unwrap();
        let y = k.eval(tvec!(strings_value(&["y", "z"]))).unwrap();
        assert_eq!(read::<i64>(&y[0]), vec![1, -1]);
        let y = k.eval(tvec!(value(&[3], &[0i64, 1, 5]))).unwrap();
        assert_eq!(read::<String>(&y[0]), vec!["x", "y", "?"]);
    }

    #[test]
    fn malformed_attributes_are_errors() {
        let n = node(
            "LabelEncoder",
            1,
            1,
            vec![
                ints("keys_int64s", &[1, 2]),
                floats("values_floats", &[0.5]),
            ],
        );
        assert!(parse(LabelEncoder::parse, &n).is_err());
        let n = node("LabelEncoder", 1, 1, vec![ints("keys_int64s", &[1])]);
        assert!(parse(LabelEncoder::parse, &n).is_err());
    }
}
