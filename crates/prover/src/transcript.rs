//! Fiat–Shamir transcript over BLAKE3.
//!
//! The prover writes every message into the proof *and* absorbs it; the verifier reads the
//! same messages back from the proof and absorbs them in the same order, so both sides derive
//! the same challenges. A proof is therefore exactly the concatenation of the prover's
//! messages: there are no length fields (every length follows from the public statement),
//! every field element must be canonically encoded, and trailing bytes are rejected.
//!
//! State: a keyed BLAKE3 hasher. Each absorbed item is `tag || len (u64 LE) || bytes`.
//! A squeeze finalizes the hasher as an XOF: the first 32 output bytes become the key of the
//! next state, and the following bytes are the challenge material. Challenges in `F` are
//! rejection-sampled from 64-bit words (exactly uniform), extension challenges are pairs.

use crate::error::VerifyError;
use crate::field::{ef_from_bytes, ef_to_bytes, f_from_bytes, f_from_u64, f_to_bytes, EF, F, P};
use p3_field::BasedVectorSpace;

const DOMAIN: &str = "verity-prover v1 fiat-shamir transcript";

const TAG_PUBLIC: u8 = 1;
const TAG_F: u8 = 2;
const TAG_EF: u8 = 3;
const TAG_HASH: u8 = 4;
const TAG_FVEC: u8 = 5;
const TAG_EFVEC: u8 = 6;
const TAG_SQUEEZE: u8 = 0xff;

/// The hashing state (opaque).
#[derive(Clone, Debug)]
pub struct Sponge {
    hasher: blake3::Hasher,
}

impl Sponge {
    fn new(label: &[u8]) -> Self {
        let key = blake3::derive_key(DOMAIN, label);
        Self {
            hasher: blake3::Hasher::new_keyed(&key),
        }
    }

    fn absorb(&mut self, tag: u8, data: &[u8]) {
        self.hasher.update(&[tag]);
        self.hasher.update(&(data.len() as u64).to_le_bytes());
        self.hasher.update(data);
    }

    fn squeeze(&mut self) -> blake3::OutputReader {
        self.hasher.update(&[TAG_SQUEEZE]);
        let mut reader = self.hasher.finalize_xof();
        let mut next = [0u8; 32];
        reader.fill(&mut next);
        self.hasher = blake3::Hasher::new_keyed(&next);
        reader
    }
}

fn sample_f(reader: &mut blake3::OutputReader) -> F {
    loop {
        let mut w = [0u8; 8];
        reader.fill(&mut w);
        let v = u64::from_le_bytes(w);
        if v < P {
            return f_from_u64(v);
        }
    }
}

fn sample_ef(reader: &mut blake3::OutputReader) -> EF {
    let c0 = sample_f(reader);
    let c1 = sample_f(reader);
    EF::from_basis_coefficients_fn(|i| if i == 0 { c0 } else { c1 })
}

/// Challenges, common to both sides.
pub trait Challenger {
    #[doc(hidden)]
    fn sponge(&mut self) -> &mut Sponge;

    /// Absorb public data (part of the statement, not of the proof).
    fn absorb_public(&mut self, label: &[u8], data: &[u8]) {
        let s = self.sponge();
        s.absorb(TAG_PUBLIC, label);
        s.absorb(TAG_PUBLIC, data);
    }

    /// One uniformly random extension element.
    fn challenge_ef(&mut self) -> EF {
        let mut r = self.sponge().squeeze();
        sample_ef(&mut r)
    }

    /// `n` uniformly random extension elements (one squeeze).
    fn challenge_ef_vec(&mut self, n: usize) -> Vec<EF> {
        let mut r = self.sponge().squeeze();
        (0..n).map(|_| sample_ef(&mut r)).collect()
    }

    /// `count` uniform indices in `[0, 2^log_n)` (with replacement).
    fn challenge_indices(&mut self, count: usize, log_n: usize) -> Vec<usize> {
        let mut r = self.sponge().squeeze();
        let mask = if log_n >= 64 {
            u64::MAX
        } else {
            (1u64 << log_n) - 1
        };
        (0..count)
            .map(|_| {
                let mut w = [0u8; 8];
                r.fill(&mut w);
                (u64::from_le_bytes(w) & mask) as usize
            })
            .collect()
    }
}

