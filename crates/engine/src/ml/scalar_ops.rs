//! Element-wise ONNX-ML operators: `Scaler`, `Binarizer`, `Imputer`.

use super::{built, Kernel};
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// The value of a per-feature attribute for flat element `i` of a tensor
/// whose last dimension is `c` (a single value applies to every feature).
fn per_feature<T: Copy>(v: &[T], i: usize, c: usize) -> T {
    if v.len() == 1 {
        v[0]
    } else {
        v[i % c]
    }
}

/// Checks a per-feature attribute against the last dimension.
fn check_features(name: &str, len: usize, shape: &[usize]) -> TractResult<usize> {
    let c = shape.last().copied().unwrap_or(1);
    ensure!(
        len == 1 || len == c,
        "{name} has {len} values but the input has {c} features"
    );
    Ok(c.max(1))
}

fn same_shape_rules<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
) -> InferenceResult {
    check_input_arity(inputs, 1)?;
    check_output_arity(outputs, 1)?;
    s.equals(&inputs[0].shape, &outputs[0].shape)
}

/// ai.onnx.ml `Scaler`: `Y = (X - offset) * scale` per feature (last
/// dimension), as float32 (computed in float32, as onnxruntime does).
#[derive(Debug)]
pub(crate) struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

impl Scaler {
    pub(crate) fn parse(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<Self> {
        let get = |name: &str, default: f32| -> TractResult<Vec<f32>> {
            Ok(match node.get_attr_opt_slice::<f32>(name)? {
                Some(v) if !v.is_empty() => v.to_vec(),
                _ => vec![default],
            })
        };
        Ok(Self {
            offset: get("offset", 0.0)?,
            scale: get("scale", 1.0)?,
        })
    }
}

impl Kernel for Scaler {
    fn name(&self) -> &'static str {
        "Scaler"
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        same_shape_rules(s, inputs, outputs)?;
        s.equals(&outputs[0].datum_type, f32::datum_type())
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = inputs[0].cast_to::<f32>()?;
        let shape = x.shape().to_vec();
        let c = check_features("offset", self.offset.len(), &shape)?;
        check_features("scale", self.scale.len(), &shape)?;
        let plain = x.try_as_plain_ram()?;
        let y: Vec<f32> = plain
            .as_slice::<f32>()?
            .iter()
            .enumerate()
            .map(|(i, v)| (v - per_feature(&self.offset, i, c)) * per_feature(&self.scale, i, c))
            .collect();
        Ok(tvec!(Tensor::from_shape(&shape, &y)?.into_tvalue()))
    }
}

/// ai.onnx.ml `Binarizer`: `Y = 1 if X > threshold else 0`, same type as X
/// (NaN stays NaN).
#[derive(Debug)]
pub(crate) struct Binarizer {
    threshold: f32,
}

impl Binarizer {
    pub(crate) fn parse(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<Self> {
        Ok(Self {
            threshold: node.get_attr_opt::<f32>("threshold")?.unwrap_or(0.0),
        })
    }

    fn map<T: Datum + Copy>(&self, x: &Tensor, f: impl Fn(T) -> T) -> TractResult<Tensor> {
        let plain = x.try_as_plain_ram()?;
        let y: Vec<T> = plain.as_slice::<T>()?.iter().map(|v| f(*v)).collect();
        Tensor::from_shape(x.shape(), &y)
    }
}

impl Kernel for Binarizer {
    fn name(&self) -> &'static str {
        "Binarizer"
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        same_shape_rules(s, inputs, outputs)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let th = self.threshold;
        let thd = th as f64;
        let y = match x.datum_type() {
            DatumType::F32 => self.map::<f32>(x, |v| {
                if v > th {
                    1.0
                } else if v.is_nan() {
                    v
                } else {
                    0.0
                }
            })?,
            DatumType::F64 => self.map::<f64>(x, |v| {
                if v > thd {
                    1.0
                } else if v.is_nan() {
                    v
                } else {
                    0.0
                }
            })?,
            DatumType::I64 => self.map::<i64>(x, |v| (v as f64 > thd) as i64)?,
            DatumType::I32 => self.map::<i32>(x, |v| (v as f64 > thd) as i32)?,
            dt => bail!("Binarizer does not accept {dt:?} inputs"),
        };
        Ok(tvec!(y.into_tvalue()))
    }
}

