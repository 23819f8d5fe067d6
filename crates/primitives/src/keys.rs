//! secp256k1 account keys and recoverable signatures over keccak-256
//! digests, so that Ethereum keys and tools work. A private key never prints:
//! its `Debug` is redacted and it has no `Display`.

use crate::{codec::keccak, Address, Error, B256};
use borsh::{BorshDeserialize, BorshSerialize};
use k256::ecdsa::{RecoveryId, Signature as EcdsaSig, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// An account's private key.
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(<redacted>, address {})", self.address())
    }
}

impl PrivateKey {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// A key derived from a seed, for development accounts only.
    pub fn from_dev_seed(seed: &str) -> Self {
        let mut h = keccak(seed.as_bytes());
        loop {
            if let Ok(k) = SigningKey::from_slice(h.as_slice()) {
                return Self(k);
            }
            h = keccak(h.as_slice());
        }
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        SigningKey::from_slice(b)
            .map(Self)
            .map_err(|_| Error::Key("not a valid secp256k1 scalar".into()))
    }

    /// Parses 0x-hex (or bare hex) of 32 bytes.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let body = s.strip_prefix("0x").unwrap_or(s);
        let b = hex::decode(body).map_err(|_| Error::Key("not hex".into()))?;
        if b.len() != 32 {
            return Err(Error::Key(format!("expected 32 bytes, got {}", b.len())));
        }
        Self::from_bytes(&b)
    }

    /// 0x-hex of the secret. Only for writing key files.
    pub fn to_secret_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0.to_bytes()))
    }

    pub fn address(&self) -> Address {
        address_of(self.0.verifying_key())
    }

    /// Signs a 32-byte digest.
    pub fn sign(&self, digest: &B256) -> Signature {
        let (sig, rid) = self
            .0
            .sign_prehash_recoverable(digest.as_slice())
            .expect("signing a 32-byte prehash cannot fail");
        // Always emit low-s signatures (k256 normalizes already).
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = rid.to_byte();
        Signature(out)
    }
}

fn address_of(vk: &VerifyingKey) -> Address {
    let point = vk.to_encoded_point(false);
    let h = keccak(&point.as_bytes()[1..]);
    Address::from_slice(&h[12..])
}

/// A recoverable secp256k1 signature: r (32) ‖ s (32) ‖ v (1, 0 or 1).
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 65]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature(0x{})", hex::encode(self.0))
    }
}

impl Signature {
    /// Recovers the signer's address; rejects malformed and high-s signatures.
    pub fn recover(&self, digest: &B256) -> Result<Address, Error> {
        let sig = EcdsaSig::from_slice(&self.0[..64])
            .map_err(|_| Error::Signature("malformed r/s".into()))?;
        if sig.normalize_s().is_some() {
            return Err(Error::Signature("high-s signature (malleable)".into()));
        }
        let v = self.0[64];
        let v = if v >= 27 { v - 27 } else { v };
        let rid = RecoveryId::from_byte(v)
            .filter(|r| !r.is_x_reduced())
            .ok_or_else(|| Error::Signature(format!("bad recovery id {}", self.0[64])))?;
        let vk = VerifyingKey::recover_from_prehash(digest.as_slice(), &sig, rid)
            .map_err(|_| Error::Signature("does not recover to a public key".into()))?;
        Ok(address_of(&vk))
    }

    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }

    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let body = s.strip_prefix("0x").unwrap_or(s);
        let b = hex::decode(body).map_err(|_| Error::Signature("not hex".into()))?;
        let arr: [u8; 65] = b
            .try_into()
            .map_err(|_| Error::Signature("expected 65 bytes".into()))?;
        Ok(Self(arr))
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_hex(&<String as Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Domain-separated digest: keccak256("verity:v1:" ‖ domain ‖ ":" ‖ bytes).
pub fn domain_digest(domain: &str, bytes: &[u8]) -> B256 {
    let mut m = Vec::with_capacity(bytes.len() + domain.len() + 11);
    m.extend_from_slice(b"verity:v1:");
    m.extend_from_slice(domain.as_bytes());
    m.push(b':');
    m.extend_from_slice(bytes);
    keccak(&m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_recover_and_vector() {
        let k = PrivateKey::from_hex(
            "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        )
        .unwrap();
        // Known Ethereum vector for this key.
        assert_eq!(
            format!("{:?}", k.address()).to_lowercase(),
            "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"
        );
        let d = domain_digest("test", b"hello");
        let s = k.sign(&d);
        assert_eq!(s.recover(&d).unwrap(), k.address());
        let other = domain_digest("test", b"hellp");
        assert_ne!(s.recover(&other).ok(), Some(k.address()));
        assert!(!format!("{k:?}").contains("4c0883"));
    }

    #[test]
    fn tampered_signature_fails() {
        let k = PrivateKey::random();
        let d = domain_digest("x", b"y");
        let mut s = k.sign(&d);
        s.0[10] ^= 1;
        assert_ne!(s.recover(&d).ok(), Some(k.address()));
        s.0[64] = 9;
        assert!(s.recover(&d).is_err());
    }
}
