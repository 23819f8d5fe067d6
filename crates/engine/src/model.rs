//! Decoding, describing and loading ONNX models.

use crate::error::{chain, panic_message};
use crate::EngineError;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimValue;
use tract_onnx::pb::{type_proto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::bail;
use tract_onnx::Onnx;
use verity_primitives::{DType, Dim, TensorSpec};

/// What [`crate::Engine::inspect`] learns about a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// Graph inputs that are not fed by an initializer, in graph order.
    pub inputs: Vec<TensorSpec>,
    /// Graph outputs, in graph order.
    pub outputs: Vec<TensorSpec>,
    /// Operators used, as `domain:OpType` (sorted, unique, subgraphs included).
    pub ops: Vec<String>,
    /// The ONNX IR version.
    pub ir_version: i64,
    /// Imported operator sets: domain (`ai.onnx` for the default) to version.
    pub opsets: BTreeMap<String, i64>,
    /// `producer_name producer_version`, trimmed.
    pub producer: String,
}

impl ModelInfo {
    /// The spec of the input called `name`.
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|s| s.name == name)
    }
}

/// `ai.onnx.ml` operators (ONNX-ML operator set, all versions).
const ML_OPS: &[&str] = &[
    "ArrayFeatureExtractor",
    "Binarizer",
    "CastMap",
    "CategoryMapper",
    "DictVectorizer",
    "FeatureVectorizer",
    "Imputer",
    "LabelEncoder",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "OneHotEncoder",
    "SVMClassifier",
    "SVMRegressor",
    "Scaler",
    "TreeEnsemble",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "ZipMap",
];

pub(crate) fn domain_name(d: &str) -> &str {
    if d.is_empty() {
        "ai.onnx"
    } else {
        d
    }
}

fn op_name(n: &NodeProto) -> String {
    format!("{}:{}", domain_name(&n.domain), n.op_type)
}

/// Decodes ONNX bytes; checks the size limit and that there is a graph.
pub(crate) fn decode(onnx: &[u8], max_bytes: usize) -> Result<ModelProto, EngineError> {
    if onnx.len() > max_bytes {
        return Err(EngineError::LimitExceeded(format!(
            "model is {} bytes, the limit is {max_bytes}",
            onnx.len()
        )));
    }
    let proto = ModelProto::decode(onnx)
        .map_err(|e| EngineError::InvalidModel(format!("not an ONNX model: {e}")))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| EngineError::InvalidModel("not an ONNX model: no graph".into()))?;
    if proto.ir_version <= 0 {
        return Err(EngineError::InvalidModel(
            "not an ONNX model: missing ir_version".into(),
        ));
    }
    if graph.output.is_empty() {
        return Err(EngineError::InvalidModel("the graph has no outputs".into()));
    }
    Ok(proto)
}

/// Calls `f` on every node of `g` and of its subgraphs.
fn walk_nodes<'a>(g: &'a GraphProto, f: &mut dyn FnMut(&'a NodeProto)) {
    for n in &g.node {
        f(n);
        for a in &n.attribute {
            if let Some(sub) = &a.g {
                walk_nodes(sub, f);
            }
            for sub in &a.graphs {
                walk_nodes(sub, f);
            }
        }
    }
}

/// Calls `f` on every tensor stored in `g` (initializers, attributes), subgraphs included.
fn walk_tensors<'a>(g: &'a GraphProto, f: &mut dyn FnMut(&'a TensorProto)) {
    g.initializer.iter().for_each(&mut *f);
    for n in &g.node {
        for a in &n.attribute {
            if let Some(t) = &a.t {
                f(t);
            }
            a.tensors.iter().for_each(&mut *f);
            if let Some(sub) = &a.g {
                walk_tensors(sub, f);
            }
            for sub in &a.graphs {
                walk_tensors(sub, f);
            }
        }
    }
}

fn dtype_of(elem_type: i32) -> Result<DType, String> {
    let dt = DataType::try_from(elem_type).map_err(|_| format!("element type {elem_type}"))?;
    Ok(match dt {
        DataType::Float => DType::Float32,
        DataType::Double => DType::Float64,
        DataType::Int64 => DType::Int64,
        DataType::Int32 => DType::Int32,
        DataType::Int8 => DType::Int8,
        DataType::Uint8 => DType::Uint8,
        DataType::Bool => DType::Bool,
        other => return Err(format!("element type {}", other.as_str_name())),
    })
}

fn spec_of(v: &ValueInfoProto, what: &str) -> Result<TensorSpec, EngineError> {
    let bad = |why: String| EngineError::InvalidModel(format!("{what} `{}`: {why}", v.name));
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(bad(
            "is not a tensor (sequences and maps are not supported)".into(),
        ));
    };
    let dtype = dtype_of(t.elem_type).map_err(|e| bad(format!("{e} is not supported")))?;
    let shape = match &t.shape {
        Some(s) => s
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(DimValue::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as u64),
                Some(DimValue::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
                _ => Dim::Symbolic("?".into()),
            })
            .collect(),
        None => return Err(bad("has no declared shape".into())),
    };
    Ok(TensorSpec {
        name: v.name.clone(),
        dtype,
        shape,
    })
}

