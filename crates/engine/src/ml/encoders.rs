//! ONNX-ML operators that reshape features: `FeatureVectorizer`,
//! `OneHotEncoder`.

use super::{built, Kernel};
use std::collections::HashMap;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// ai.onnx.ml `FeatureVectorizer`: concatenates its inputs' features into
/// one float32 `[N, sum(inputdimensions)]`. Input `i` is `[N, ...]` (or
/// `[C]`, one row); each row contributes its first `inputdimensions[i]`
/// values, padded with zeros when it has fewer (onnxruntime's behaviour).
#[derive(Debug)]
pub(crate) struct FeatureVectorizer {
    dims: Vec<usize>,
}

impl FeatureVectorizer {
    pub(crate) fn parse(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<Self> {
        let dims = node
            .get_attr_opt_slice::<i64>("inputdimensions")?
            .unwrap_or_default()
            .iter()
            .map(|d| usize::try_from(*d).context("negative input dimension"))
            .collect::<TractResult<Vec<_>>>()?;
        ensure!(
            dims.len() == node.input.len(),
            "inputdimensions has {} values for {} inputs",
            dims.len(),
            node.input.len()
        );
        ensure!(
            dims.iter()
                .try_fold(0usize, |a, d| a.checked_add(*d))
                .is_some(),
            "inputdimensions overflow"
        );
        Ok(Self { dims })
    }

    fn width(&self) -> usize {
        self.dims.iter().sum()
    }
}

impl Kernel for FeatureVectorizer {
    fn name(&self) -> &'static str {
        "FeatureVectorizer"
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, self.dims.len())?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&outputs[0].shape[1], self.width().to_dim())?;
        s.given(&inputs[0].rank, move |s, rank| {
            if rank >= 2 {
                s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
            } else {
                s.equals(&outputs[0].shape[0], 1.to_dim())?;
            }
            Ok(())
        })
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = if inputs[0].rank() >= 2 {
            inputs[0].shape[0].clone()
        } else {
            1.into()
        };
        Ok(tvec!(f32::fact([n, self.width().to_dim()])))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let rows = |t: &Tensor| match t.shape() {
            [] => (1, 1),
            [c] => (1, *c),
            s => (s[0], s[1..].iter().product()),
        };
        let n = rows(&inputs[0]).0;
        let width = self.width();
        let mut out = vec![0f32; n.checked_mul(width).context("output too large")?];
        let mut col = 0;
        for (t, dim) in inputs.iter().zip(&self.dims) {
            let (tn, c) = rows(t);
            ensure!(tn == n, "inputs have {n} and {tn} rows");
            let x = t.cast_to::<f32>()?;
            let plain = x.try_as_plain_ram()?;
            let x = plain.as_slice::<f32>()?;
            let take = c.min(*dim);
            for r in 0..n {
                out[r * width + col..][..take].copy_from_slice(&x[r * c..][..take]);
            }
            col += dim;
        }
        Ok(tvec!(Tensor::from_shape(&[n, width], &out)?.into_tvalue()))
    }
}

/// ai.onnx.ml `OneHotEncoder`: output shape is the input's plus one axis of
/// `len(cats)` float32 values, 1 at the matching category. Numeric inputs
/// are truncated to int64 and matched against `cats_int64s`, strings against
/// `cats_strings`. An unknown value gives a zero row when `zeros` is 1
/// (default), an error otherwise.
#[derive(Debug)]
pub(crate) struct OneHotEncoder {
    ints: HashMap<i64, usize>,
    strings: HashMap<String, usize>,
    n_cats: usize,
    zeros: bool,
}

