//! Content ids. A [`ModelId`] is a CIDv1 (raw codec, sha2-256 multihash)
//! written in its canonical base32 text form (`b` + lowercase RFC 4648).

use crate::{codec::sha256, Error};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

const CID_V1: u8 = 0x01;
const RAW_CODEC: u8 = 0x55;
const SHA2_256: u8 = 0x12;
const DIGEST_LEN: u8 = 0x20;

/// The content id of a model file: CIDv1(raw, sha2-256(bytes)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct ModelId([u8; 32]);

impl ModelId {
    /// The id of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(sha256(bytes))
    }

    /// The id naming a known sha2-256 digest.
    pub fn of_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The sha2-256 digest this id names.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Binary CID: version, codec, multihash code, length, digest.
    pub fn to_cid_bytes(&self) -> Vec<u8> {
        let mut v = vec![CID_V1, RAW_CODEC, SHA2_256, DIGEST_LEN];
        v.extend_from_slice(&self.0);
        v
    }

    /// Whether `s` looks like a CID rather than a model name.
    pub fn looks_like_cid(s: &str) -> bool {
        s.len() == 59 && s.starts_with("bafkrei")
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b32 = data_encoding::BASE32_NOPAD.encode(&self.to_cid_bytes());
        write!(f, "b{}", b32.to_ascii_lowercase())
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({self})")
    }
}

impl FromStr for ModelId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why| Error::BadModelId(s.to_string(), why);
        let body = s
            .strip_prefix('b')
            .ok_or_else(|| bad("expected a base32 CIDv1 starting with `b`"))?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| bad("not valid base32"))?;
        if body.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("base32 must be lowercase"));
        }
        match bytes.as_slice() {
            [CID_V1, RAW_CODEC, SHA2_256, DIGEST_LEN, digest @ ..] if digest.len() == 32 => {
                Ok(Self(digest.try_into().expect("len checked")))
            }
            _ => Err(bad(
                "expected CIDv1 with raw codec and a sha2-256 multihash",
            )),
        }
    }
}

impl Serialize for ModelId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Writes a 32-byte hash as 0x-hex.
pub fn hex32(h: &crate::B256) -> String {
    format!("{h:#x}")
}

/// Parses a 0x-prefixed 64-hex-digit hash.
pub fn parse_hex32(s: &str) -> Result<crate::B256, Error> {
    let body = s.strip_prefix("0x").ok_or(Error::Decode {
        what: "id",
        reason: format!("`{s}` must start with 0x"),
    })?;
    if body.len() != 64 {
        return Err(Error::Decode {
            what: "id",
            reason: format!("`{s}` must be 0x followed by 64 hex digits"),
        });
    }
    let bytes = hex::decode(body).map_err(|e| Error::Decode {
        what: "id",
        reason: e.to_string(),
    })?;
    Ok(crate::B256::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_vector() {
        // Fixed vector: CIDv1 raw sha2-256 of "hello world" (matches `ipfs add --raw-leaves --cid-version 1`).
        let id = ModelId::of_bytes(b"hello world");
        assert_eq!(
            id.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
        assert_eq!(id.to_string().parse::<ModelId>().unwrap(), id);
        assert!(ModelId::looks_like_cid(&id.to_string()));
    }

    #[test]
    fn cid_rejects_garbage() {
        assert!("hello".parse::<ModelId>().is_err());
        assert!("bafkrei".parse::<ModelId>().is_err());
        let up = ModelId::of_bytes(b"x").to_string().to_uppercase();
        assert!(up.parse::<ModelId>().is_err());
    }
}
