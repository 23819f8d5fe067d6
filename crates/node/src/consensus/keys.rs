//! Validator key material and the network identity.
//!
//! Each validator holds an ed25519 key (its p2p and consensus identity) and a
//! share of the threshold BLS12-381 key. The network identity is the public
//! polynomial of that sharing plus the ordered validator set; its constant
//! term is the group public key ("identity") that checks every certificate.
//!
//! [`dev_genesis`] deals all of this deterministically from a development
//! seed. It is for devnets and tests only: whoever knows the seed knows every
//! key. A production network uses commonware's DKG instead.
//!
//! Both types serialize to versioned JSON with hex fields so the CLI can
//! write one file per node and start each node from its file.

use super::{ConsensusError, Identity, PublicKey, Scheme};
use commonware_codec::{Decode, DecodeExt, Encode};
use commonware_cryptography::{
    bls12381::{
        dkg,
        primitives::{
            group::Share,
            sharing::{Mode, ModeVersion, Sharing},
            variant::MinSig,
        },
    },
    ed25519, Signer,
};
use commonware_math::algebra::Random;
use commonware_utils::{ordered::Set, N3f1};
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

/// Version byte of the key file formats.
const KEY_FILE_VERSION: u8 = 1;

/// Largest validator set accepted when decoding a network identity.
pub const MAX_VALIDATORS: u32 = 1024;

/// One validator's secret key material.
#[derive(Clone)]
pub struct ValidatorKeys {
    /// ed25519 identity key (p2p authentication and participant identity).
    pub signer: ed25519::PrivateKey,
    /// This validator's share of the threshold BLS key.
    pub share: Share,
}

impl std::fmt::Debug for ValidatorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorKeys")
            .field("public_key", &self.public_key())
            .field("share_index", &self.share.index)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct ValidatorKeysFile {
    version: u8,
    ed25519_private_key: String,
    bls_share: String,
}

impl ValidatorKeys {
    pub fn public_key(&self) -> PublicKey {
        self.signer.public_key()
    }

    /// Versioned JSON, secret material hex encoded. Treat as a secret.
    pub fn to_json(&self) -> String {
        let file = ValidatorKeysFile {
            version: KEY_FILE_VERSION,
            ed25519_private_key: hex::encode(self.signer.encode()),
            bls_share: hex::encode(self.share.encode()),
        };
        serde_json::to_string_pretty(&file).expect("plain struct serializes")
    }

    pub fn from_json(json: &str) -> Result<Self, ConsensusError> {
        let file: ValidatorKeysFile =
            serde_json::from_str(json).map_err(|e| ConsensusError::Keys(e.to_string()))?;
        if file.version != KEY_FILE_VERSION {
            return Err(ConsensusError::Keys(format!(
                "unsupported key file version {}",
                file.version
            )));
        }
        let signer = ed25519::PrivateKey::decode(hex_bytes(&file.ed25519_private_key)?.as_slice())
            .map_err(|e| ConsensusError::Keys(format!("ed25519 key: {e}")))?;
        let share = Share::decode(hex_bytes(&file.bls_share)?.as_slice())
            .map_err(|e| ConsensusError::Keys(format!("bls share: {e}")))?;
        Ok(Self { signer, share })
    }
}

/// The public description of the validator set.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkIdentity {
    /// Validators, in the canonical (sorted) order that share indices follow.
    participants: Set<PublicKey>,
    /// Public polynomial of the threshold key.
    polynomial: Sharing<MinSig>,
}

#[derive(Serialize, Deserialize)]
struct NetworkIdentityFile {
    version: u8,
    /// Hex group public key (informational; checked against the polynomial).
    identity: String,
    participants: Vec<String>,
    polynomial: String,
}

impl NetworkIdentity {
    /// Builds an identity, checking that the polynomial matches the set size.
    pub fn new(
        participants: Vec<PublicKey>,
        polynomial: Sharing<MinSig>,
    ) -> Result<Self, ConsensusError> {
        let n = participants.len();
        let participants = Set::from_iter_dedup(participants);
        if participants.len() != n || n == 0 {
            return Err(ConsensusError::Keys(
                "validator set is empty or has duplicates".into(),
            ));
        }
        if polynomial.total().get() as usize != n {
            return Err(ConsensusError::Keys(format!(
                "polynomial is for {} validators, set has {n}",
                polynomial.total()
            )));
        }
        Ok(Self {
            participants,
            polynomial,
        })
    }

    /// The validators in canonical order.
    pub fn participants(&self) -> &[PublicKey] {
        self.participants.as_ref()
    }

    pub fn participant_set(&self) -> &Set<PublicKey> {
        &self.participants
    }

    pub fn polynomial(&self) -> &Sharing<MinSig> {
        &self.polynomial
    }

    /// The group public key.
    pub fn identity(&self) -> Identity {
        *self.polynomial.public()
    }

    /// The group public key, encoded (96 bytes for MinSig).
    pub fn identity_bytes(&self) -> Vec<u8> {
        self.identity().encode().to_vec()
    }

    pub fn identity_hex(&self) -> String {
        hex::encode(self.identity_bytes())
    }

