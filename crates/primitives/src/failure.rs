//! Signed failure results: an assigned executor's statement that it could
//! not run a request, with the engine's own error, so that the request
//! fails (and its escrow is refunded) at once instead of at its deadline.
//!
//! The executor signs [`failure_digest`] (request id ‖ keccak of the
//! error), in the style of [`crate::tx::result_digest`] but in its own
//! domain, so a failure signature can never pass as a result signature.
//! The error is bounded ([`MAX_FAILURE_ERROR_BYTES`]) and printable
//! ([`InferenceFailure::validate`]); [`sanitize_error`] makes any engine
//! message fit.

use crate::{
    codec::keccak,
    keys::{domain_digest, PrivateKey, Signature},
    B256,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The longest error a failure result may carry, in bytes of UTF-8.
pub const MAX_FAILURE_ERROR_BYTES: usize = 1024;

/// Why a failure result is malformed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FailureError {
    #[error("the error message is empty")]
    Empty,
    #[error("the error message is {len} bytes, the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("the error message has a control character at byte {at}")]
    ControlCharacter { at: usize },
}

/// The digest an executor signs to report a failure: (request id, keccak
/// of the error's UTF-8 bytes), in the `failure` domain.
pub fn failure_digest(request_id: &B256, error: &str) -> B256 {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(request_id.as_slice());
    b.extend_from_slice(keccak(error.as_bytes()).as_slice());
    domain_digest("failure", &b)
}

/// Makes `error` a valid failure message: control characters (newlines
/// included) become spaces, surrounding whitespace goes, and the text is
/// cut at a character boundary to [`MAX_FAILURE_ERROR_BYTES`] (ending in
/// `…` when cut). An empty message becomes `unknown error`.
pub fn sanitize_error(error: &str) -> String {
    let clean: String = error
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        return "unknown error".into();
    }
    if clean.len() <= MAX_FAILURE_ERROR_BYTES {
        return clean.to_string();
    }
    let ellipsis = '…';
    let mut end = MAX_FAILURE_ERROR_BYTES - ellipsis.len_utf8();
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &clean[..end])
}

/// An assigned executor's signed report that it could not run a request.
/// The executor is the transaction's sender; `signature` is its signature
/// over [`failure_digest`].
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct InferenceFailure {
    pub request_id: B256,
    /// The engine's error, as the executor saw it.
    pub error: String,
    pub signature: Signature,
}

impl InferenceFailure {
    /// A failure report for `request_id`, signed by `key`, with `error`
    /// made valid by [`sanitize_error`].
    pub fn signed(key: &PrivateKey, request_id: B256, error: &str) -> Self {
        let error = sanitize_error(error);
        let signature = key.sign(&failure_digest(&request_id, &error));
        Self {
            request_id,
            error,
            signature,
        }
    }

    /// The message is non-empty, at most [`MAX_FAILURE_ERROR_BYTES`] long,
    /// and free of control characters.
    pub fn validate(&self) -> Result<(), FailureError> {
        if self.error.is_empty() {
            return Err(FailureError::Empty);
        }
        if self.error.len() > MAX_FAILURE_ERROR_BYTES {
            return Err(FailureError::TooLong {
                len: self.error.len(),
                max: MAX_FAILURE_ERROR_BYTES,
            });
        }
        if let Some((at, _)) = self.error.char_indices().find(|(_, c)| c.is_control()) {
            return Err(FailureError::ControlCharacter { at });
        }
        Ok(())
    }

    /// The address whose key made `signature` over [`failure_digest`].
    pub fn signer(&self) -> Result<crate::Address, crate::Error> {
        self.signature
            .recover(&failure_digest(&self.request_id, &self.error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::result_digest;

    #[test]
    fn sanitize_bounds_and_cleans() {
        assert_eq!(sanitize_error("  a\nb\tc\u{1b}[31m  "), "a b c [31m");
        assert_eq!(sanitize_error("\n"), "unknown error");
        let long = "é".repeat(MAX_FAILURE_ERROR_BYTES);
        let s = sanitize_error(&long);
        assert!(s.len() <= MAX_FAILURE_ERROR_BYTES, "{}", s.len());
        assert!(s.ends_with('…'));
    }

    #[test]
    fn validate_refuses_empty_long_and_control() {
        let key = PrivateKey::from_dev_seed("exec");
        let ok = InferenceFailure::signed(&key, B256::ZERO, "boom");
        ok.validate().unwrap();
        assert_eq!(ok.signer().unwrap(), key.address());
        let mut bad = ok.clone();
        bad.error = String::new();
        assert_eq!(bad.validate(), Err(FailureError::Empty));
        bad.error = "x".repeat(MAX_FAILURE_ERROR_BYTES + 1);
        assert!(matches!(bad.validate(), Err(FailureError::TooLong { .. })));
        bad.error = "a\nb".into();
        assert_eq!(
            bad.validate(),
            Err(FailureError::ControlCharacter { at: 1 })
        );
        // Another message no longer matches the signature.
        bad.error = "other".into();
        assert_ne!(bad.signer().unwrap(), key.address());
    }

    #[test]
    fn failure_and_result_digests_are_separated() {
        let id = B256::repeat_byte(1);
        let h = keccak(b"boom");
        assert_ne!(failure_digest(&id, "boom"), result_digest(&id, &h));
        // Pins the failure digest (domain "failure", version 1).
        assert_eq!(
            format!("{:#x}", failure_digest(&id, "boom")),
            "0xf83adea1bece64ebc5ea8771cac1a48f7c8fe01cae05cd85f9584531514b1c7e"
        );
    }
}
