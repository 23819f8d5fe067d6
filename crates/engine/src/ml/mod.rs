//! `ai.onnx.ml` operators added to tract's ONNX loader.
//!
//! tract-onnx 0.23.9 already loads `ArrayFeatureExtractor`, `CategoryMapper`,
//! `LinearClassifier`, `LinearRegressor`, `Normalizer` and
//! `TreeEnsembleClassifier`. Its tree ensemble evaluates node and class ids
//! taken from the model with unchecked (unsafe) indexing, and loops forever
//! on a cyclic tree, so this module replaces `TreeEnsembleClassifier` with a
//! checked implementation, and adds the operators listed in [`OPS`].
//!
//! Semantics follow the ONNX-ML operator specification and its reference
//! implementation; where the specification is silent, onnxruntime's choices
//! are followed (noted on each operator).

mod encoders;
mod label_encoder;
mod post;
mod scalar_ops;
#[cfg(test)]
mod testutil;
mod tree;

use std::fmt::Debug;
use std::sync::Arc;
use tract_onnx::model::OnnxOpRegister;
use tract_onnx::tract_hir::internal::*;

pub(crate) use post::PostTransform;

/// The `ai.onnx.ml` operators this module registers (replacing tract's own
/// `TreeEnsembleClassifier`).
pub const OPS: &[&str] = &[
    "Binarizer",
    "FeatureVectorizer",
    "Imputer",
    "LabelEncoder",
    "OneHotEncoder",
    "Scaler",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
];

/// Registers this module's operators on a tract ONNX operator register.
pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Binarizer", scalar_ops::binarizer);
    reg.insert("Imputer", scalar_ops::imputer);
    reg.insert("Scaler", scalar_ops::scaler);
    reg.insert("FeatureVectorizer", encoders::feature_vectorizer);
    reg.insert("OneHotEncoder", encoders::one_hot_encoder);
    reg.insert("LabelEncoder", label_encoder::label_encoder);
    reg.insert("TreeEnsembleClassifier", tree::classifier);
    reg.insert("TreeEnsembleRegressor", tree::regressor);
}

/// The computation of one operator: typing rules and evaluation.
pub(crate) trait Kernel: Debug + Send + Sync + 'static {
    fn name(&self) -> &'static str;

    fn n_outputs(&self) -> usize {
        1
    }

    /// Inference rules (for the loader's type and shape analysis).
    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult;

    /// Output facts from input facts (typed model).
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>>;

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>>;
}

/// A [`Kernel`] as a typed tract operator.
#[derive(Debug, Clone)]
pub(crate) struct MlOp(pub Arc<dyn Kernel>);

impl PartialEq for MlOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for MlOp {}

impl Op for MlOp {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    op_as_typed_op!();
}

impl EvalOp for MlOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        self.0.eval(inputs)
    }
}

impl TypedOp for MlOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.0.output_facts(inputs)
    }

    as_op!();
}

/// A [`Kernel`] as an inference-model operator; it wires itself as [`MlOp`].
#[derive(Debug, Clone)]
pub(crate) struct MlExpansion(pub Arc<dyn Kernel>);

impl Expansion for MlExpansion {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.0.n_outputs())
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        self.0.rules(s, inputs, outputs)
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, MlOp(self.0.clone()), inputs)
    }
}

/// The loader's answer for a kernel.
pub(crate) fn built(k: impl Kernel) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand(MlExpansion(Arc::new(k))), vec![]))
}

/// A `[N, F]` (or `[F]`, read as one row) numeric input as f64 values.
pub(crate) struct Rows {
    pub n: usize,
    pub f: usize,
    pub data: Vec<f64>,
}

impl Rows {
    pub(crate) fn of(t: &Tensor) -> TractResult<Rows> {
        let (n, f) = match t.shape() {
            [f] => (1, *f),
            [n, f] => (*n, *f),
            s => bail!("expected a [N, F] or [F] input, got shape {s:?}"),
        };
        ensure!(
            t.datum_type().is_number(),
            "expected a numeric input, got {:?}",
            t.datum_type()
        );
        let data = t.cast_to::<f64>()?;
        let data = data.try_as_plain_ram()?.as_slice::<f64>()?.to_vec();
        Ok(Rows { n, f, data })
    }

    pub(crate) fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.f..(i + 1) * self.f]
    }
}

/// The number of rows of a `[N, F]` or `[F]` input fact.
pub(crate) fn rows_dim(fact: &TypedFact) -> TractResult<TDim> {
    match fact.rank() {
        1 => Ok(1.into()),
        2 => Ok(fact.shape[0].clone()),
        r => bail!("expected a rank 1 or 2 input, got rank {r}"),
    }
}

