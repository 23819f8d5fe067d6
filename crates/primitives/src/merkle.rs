//! Binary Merkle tree over the sorted key/value entries of the ledger state.
//!
//! leaf = keccak(0x00 ‖ len(key) as u32 LE ‖ key ‖ keccak(value)),
//! node = keccak(0x01 ‖ left ‖ right); an odd last node is carried up
//! unchanged; the empty tree's root is keccak(0x02).

use crate::{codec::keccak, B256};
use serde::{Deserialize, Serialize};

pub fn leaf_hash(key: &[u8], value: &[u8]) -> B256 {
    let mut b = Vec::with_capacity(key.len() + 37);
    b.push(0);
    b.extend_from_slice(&(key.len() as u32).to_le_bytes());
    b.extend_from_slice(key);
    b.extend_from_slice(keccak(value).as_slice());
    keccak(&b)
}

pub fn node_hash(l: &B256, r: &B256) -> B256 {
    let mut b = [0u8; 65];
    b[0] = 1;
    b[1..33].copy_from_slice(l.as_slice());
    b[33..].copy_from_slice(r.as_slice());
    keccak(&b)
}

pub fn empty_root() -> B256 {
    keccak(&[2])
}

/// One step of an inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub sibling: B256,
    /// Whether the sibling is the left child.
    pub left: bool,
}

/// Proof that `key → value` is in the tree with a given root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    #[serde(with = "hex_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
    pub steps: Vec<Step>,
}

impl MerkleProof {
    /// The root this proof leads to.
    pub fn root(&self) -> B256 {
        self.steps
            .iter()
            .fold(leaf_hash(&self.key, &self.value), |acc, s| {
                if s.left {
                    node_hash(&s.sibling, &acc)
                } else {
                    node_hash(&acc, &s.sibling)
                }
            })
    }
}

/// Root of leaves in order.
pub fn root(leaves: &[B256]) -> B256 {
    if leaves.is_empty() {
        return empty_root();
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

fn next_level(level: &[B256]) -> Vec<B256> {
    level
        .chunks(2)
        .map(|c| {
            if c.len() == 2 {
                node_hash(&c[0], &c[1])
            } else {
                c[0]
            }
        })
        .collect()
}

/// Steps proving leaf `index`.
pub fn prove(leaves: &[B256], mut index: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        let sib = index ^ 1;
        if sib < level.len() {
            steps.push(Step {
                sibling: level[sib],
                left: sib < index,
            });
        }
        level = next_level(&level);
        index /= 2;
    }
    steps
}

/// Serde helper: bytes as 0x-hex.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_leaf_proves(n in 1usize..40, pick in 0usize..40) {
            let kv: Vec<(Vec<u8>, Vec<u8>)> =
                (0..n).map(|i| (format!("k{i:03}").into_bytes(), vec![i as u8; 3])).collect();
            let leaves: Vec<B256> = kv.iter().map(|(k, v)| leaf_hash(k, v)).collect();
            let r = root(&leaves);
            let i = pick % n;
            let p = MerkleProof { key: kv[i].0.clone(), value: kv[i].1.clone(), steps: prove(&leaves, i) };
            prop_assert_eq!(p.root(), r);
            let mut bad = p.clone();
            bad.value.push(1);
            prop_assert_ne!(bad.root(), r);
        }
    }
}