    /// A signing scheme for `keys`, or an error if the share does not belong
    /// to this network or the key is not a participant.
    pub fn signer_scheme(
        &self,
        namespace: &[u8],
        keys: &ValidatorKeys,
    ) -> Result<Scheme, ConsensusError> {
        let position = self
            .participants
            .position(&keys.public_key())
            .ok_or_else(|| ConsensusError::Keys("ed25519 key is not a validator".into()))?;
        if keys.share.index.get() as usize != position {
            return Err(ConsensusError::Keys(format!(
                "share index {} does not match validator position {position}",
                keys.share.index
            )));
        }
        Scheme::signer(
            namespace,
            self.participants.clone(),
            self.polynomial.clone(),
            keys.share.clone(),
        )
        .ok_or_else(|| ConsensusError::Keys("share does not match the public polynomial".into()))
    }

    pub fn to_json(&self) -> String {
        let file = NetworkIdentityFile {
            version: KEY_FILE_VERSION,
            identity: self.identity_hex(),
            participants: self
                .participants
                .iter()
                .map(|p| hex::encode(p.encode()))
                .collect(),
            polynomial: hex::encode(self.polynomial.encode()),
        };
        serde_json::to_string_pretty(&file).expect("plain struct serializes")
    }

    pub fn from_json(json: &str) -> Result<Self, ConsensusError> {
        let file: NetworkIdentityFile =
            serde_json::from_str(json).map_err(|e| ConsensusError::Keys(e.to_string()))?;
        if file.version != KEY_FILE_VERSION {
            return Err(ConsensusError::Keys(format!(
                "unsupported network file version {}",
                file.version
            )));
        }
        let participants = file
            .participants
            .iter()
            .map(|p| {
                PublicKey::decode(hex_bytes(p)?.as_slice())
                    .map_err(|e| ConsensusError::Keys(format!("validator key: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max = NonZeroU32::new(MAX_VALIDATORS).expect("non-zero constant");
        let polynomial = Sharing::<MinSig>::decode_cfg(
            hex_bytes(&file.polynomial)?.as_slice(),
            &(max, ModeVersion::v0()),
        )
        .map_err(|e| ConsensusError::Keys(format!("polynomial: {e}")))?;
        let network = Self::new(participants, polynomial)?;
        if network.identity_hex() != file.identity.trim_start_matches("0x").to_lowercase() {
            return Err(ConsensusError::Keys(
                "identity does not match the polynomial".into(),
            ));
        }
        Ok(network)
    }
}

fn hex_bytes(s: &str) -> Result<Vec<u8>, ConsensusError> {
    hex::decode(s.trim_start_matches("0x")).map_err(|e| ConsensusError::Keys(format!("hex: {e}")))
}

/// Deals `n` validators' keys and the network identity deterministically
/// from `seed`. DEVELOPMENT ONLY: the seed determines every secret.
///
/// The returned keys are in canonical validator order (index `i` holds
/// share `i`).
pub fn dev_genesis(n: usize, seed: u64) -> (Vec<ValidatorKeys>, NetworkIdentity) {
    assert!(
        n > 0 && n <= MAX_VALIDATORS as usize,
        "validator count out of range"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut signers: Vec<ed25519::PrivateKey> = (0..n)
        .map(|_| ed25519::PrivateKey::random(&mut rng))
        .collect();
    signers.sort_by_key(|s| s.public_key());
    let participants = Set::from_iter_dedup(signers.iter().map(|s| s.public_key()));
    assert_eq!(participants.len(), n, "ed25519 keys collide");
    let (output, shares) =
        dkg::deal::<MinSig, _, N3f1>(&mut rng, Mode::default(), participants.clone())
            .expect("dealing to a non-empty unique set succeeds");
    let network = NetworkIdentity::new(
        participants.iter().cloned().collect(),
        output.public().clone(),
    )
    .expect("dealt polynomial matches the set");
    let keys = signers
        .into_iter()
        .map(|signer| {
            let share = shares
                .get_value(&signer.public_key())
                .expect("every participant is dealt a share")
                .clone();
            ValidatorKeys { signer, share }
        })
        .collect();
    (keys, network)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_genesis_is_deterministic_and_consistent() {
        let (keys, net) = dev_genesis(4, 7);
        let (keys2, net2) = dev_genesis(4, 7);
        assert_eq!(net, net2);
        assert_eq!(net.identity_bytes().len(), 96);
        for (i, (k, k2)) in keys.iter().zip(&keys2).enumerate() {
            assert_eq!(k.public_key(), k2.public_key());
            assert_eq!(k.share, k2.share);
            assert_eq!(k.share.index.get() as usize, i);
            assert_eq!(net.participants()[i], k.public_key());
            net.signer_scheme(b"ns", k).unwrap();
        }
        let (_, other) = dev_genesis(4, 8);
        assert_ne!(net.identity_bytes(), other.identity_bytes());
        // A share from another network is refused.
        let (other_keys, _) = dev_genesis(4, 8);
        assert!(net.signer_scheme(b"ns", &other_keys[0]).is_err());
    }

    #[test]
    fn json_roundtrip() {
        let (keys, net) = dev_genesis(4, 1);
        let back = NetworkIdentity::from_json(&net.to_json()).unwrap();
        assert_eq!(back, net);
        let k = ValidatorKeys::from_json(&keys[2].to_json()).unwrap();
        assert_eq!(k.public_key(), keys[2].public_key());
        assert_eq!(k.share, keys[2].share);
        assert!(ValidatorKeys::from_json("{}").is_err());
        assert!(NetworkIdentity::from_json("{\"version\":1}").is_err());
    }
}