/// The prover's side: messages are appended to the proof bytes.
#[derive(Clone)]
pub struct ProverTranscript {
    sponge: Sponge,
    proof: Vec<u8>,
}

impl std::fmt::Debug for ProverTranscript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProverTranscript({} bytes)", self.proof.len())
    }
}

impl Challenger for ProverTranscript {
    fn sponge(&mut self) -> &mut Sponge {
        &mut self.sponge
    }
}

impl ProverTranscript {
    /// A fresh transcript for the protocol named `label`.
    pub fn new(label: &[u8]) -> Self {
        Self {
            sponge: Sponge::new(label),
            proof: Vec::new(),
        }
    }

    /// Send one base element.
    pub fn send_f(&mut self, x: F) {
        let b = f_to_bytes(x);
        self.sponge.absorb(TAG_F, &b);
        self.proof.extend_from_slice(&b);
    }

    /// Send one extension element.
    pub fn send_ef(&mut self, x: EF) {
        let b = ef_to_bytes(x);
        self.sponge.absorb(TAG_EF, &b);
        self.proof.extend_from_slice(&b);
    }

    /// Send a 32-byte hash.
    pub fn send_hash(&mut self, h: &[u8; 32]) {
        self.sponge.absorb(TAG_HASH, h);
        self.proof.extend_from_slice(h);
    }

    /// Send base elements (the verifier knows how many).
    pub fn send_f_slice(&mut self, xs: &[F]) {
        let start = self.proof.len();
        for x in xs {
            self.proof.extend_from_slice(&f_to_bytes(*x));
        }
        self.sponge.absorb(TAG_FVEC, &self.proof[start..]);
    }

    /// Send extension elements (the verifier knows how many).
    pub fn send_ef_slice(&mut self, xs: &[EF]) {
        let start = self.proof.len();
        for x in xs {
            self.proof.extend_from_slice(&ef_to_bytes(*x));
        }
        self.sponge.absorb(TAG_EFVEC, &self.proof[start..]);
    }

    /// The proof bytes so far.
    pub fn proof_len(&self) -> usize {
        self.proof.len()
    }

    /// Finish: the proof bytes.
    pub fn finish(self) -> Vec<u8> {
        self.proof
    }
}

/// The verifier's side: messages are read from the proof bytes.
#[derive(Clone)]
pub struct VerifierTranscript<'a> {
    sponge: Sponge,
    proof: &'a [u8],
    pos: usize,
}

impl std::fmt::Debug for VerifierTranscript<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VerifierTranscript({}/{} bytes)",
            self.pos,
            self.proof.len()
        )
    }
}

impl Challenger for VerifierTranscript<'_> {
    fn sponge(&mut self) -> &mut Sponge {
        &mut self.sponge
    }
}

impl<'a> VerifierTranscript<'a> {
    /// A transcript reading `proof`, for the protocol named `label`.
    pub fn new(label: &[u8], proof: &'a [u8]) -> Self {
        Self {
            sponge: Sponge::new(label),
            proof,
            pos: 0,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], VerifyError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.proof.len())
            .ok_or(VerifyError::Malformed("proof is truncated"))?;
        let s = &self.proof[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn read_f_raw(bytes: &[u8]) -> Result<F, VerifyError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(bytes);
        f_from_bytes(b).ok_or(VerifyError::Malformed("non-canonical field element"))
    }

    fn read_ef_raw(bytes: &[u8]) -> Result<EF, VerifyError> {
        let mut b = [0u8; 16];
        b.copy_from_slice(bytes);
        ef_from_bytes(b).ok_or(VerifyError::Malformed("non-canonical field element"))
    }

    /// Receive one base element.
    pub fn recv_f(&mut self) -> Result<F, VerifyError> {
        let b = self.take(8)?;
        let x = Self::read_f_raw(b)?;
        self.sponge.absorb(TAG_F, b);
        Ok(x)
    }

    /// Receive one extension element.
    pub fn recv_ef(&mut self) -> Result<EF, VerifyError> {
        let b = self.take(16)?;
        let x = Self::read_ef_raw(b)?;
        self.sponge.absorb(TAG_EF, b);
        Ok(x)
    }