/// Reads a float list attribute, or its `_as_tensor` (double) variant.
pub(crate) fn floats_attr(
    ctx: &tract_onnx::model::ParsingContext,
    node: &tract_onnx::pb::NodeProto,
    name: &str,
) -> TractResult<Option<Vec<f64>>> {
    use tract_onnx::pb::TensorProto;
    if let Some(v) = node.get_attr_opt_slice::<f32>(name)? {
        return Ok(Some(v.iter().map(|x| *x as f64).collect()));
    }
    let tname = format!("{name}_as_tensor");
    if let Some(t) = node.get_attr_opt::<&TensorProto>(&tname)? {
        let t = ctx.load_tensor(t)?;
        let t = t.cast_to::<f64>()?;
        return Ok(Some(t.try_as_plain_ram()?.as_slice::<f64>()?.to_vec()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use crate::{Engine, TractEngine};
    use verity_primitives::{Tensor as VTensor, TensorData, Tensors};

    fn input(items: Vec<(&str, Vec<usize>, TensorData)>) -> Tensors {
        let mut t = Tensors::default();
        for (name, shape, data) in items {
            t.0.insert(name.into(), VTensor::new(name, shape, data).unwrap());
        }
        t
    }

    /// Each operator loads, types and runs as a node of a model with a
    /// symbolic batch dimension.
    #[test]
    fn operators_run_inside_models() {
        let engine = TractEngine::default();
        let x = || {
            (
                "X",
                vec![2, 2],
                TensorData::F32(vec![1.0, f32::NAN, -3.0, 4.0]),
            )
        };
        let cases = vec![
            (
                node(
                    "Scaler",
                    1,
                    1,
                    vec![floats("offset", &[1.0]), floats("scale", &[2.0, 3.0])],
                ),
                vec![io("X", INT64, &[-1, 2])],
                io("Y", FLOAT, &[-1, 2]),
                input(vec![("X", vec![1, 2], TensorData::I64(vec![2, 3]))]),
                TensorData::F32(vec![2.0, 6.0]),
            ),
            (
                node("Binarizer", 1, 1, vec![float("threshold", 2.0)]),
                vec![io("X", FLOAT, &[-1, 2])],
                io("Y", FLOAT, &[-1, 2]),
                input(vec![("X", vec![1, 2], TensorData::F32(vec![2.0, 3.0]))]),
                TensorData::F32(vec![0.0, 1.0]),
            ),
            (
                node(
                    "Imputer",
                    1,
                    1,
                    vec![
                        floats("imputed_value_floats", &[9.0]),
                        float("replaced_value_float", f32::NAN),
                    ],
                ),
                vec![io("X", FLOAT, &[-1, 2])],
                io("Y", FLOAT, &[-1, 2]),
                input(vec![x()]),
                TensorData::F32(vec![1.0, 9.0, -3.0, 4.0]),
            ),
            (
                node(
                    "FeatureVectorizer",
                    2,
                    1,
                    vec![ints("inputdimensions", &[2, 1])],
                ),
                vec![io("X", FLOAT, &[-1, 2]), io("X1", INT64, &[-1, 1])],
                io("Y", FLOAT, &[-1, 3]),
                input(vec![
                    ("X", vec![1, 2], TensorData::F32(vec![1.0, 2.0])),
                    ("X1", vec![1, 1], TensorData::I64(vec![3])),
                ]),
                TensorData::F32(vec![1.0, 2.0, 3.0]),
            ),
            (
                node("OneHotEncoder", 1, 1, vec![ints("cats_int64s", &[5, 6])]),
                vec![io("X", INT64, &[-1])],
                io("Y", FLOAT, &[-1, 2]),
                input(vec![("X", vec![2], TensorData::I64(vec![6, 5]))]),
                TensorData::F32(vec![0.0, 1.0, 1.0, 0.0]),
            ),
            (
                node(
                    "LabelEncoder",
                    1,
                    1,
                    vec![
                        ints("keys_int64s", &[1, 2]),
                        ints("values_int64s", &[20, 10]),
                    ],
                ),
                vec![io("X", INT64, &[-1])],
                io("Y", INT64, &[-1]),
                input(vec![("X", vec![3], TensorData::I64(vec![2, 3, 1]))]),
                TensorData::I64(vec![10, -1, 20]),
            ),
        ];
        for (i, (node, inputs, output, x, want)) in cases.into_iter().enumerate() {
            let op = node.op_type.clone();
            let bytes = model_bytes(node, inputs, vec![output]);
            let out = engine
                .run(&[i as u8; 32], &bytes, &x)
                .unwrap_or_else(|e| panic!("{op}: {e}"));
            assert_eq!(out.get("Y").unwrap().data, want, "{op}");
        }
    }
}