/// Describes a decoded model (no tract involved).
pub(crate) fn describe(proto: &ModelProto) -> Result<ModelInfo, EngineError> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| EngineError::InvalidModel("no graph".into()))?;
    let initialized: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs = graph
        .input
        .iter()
        .filter(|i| !initialized.contains(i.name.as_str()))
        .map(|i| spec_of(i, "input"))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = graph
        .output
        .iter()
        .map(|o| spec_of(o, "output"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut names = HashSet::new();
    for s in inputs.iter().chain(&outputs) {
        if s.name.is_empty() {
            return Err(EngineError::InvalidModel(
                "a graph input or output has no name".into(),
            ));
        }
    }
    for s in &inputs {
        if !names.insert(s.name.as_str()) {
            return Err(EngineError::InvalidModel(format!(
                "input `{}` is declared twice",
                s.name
            )));
        }
    }
    let mut ops = BTreeSet::new();
    walk_nodes(graph, &mut |n| {
        ops.insert(op_name(n));
    });
    let opsets = proto
        .opset_import
        .iter()
        .map(|o| (domain_name(&o.domain).to_string(), o.version))
        .collect();
    Ok(ModelInfo {
        inputs,
        outputs,
        ops: ops.into_iter().collect(),
        ir_version: proto.ir_version,
        opsets,
        producer: format!("{} {}", proto.producer_name, proto.producer_version)
            .trim()
            .to_string(),
    })
}

/// Checks that every operator can be loaded and that no tensor refers to
/// external data.
pub(crate) fn check_supported(proto: &ModelProto, onnx: &Onnx) -> Result<(), EngineError> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| EngineError::InvalidModel("no graph".into()))?;
    let functions: HashSet<(&str, &str)> = proto
        .functions
        .iter()
        .map(|f| {
            (
                domain_name(f.domain.as_deref().unwrap_or_default()),
                f.name.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    let mut err = None;
    walk_nodes(graph, &mut |n| {
        if err.is_some() {
            return;
        }
        let domain = domain_name(&n.domain);
        let is_ml = ML_OPS.contains(&n.op_type.as_str());
        let reason = if functions.contains(&(domain, n.op_type.as_str())) {
            Some("model-local functions are not supported")
        } else if !matches!(domain, "ai.onnx" | "ai.onnx.ml") {
            Some("operator domain not supported")
        } else if (domain == "ai.onnx.ml") != is_ml {
            Some("no such operator in this domain")
        } else if !onnx.op_register.0.contains_key(&n.op_type) {
            Some("not implemented by this engine")
        } else {
            None
        };
        if let Some(reason) = reason {
            err = Some(EngineError::UnsupportedOp {
                op: op_name(n),
                reason: reason.to_string(),
            });
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    let mut external = None;
    walk_tensors(graph, &mut |t| {
        if t.data_location == Some(1) || !t.external_data.is_empty() {
            external.get_or_insert_with(|| t.name.clone());
        }
    });
    if let Some(name) = external {
        return Err(EngineError::InvalidModel(format!(
            "tensor `{name}` refers to external data, which is not supported"
        )));
    }
    Ok(())
}

/// Refuses every external-data read (defence in depth: `check_supported`
/// already rejects such models).
struct NoExternalData;

impl tract_onnx::data_resolver::ModelDataResolver for NoExternalData {
    fn read_bytes_from_path(
        &self,
        _buf: &mut Vec<u8>,
        p: &std::path::Path,
        _offset: usize,
        _length: Option<usize>,
    ) -> TractResult<()> {
        bail!("external data ({p:?}) is not supported")
    }
}

/// tract's ONNX loader with this crate's operators registered.
pub(crate) fn framework() -> Onnx {
    let mut onnx = tract_onnx::onnx();
    crate::ml::register(&mut onnx.op_register);
    onnx.provider = std::sync::Arc::new(NoExternalData);
    onnx
}

/// Loads a decoded model into tract (no shapes fixed yet).
pub(crate) fn load(proto: &ModelProto, onnx: &Onnx) -> Result<InferenceModel, EngineError> {
    let res = catch_unwind(AssertUnwindSafe(|| onnx.model_for_proto_model(proto)));
    match res {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(load_error(proto, &e)),
        Err(p) => Err(EngineError::InvalidModel(format!(
            "loader panicked: {}",
            panic_message(&*p)
        ))),
    }
}

/// Maps a tract loading error: a failure to build a node names its operator.
fn load_error(proto: &ModelProto, e: &TractError) -> EngineError {
    for c in e.chain() {
        let s = c.to_string();
        if let Some(rest) = s.strip_prefix("Building node ") {
            let op_type = rest
                .rsplit_once('(')
                .map(|(_, t)| t.trim_end_matches(')'))
                .unwrap_or("");
            let mut op = format!("ai.onnx:{op_type}");
            if let Some(g) = &proto.graph {
                walk_nodes(g, &mut |n| {
                    if n.op_type == op_type {
                        op = op_name(n);
                    }
                });
            }
            return EngineError::UnsupportedOp {
                op,
                reason: chain(e),
            };
        }
    }
    EngineError::InvalidModel(chain(e))
}