    /// Receive a 32-byte hash.
    pub fn recv_hash(&mut self) -> Result<[u8; 32], VerifyError> {
        let b = self.take(32)?;
        let mut h = [0u8; 32];
        h.copy_from_slice(b);
        self.sponge.absorb(TAG_HASH, b);
        Ok(h)
    }

    /// Receive `n` base elements.
    pub fn recv_f_vec(&mut self, n: usize) -> Result<Vec<F>, VerifyError> {
        let len = n
            .checked_mul(8)
            .ok_or(VerifyError::Malformed("length overflow"))?;
        let b = self.take(len)?;
        let v = b
            .chunks_exact(8)
            .map(Self::read_f_raw)
            .collect::<Result<Vec<_>, _>>()?;
        self.sponge.absorb(TAG_FVEC, b);
        Ok(v)
    }

    /// Receive `n` extension elements.
    pub fn recv_ef_vec(&mut self, n: usize) -> Result<Vec<EF>, VerifyError> {
        let len = n
            .checked_mul(16)
            .ok_or(VerifyError::Malformed("length overflow"))?;
        let b = self.take(len)?;
        let v = b
            .chunks_exact(16)
            .map(Self::read_ef_raw)
            .collect::<Result<Vec<_>, _>>()?;
        self.sponge.absorb(TAG_EFVEC, b);
        Ok(v)
    }

    /// Require that the whole proof has been read.
    pub fn finish(self) -> Result<(), VerifyError> {
        if self.pos == self.proof.len() {
            Ok(())
        } else {
            Err(VerifyError::Malformed("trailing bytes after the proof"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::f_from_i64;

    #[test]
    fn prover_and_verifier_agree() {
        let mut p = ProverTranscript::new(b"test");
        p.absorb_public(b"x", b"statement");
        p.send_f(f_from_i64(-3));
        let c1 = p.challenge_ef();
        p.send_ef(c1);
        p.send_hash(&[7u8; 32]);
        p.send_ef_slice(&[c1, c1]);
        p.send_f_slice(&[f_from_i64(1), f_from_i64(2)]);
        let c2 = p.challenge_ef_vec(3);
        let i1 = p.challenge_indices(5, 10);
        let proof = p.finish();

        let mut v = VerifierTranscript::new(b"test", &proof);
        v.absorb_public(b"x", b"statement");
        assert_eq!(v.recv_f().unwrap(), f_from_i64(-3));
        assert_eq!(v.challenge_ef(), c1);
        assert_eq!(v.recv_ef().unwrap(), c1);
        assert_eq!(v.recv_hash().unwrap(), [7u8; 32]);
        assert_eq!(v.recv_ef_vec(2).unwrap(), vec![c1, c1]);
        assert_eq!(v.recv_f_vec(2).unwrap().len(), 2);
        assert_eq!(v.challenge_ef_vec(3), c2);
        let i2 = v.challenge_indices(5, 10);
        assert_eq!(i1, i2);
        assert!(i2.iter().all(|i| *i < 1024));
        v.finish().unwrap();
    }

    #[test]
    fn different_statements_give_different_challenges() {
        let mut a = ProverTranscript::new(b"test");
        let mut b = ProverTranscript::new(b"test");
        a.absorb_public(b"x", b"1");
        b.absorb_public(b"x", b"2");
        assert_ne!(a.challenge_ef(), b.challenge_ef());
        let mut c = ProverTranscript::new(b"other");
        c.absorb_public(b"x", b"1");
        let mut a = ProverTranscript::new(b"test");
        a.absorb_public(b"x", b"1");
        assert_ne!(a.challenge_ef(), c.challenge_ef());
    }

    #[test]
    fn truncated_and_trailing_and_non_canonical_rejected() {
        let mut p = ProverTranscript::new(b"t");
        p.send_f(f_from_i64(5));
        let mut proof = p.finish();
        let mut v = VerifierTranscript::new(b"t", &proof[..7]);
        assert!(v.recv_f().is_err());
        proof.push(0);
        let mut v = VerifierTranscript::new(b"t", &proof);
        assert_eq!(v.recv_f().unwrap(), f_from_i64(5));
        assert!(v.finish().is_err());
        let bad = u64::MAX.to_le_bytes();
        let mut v = VerifierTranscript::new(b"t", &bad);
        assert!(v.recv_f().is_err());
    }
}
