//! Streaming JSON deserialization of [`Tensors`] with an element budget.
//!
//! A request body is attacker-controlled: building a `serde_json::Value` tree
//! of it first would cost tens of bytes per element before any limit is
//! checked. This reader counts elements while it parses and stops at
//! [`MAX_JSON_ELEMENTS`]; data elements must be scalars (a number, one of
//! the strings `NaN`/`Infinity`/`-Infinity`, or `{"value", "decimals"}`),
//! so no nested array can hide more elements. The typed checks are the same
//! as [`Tensor::from_json`]'s.

use crate::tensor::{Tensor, Tensors};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::{collections::BTreeMap, fmt};

/// Most data elements, over all tensors, that one JSON tensor set may hold.
pub const MAX_JSON_ELEMENTS: usize = 1 << 21;
/// Most tensors in one set, and most dimensions of one shape.
pub const MAX_JSON_TENSORS: usize = 256;
const MAX_JSON_DIMS: usize = 32;

/// Parses `{"name": {"shape", "dtype", "data"}, ...}` from a deserializer.
pub(crate) fn deserialize_tensors<'de, D: Deserializer<'de>>(d: D) -> Result<Tensors, D::Error> {
    d.deserialize_map(TensorsVisitor)
}

struct TensorsVisitor;

impl<'de> Visitor<'de> for TensorsVisitor {
    type Value = Tensors;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object mapping tensor names to tensors")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tensors, A::Error> {
        let mut budget = MAX_JSON_ELEMENTS;
        let mut out = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            if out.len() >= MAX_JSON_TENSORS {
                return Err(de::Error::custom(format!(
                    "more than {MAX_JSON_TENSORS} tensors"
                )));
            }
            let raw = map.next_value_seed(TensorSeed {
                budget: &mut budget,
            })?;
            let tensor =
                Tensor::from_json(&name, &Value::Object(raw)).map_err(de::Error::custom)?;
            if out.insert(name.clone(), tensor).is_some() {
                return Err(de::Error::custom(format!("tensor `{name}` appears twice")));
            }
        }
        Ok(Tensors(out))
    }
}

/// One tensor's object, with scalar-only, budgeted `data` and `shape`.
struct TensorSeed<'b> {
    budget: &'b mut usize,
}

impl<'de> DeserializeSeed<'de> for TensorSeed<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TensorSeed<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `shape`, `dtype` and `data`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match key.as_str() {
                "data" => Value::Array(map.next_value_seed(ScalarsSeed {
                    budget: &mut *self.budget,
                    what: "data",
                })?),
                "shape" => {
                    let mut dims = MAX_JSON_DIMS;
                    Value::Array(map.next_value_seed(ScalarsSeed {
                        budget: &mut dims,
                        what: "shape",
                    })?)
                }
                "dtype" => Value::String(map.next_value::<String>()?),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown field `{other}` (expected shape, dtype, data)"
                    )))
                }
            };
            if out.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("field `{key}` appears twice")));
            }
        }
        Ok(out)
    }
}

/// An array of scalars, each taken from `budget`.
struct ScalarsSeed<'b> {
    budget: &'b mut usize,
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for ScalarsSeed<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ScalarsSeed<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of numbers for `{}`", self.what)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(Scalar)? {
            if *self.budget == 0 {
                return Err(de::Error::custom(format!(
                    "too many `{}` elements (the limit is {})",
                    self.what,
                    if self.what == "data" {
                        MAX_JSON_ELEMENTS
                    } else {
                        MAX_JSON_DIMS
                    }
                )));
            }
            *self.budget -= 1;
            out.push(v);
        }
        Ok(out)
    }
}

/// A number, a string, or a flat object of numbers (`{"value", "decimals"}`).
struct Scalar;

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        if v.len() > 16 {
            return Err(E::custom("a string element longer than 16 bytes"));
        }
        Ok(Value::from(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.len() >= 2 {
                return Err(de::Error::custom(
                    "a number object has only `value` and `decimals`",
                ));
            }
            let v: Value = map.next_value_seed(Number)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// A plain JSON number.
struct Number;

impl<'de> DeserializeSeed<'de> for Number {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Number {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Tensors, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn same_result_as_the_tree_parser() {
        let s = r#"{"X": {"dtype": "float32", "data": [5.1, "NaN", {"value": 15, "decimals": 1}, 0.2], "shape": [1, 4]},
                    "L": {"shape": [2], "dtype": "int64", "data": [-3, 9007199254740993]}}"#;
        let streamed = parse(s).unwrap();
        let tree = Tensors::from_json_str(s).unwrap();
        assert_eq!(streamed.hash(), tree.hash());
    }

    #[test]
    fn limits_hold_while_parsing() {
        let big = format!(
            r#"{{"X": {{"shape": [1], "dtype": "float32", "data": [{}0]}}}}"#,
            "0,".repeat(MAX_JSON_ELEMENTS)
        );
        let e = parse(&big).unwrap_err().to_string();
        assert!(e.contains("too many `data` elements"), "{e}");
        // No element can be a nested array.
        let nested = r#"{"X": {"shape": [1], "dtype": "float32", "data": [[0, 0, 0]]}}"#;
        assert!(parse(nested).is_err());
        let deep =
            r#"{"X": {"shape": [1], "dtype": "float32", "data": [{"value": [1], "decimals": 0}]}}"#;
        assert!(parse(deep).is_err());
        let long_shape = format!(
            r#"{{"X": {{"shape": [{}1], "dtype": "float32", "data": [0]}}}}"#,
            "1,".repeat(40)
        );
        assert!(parse(&long_shape).is_err());
        let dup = r#"{"X": {"shape": [1], "dtype": "float32", "data": [0], "data": [1]}}"#;
        assert!(parse(dup).unwrap_err().to_string().contains("twice"));
        let unknown = r#"{"X": {"shape": [1], "dtype": "float32", "data": [0], "extra": 1}}"#;
        assert!(parse(unknown)
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
    }
}
