//! Model manifests: what the Model Hub and the ledger know about a model.

use crate::{Address, Amount, DType, ModelId};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

impl BorshSerialize for DType {
    fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&(*self as u8), w)
    }
}

impl BorshDeserialize for DType {
    fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
        let c = u8::deserialize_reader(r)?;
        DType::ALL.get(c as usize).copied().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("dtype code {c}"))
        })
    }
}

impl Serialize for DType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for DType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        DType::from_name(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown dtype `{s}`")))
    }
}

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(u64),
    /// A symbolic (batch-like) dimension; any size is accepted.
    Symbolic(String),
}

/// Declared name, element type and shape of a model input or output.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<Dim>,
}

impl TensorSpec {
    /// Whether `shape` fits this spec (symbolic dims match any size).
    pub fn accepts_shape(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len()
            && self.shape.iter().zip(shape).all(|(d, s)| match d {
                Dim::Fixed(n) => *n == *s as u64,
                Dim::Symbolic(_) => true,
            })
    }

    /// Human form, e.g. `X: float32[N, 64]`.
    pub fn describe(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => n.to_string(),
                Dim::Symbolic(s) => s.clone(),
            })
            .collect();
        format!("{}: {}[{}]", self.name, self.dtype, dims.join(", "))
    }
}

/// What the Hub stores and the ledger records about a published model.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ModelManifest {
    pub model_id: ModelId,
    pub name: String,
    pub version: String,
    pub description: String,
    /// Size of the ONNX file in bytes.
    pub size: u64,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// ONNX operators used, as `domain:OpType` (sorted, unique).
    pub ops: Vec<String>,
    pub publisher: Address,
    /// Fee paid to the executor per inference.
    #[serde(with = "crate::codec::amount_serde")]
    pub price: Amount,
}

impl ModelManifest {
    /// Longest allowed name, version, and description.
    pub const MAX_NAME: usize = 64;
    pub const MAX_VERSION: usize = 32;
    pub const MAX_DESCRIPTION: usize = 1024;

    /// Checks the fields a publisher controls.
    pub fn validate_fields(&self) -> Result<(), String> {
        let ok_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !ok_name(&self.name) || self.name.len() > Self::MAX_NAME {
            return Err(format!(
                "model name `{}` must be 1-{} characters of [A-Za-z0-9._-]",
                self.name,
                Self::MAX_NAME
            ));
        }
        if ModelId::looks_like_cid(&self.name) {
            return Err("model name must not look like a model id".into());
        }
        if !ok_name(&self.version) || self.version.len() > Self::MAX_VERSION {
            return Err(format!(
                "model version `{}` must be 1-{} characters of [A-Za-z0-9._-]",
                self.version,
                Self::MAX_VERSION
            ));
        }
        if self.description.len() > Self::MAX_DESCRIPTION {
            return Err(format!(
                "description is {} bytes, the limit is {}",
                self.description.len(),
                Self::MAX_DESCRIPTION
            ));
        }
        if self.inputs.is_empty() || self.outputs.is_empty() {
            return Err("a model needs at least one input and one output".into());
        }
        Ok(())
    }
}

impl crate::codec::Canonical for ModelManifest {
    const WHAT: &'static str = "model manifest";
}