/// ai.onnx.ml `Imputer`: replaces `replaced_value_*` (NaN matches NaN) by
/// `imputed_value_*` (one value, or one per feature), same type as X.
#[derive(Debug)]
pub(crate) struct Imputer {
    floats: Option<Vec<f32>>,
    ints: Option<Vec<i64>>,
    replaced_float: f32,
    replaced_int: i64,
}

impl Imputer {
    pub(crate) fn parse(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<Self> {
        let floats = node
            .get_attr_opt_slice::<f32>("imputed_value_floats")?
            .filter(|v| !v.is_empty())
            .map(<[f32]>::to_vec);
        let ints = node
            .get_attr_opt_slice::<i64>("imputed_value_int64s")?
            .filter(|v| !v.is_empty())
            .map(<[i64]>::to_vec);
        ensure!(
            floats.is_some() != ints.is_some(),
            "exactly one of imputed_value_floats and imputed_value_int64s must be set"
        );
        Ok(Self {
            floats,
            ints,
            replaced_float: node
                .get_attr_opt::<f32>("replaced_value_float")?
                .unwrap_or(0.0),
            replaced_int: node
                .get_attr_opt::<i64>("replaced_value_int64")?
                .unwrap_or(0),
        })
    }

    fn impute<T: Datum + Copy>(
        &self,
        x: &Tensor,
        with: &[T],
        hit: impl Fn(T) -> bool,
    ) -> TractResult<Tensor> {
        let c = check_features("imputed values", with.len(), x.shape())?;
        let plain = x.try_as_plain_ram()?;
        let y: Vec<T> = plain
            .as_slice::<T>()?
            .iter()
            .enumerate()
            .map(|(i, v)| if hit(*v) { per_feature(with, i, c) } else { *v })
            .collect();
        Tensor::from_shape(x.shape(), &y)
    }
}

impl Kernel for Imputer {
    fn name(&self) -> &'static str {
        "Imputer"
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        same_shape_rules(s, inputs, outputs)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let rf = self.replaced_float;
        let ri = self.replaced_int;
        let floats = || {
            self.floats
                .as_deref()
                .context("float input needs imputed_value_floats")
        };
        let ints = || {
            self.ints
                .as_deref()
                .context("integer input needs imputed_value_int64s")
        };
        let y =
            match x.datum_type() {
                DatumType::F32 => self.impute::<f32>(x, floats()?, |v| {
                    if rf.is_nan() {
                        v.is_nan()
                    } else {
                        v == rf
                    }
                })?,
                DatumType::F64 => {
                    let with: Vec<f64> = floats()?.iter().map(|v| *v as f64).collect();
                    let rd = rf as f64;
                    self.impute::<f64>(
                        x,
                        &with,
                        |v| if rd.is_nan() { v.is_nan() } else { v == rd },
                    )?
                }
                DatumType::I64 => self.impute::<i64>(x, ints()?, |v| v == ri)?,
                DatumType::I32 => {
                    let with: Vec<i32> = ints()?
                        .iter()
                        .map(|v| i32::try_from(*v).context("imputed value out of int32 range"))
                        .collect::<TractResult<_>>()?;
                    self.impute::<i32>(x, &with, |v| v as i64 == ri)?
                }
                dt => bail!("Imputer does not accept {dt:?} inputs"),
            };
        Ok(tvec!(y.into_tvalue()))
    }
}

pub(crate) fn scaler(ctx: &ParsingContext, node: &NodeProto) -> Built {
    built(Scaler::parse(ctx, node)?)
}

