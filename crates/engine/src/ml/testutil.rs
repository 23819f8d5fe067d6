//! Helpers for the operator unit tests: attributes, nodes, one-node models.

use prost::Message;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use tract_onnx::prelude::*;

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ty as i32,
        ..Default::default()
    }
}

pub(crate) fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

pub(crate) fn floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: v.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

pub(crate) fn strings(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name, AttributeType::Strings)
    }
}

pub(crate) fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: v,
        ..attr(name, AttributeType::Int)
    }
}

pub(crate) fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: v,
        ..attr(name, AttributeType::Float)
    }
}

pub(crate) fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: v.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}

/// An `ai.onnx.ml` node reading `X` (and `X1`, ... for more inputs) and
/// writing `Y` (and `Z` for a second output).
pub(crate) fn node(op: &str, n_in: usize, n_out: usize, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        domain: "ai.onnx.ml".into(),
        name: format!("{op}_0"),
        input: (0..n_in)
            .map(|i| if i == 0 { "X".into() } else { format!("X{i}") })
            .collect(),
        output: ["Y", "Z"][..n_out].iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// Runs an operator's parser with a minimal parsing context.
pub(crate) fn parse<K>(
    f: impl Fn(&ParsingContext, &NodeProto) -> TractResult<K>,
    node: &NodeProto,
) -> TractResult<K> {
    let onnx = tract_onnx::onnx();
    let model = ModelProto::default();
    let ctx = ParsingContext {
        onnx_operator_set_version: 17,
        framework: &onnx,
        model: &model,
        parent_graphs: vec![],
        model_dir: None,
        template: InferenceModel::default(),
    };
    f(&ctx, node)
}

pub(crate) fn value<T: Datum + Copy>(shape: &[usize], data: &[T]) -> TValue {
    Tensor::from_shape(shape, data).unwrap().into_tvalue()
}

pub(crate) fn strings_value(data: &[&str]) -> TValue {
    let v: Vec<String> = data.iter().map(|s| s.to_string()).collect();
    tract_ndarray::Array1::from_vec(v)
        .into_tensor()
        .into_tvalue()
}

pub(crate) fn read<T: Datum + Clone>(v: &TValue) -> Vec<T> {
    v.try_as_plain_ram()
        .unwrap()
        .as_slice::<T>()
        .unwrap()
        .to_vec()
}

/// A graph value: name, ONNX element type, dims (`-1` for a symbolic `N`).
pub(crate) fn io(name: &str, elem_type: i32, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(if *d < 0 {
                dimension::Value::DimParam("N".into())
            } else {
                dimension::Value::DimValue(*d)
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// ONNX element type codes.
pub(crate) const FLOAT: i32 = 1;
pub(crate) const INT64: i32 = 7;

/// The bytes of a model made of one node.
pub(crate) fn model_bytes(
    node: NodeProto,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
) -> Vec<u8> {
    let opset = |domain: &str, version| OperatorSetIdProto {
        domain: domain.into(),
        version,
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![opset("", 17), opset("ai.onnx.ml", 3)],
        producer_name: "verity-engine tests".into(),
        graph: Some(GraphProto {
            name: "g".into(),
            node: vec![node],
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}