impl OneHotEncoder {
    pub(crate) fn parse(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<Self> {
        let ints = node
            .get_attr_opt_slice::<i64>("cats_int64s")?
            .unwrap_or_default();
        let strings = node
            .get_attr_opt_tvec::<String>("cats_strings")?
            .map(|v| v.into_vec())
            .unwrap_or_default();
        ensure!(
            ints.is_empty() != strings.is_empty(),
            "exactly one of cats_int64s and cats_strings must be set"
        );
        let n_cats = ints.len().max(strings.len());
        let ints: HashMap<i64, usize> = ints.iter().enumerate().map(|(i, v)| (*v, i)).collect();
        let strings: HashMap<String, usize> = strings
            .into_iter()
            .enumerate()
            .map(|(i, v)| (v, i))
            .collect();
        ensure!(
            ints.len().max(strings.len()) == n_cats,
            "categories must be distinct"
        );
        let zeros = node.get_attr_opt::<i64>("zeros")?.unwrap_or(1) != 0;
        Ok(Self {
            ints,
            strings,
            n_cats,
            zeros,
        })
    }
}

impl Kernel for OneHotEncoder {
    fn name(&self) -> &'static str {
        "OneHotEncoder"
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(inputs[0].rank.bex() + 1, outputs[0].rank.bex())?;
        let n = self.n_cats;
        s.given(&inputs[0].shape, move |s, shape| {
            let mut out = shape.clone();
            out.push(n.to_dim());
            s.equals(&outputs[0].shape, out)
        })
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        shape.push(self.n_cats.to_dim());
        Ok(tvec!(f32::fact(shape)))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let cats: Vec<Option<usize>> = if x.datum_type() == String::datum_type() {
            let plain = x.try_as_plain_ram()?;
            plain
                .as_slice::<String>()?
                .iter()
                .map(|s| self.strings.get(s).copied())
                .collect()
        } else {
            let v = x.cast_to::<f64>()?;
            let plain = v.try_as_plain_ram()?;
            plain
                .as_slice::<f64>()?
                .iter()
                .map(|f| self.ints.get(&(*f as i64)).copied())
                .collect()
        };
        let len = cats
            .len()
            .checked_mul(self.n_cats)
            .context("output too large")?;
        let mut out = vec![0f32; len];
        for (i, c) in cats.iter().enumerate() {
            match c {
                Some(c) => out[i * self.n_cats + c] = 1.0,
                None if self.zeros => {}
                None => bail!("value #{i} is not a known category"),
            }
        }
        let mut shape = x.shape().to_vec();
        shape.push(self.n_cats);
        Ok(tvec!(Tensor::from_shape(&shape, &out)?.into_tvalue()))
    }
}

pub(crate) fn feature_vectorizer(ctx: &ParsingContext, node: &NodeProto) -> Built {
    built(FeatureVectorizer::parse(ctx, node)?)
}

pub(crate) fn one_hot_encoder(ctx: &ParsingContext, node: &NodeProto) -> Built {
    built(OneHotEncoder::parse(ctx, node)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::testutil::*;

    #[test]
    fn feature_vectorizer_truncates_and_pads() {
        let n = node(
            "FeatureVectorizer",
            2,
            1,
            vec![ints("inputdimensions", &[1, 3])],
        );
        let k = parse(FeatureVectorizer::parse, &n).unwrap();
        let a = value(&[2, 2], &[1f32, 2., 3., 4.]);
        let b = value(&[2, 2], &[5i64, 6, 7, 8]);
        let y = k.eval(tvec!(a, b)).unwrap();
        assert_eq!(y[0].shape(), &[2, 4]);
        // row 0: a[0][..1] = 1, b[0] = 5, 6 then a zero pad
        assert_eq!(read::<f32>(&y[0]), vec![1., 5., 6., 0., 3., 7., 8., 0.]);
        let bad = node(
            "FeatureVectorizer",
            2,
            1,
            vec![ints("inputdimensions", &[1])],
        );
        assert!(parse(FeatureVectorizer::parse, &bad).is_err());
    }

    #[test]
    fn one_hot_encoder_ints_and_strings() {
        let n = node("OneHotEncoder", 1, 1, vec![ints("cats_int64s", &[3, 1, 7])]);
        let k = parse(OneHotEncoder::parse, &n).unwrap();
        let y = k.eval(tvec!(value(&[2], &[7i64, 2]))).unwrap();
        assert_eq!(y[0].shape(), &[2, 3]);
        assert_eq!(read::<f32>(&y[0]), vec![0., 0., 1., 0., 0., 0.]);
        let y = k.eval(tvec!(value(&[1], &[1.9f32]))).unwrap();
        assert_eq!(read::<f32>(&y[0]), vec![0., 1., 0.]);

        let n = node(
            "OneHotEncoder",
            1,
            1,
            vec![strings("cats_strings", &["a", "b"]), int("zeros", 0)],
        );
        let k = parse(OneHotEncoder::parse, &n).unwrap();
        let y = k.eval(tvec!(strings_value(&["b", "a"]))).unwrap();
        assert_eq!(read::<f32>(&y[0]), vec![0., 1., 1., 0.]);
        assert!(k.eval(tvec!(strings_value(&["c"]))).is_err());
    }
}