pub(crate) fn binarizer(ctx: &ParsingContext, node: &NodeProto) -> Built {
    built(Binarizer::parse(ctx, node)?)
}

pub(crate) fn imputer(ctx: &ParsingContext, node: &NodeProto) -> Built {
    built(Imputer::parse(ctx, node)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::testutil::*;

    #[test]
    fn scaler_per_feature_and_broadcast() {
        let n = node(
            "Scaler",
            1,
            1,
            vec![floats("offset", &[1.0, 2.0]), floats("scale", &[0.5, 2.0])],
        );
        let k = parse(Scaler::parse, &n).unwrap();
        let y = k
            .eval(tvec!(value(&[2, 2], &[3.0f32, 3.0, 5.0, 0.0])))
            .unwrap();
        // (3-1)*0.5, (3-2)*2, (5-1)*0.5, (0-2)*2
        assert_eq!(read::<f32>(&y[0]), vec![1.0, 2.0, 2.0, -4.0]);
        // int64 input, one offset for every feature
        let n = node(
            "Scaler",
            1,
            1,
            vec![floats("offset", &[1.0]), floats("scale", &[3.0])],
        );
        let k = parse(Scaler::parse, &n).unwrap();
        let y = k.eval(tvec!(value(&[1, 3], &[1i64, 2, 3]))).unwrap();
        assert_eq!(read::<f32>(&y[0]), vec![0.0, 3.0, 6.0]);
        // 2 offsets for 3 features
        let n = node("Scaler", 1, 1, vec![floats("offset", &[1.0, 2.0])]);
        let k = parse(Scaler::parse, &n).unwrap();
        assert!(k.eval(tvec!(value(&[1, 3], &[1f32, 2., 3.]))).is_err());
    }

    #[test]
    fn binarizer_thresholds() {
        let n = node("Binarizer", 1, 1, vec![float("threshold", 0.5)]);
        let k = parse(Binarizer::parse, &n).unwrap();
        let y = k
            .eval(tvec!(value(&[4], &[0.5f32, 0.6, -1.0, f32::NAN])))
            .unwrap();
        let y = read::<f32>(&y[0]);
        assert_eq!(&y[..3], &[0.0, 1.0, 0.0]);
        assert!(y[3].is_nan());
        let y = k.eval(tvec!(value(&[3], &[0i64, 1, 2]))).unwrap();
        assert_eq!(read::<i64>(&y[0]), vec![0, 1, 1]);
        let n = node("Binarizer", 1, 1, vec![]);
        let k = parse(Binarizer::parse, &n).unwrap();
        let y = k.eval(tvec!(value(&[2], &[0.0f64, 1e-9]))).unwrap();
        assert_eq!(read::<f64>(&y[0]), vec![0.0, 1.0]);
    }

    #[test]
    fn imputer_replaces_nan_or_value() {
        let n = node(
            "Imputer",
            1,
            1,
            vec![
                floats("imputed_value_floats", &[10.0, 20.0]),
                float("replaced_value_float", f32::NAN),
            ],
        );
        let k = parse(Imputer::parse, &n).unwrap();
        let y = k
            .eval(tvec!(value(&[2, 2], &[f32::NAN, 1.0, 2.0, f32::NAN])))
            .unwrap();
        assert_eq!(read::<f32>(&y[0]), vec![10.0, 1.0, 2.0, 20.0]);
        let n = node(
            "Imputer",
            1,
            1,
            vec![
                ints("imputed_value_int64s", &[7]),
                int("replaced_value_int64", -1),
            ],
        );
        let k = parse(Imputer::parse, &n).unwrap();
        let y = k.eval(tvec!(value(&[3], &[-1i64, 0, -1]))).unwrap();
        assert_eq!(read::<i64>(&y[0]), vec![7, 0, 7]);
        assert!(k.eval(tvec!(value(&[1], &[1.0f32]))).is_err());
        let n = node("Imputer", 1, 1, vec![]);
        assert!(parse(Imputer::parse, &n).is_err());
    }
}
