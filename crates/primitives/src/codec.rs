//! Canonical encoding: a version byte followed by the Borsh encoding of the
//! value. Borsh is deterministic (fixed-width little-endian integers, length
//! prefixed sequences, sorted maps), so equal values always encode to equal
//! bytes, which is what hashing and signing need.

use crate::Error;
use borsh::{BorshDeserialize, BorshSerialize};

/// The encoding version written in front of every versioned structure.
pub const VERSION: u8 = 1;

/// A structure with a canonical, versioned byte encoding.
pub trait Canonical: BorshSerialize + BorshDeserialize {
    /// Name used in error messages.
    const WHAT: &'static str;

    /// Version byte + Borsh bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        // Writing into a Vec cannot fail.
        BorshSerialize::serialize(self, &mut out).expect("vec write");
        out
    }

    /// Decodes bytes written by [`Canonical::encode`]; rejects trailing bytes.
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (&version, rest) = bytes.split_first().ok_or(Error::Decode {
            what: Self::WHAT,
            reason: "empty input".into(),
        })?;
        if version != VERSION {
            return Err(Error::Version {
                what: Self::WHAT,
                found: version,
                expected: VERSION,
            });
        }
        borsh::from_slice(rest).map_err(|e| Error::Decode {
            what: Self::WHAT,
            reason: e.to_string(),
        })
    }
}

/// keccak-256.
pub fn keccak(bytes: &[u8]) -> crate::B256 {
    alloy_primitives::keccak256(bytes)
}

/// sha2-256.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Serde for [`crate::Amount`]: a decimal string in JSON (u128 does not fit
/// JSON numbers safely, nor serde's buffered enums); numbers are accepted too.
pub mod amount_serde {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(a: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(a)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Str(String),
            Num(u64),
        }
        match Repr::deserialize(d)? {
            Repr::Str(s) => s.parse().map_err(|_| {
                D::Error::custom(format!("`{s}` is not a non-negative integer amount"))
            }),
            Repr::Num(n) => Ok(n as u128),
        }
    }
}
