//! The consensus block: an application [`BlockHeader`] plus the body bytes.
//!
//! The block digest is `sha256(header canonical encoding)`, exactly
//! [`BlockHeader::digest`], so a finalization certificate (which signs the
//! digest) can be linked to a header by someone who holds only the header.
//! The body is bound through `header.body_hash = sha256(body)`, which is
//! enforced whenever a block is built or decoded.

use bytes::{Buf, BufMut, Bytes};
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, Write};
use commonware_consensus::{types::Height, Heightable};
use commonware_cryptography::{sha256, Committable, Digestible};
use verity_primitives::{
    codec::sha256 as sha256_bytes, codec::Canonical, BlockHeader, StateClaim, B256,
};

/// Default limit on the size of a block body accepted from the network.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Upper bound on an encoded header (it is fixed-size today, ~121 bytes).
const MAX_HEADER_BYTES: usize = 1024;

/// A block as consensus orders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    header: BlockHeader,
    body: Bytes,
    /// Cached `header.digest()`.
    digest: sha256::Digest,
}

/// The fixed genesis header: height 0, zero parent, timestamp 0, default
/// claim, empty body.
pub fn genesis_header() -> BlockHeader {
    BlockHeader {
        parent: B256::ZERO,
        height: 0,
        timestamp_ms: 0,
        claim: StateClaim::default(),
        body_hash: B256::from(sha256_bytes(&[])),
        seed: None,
    }
}

/// The consensus digest of a header (its 32 bytes as a commonware digest).
pub fn header_digest(header: &BlockHeader) -> sha256::Digest {
    sha256::Digest::from(header.digest().0)
}

impl Block {
    /// Builds a block, checking that `sha256(body) == header.body_hash`.
    pub fn new(header: BlockHeader, body: Bytes) -> Result<Self, super::ConsensusError> {
        if B256::from(sha256_bytes(&body)) != header.body_hash {
            return Err(super::ConsensusError::Block(
                "body hash does not match header.body_hash".into(),
            ));
        }
        let digest = header_digest(&header);
        Ok(Self {
            header,
            body,
            digest,
        })
    }

    /// The genesis block (see [`genesis_header`]).
    pub fn genesis() -> Self {
        Self::new(genesis_header(), Bytes::new()).expect("genesis body hash is consistent")
    }

    pub fn header(&self) -> &BlockHeader {
        &self.header
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The header digest as 32 bytes.
    pub fn digest_bytes(&self) -> [u8; 32] {
        self.digest.0
    }

    pub fn into_parts(self) -> (BlockHeader, Bytes) {
        (self.header, self.body)
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        Bytes::from(self.header.encode()).write(buf);
        self.body.write(buf);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        let header_len = self.header.encode().len();
        header_len.encode_size() + header_len + self.body.encode_size()
    }
}

impl Read for Block {
    /// Maximum accepted body size in bytes.
    type Cfg = usize;

    fn read_cfg(buf: &mut impl Buf, max_body: &usize) -> Result<Self, CodecError> {
        let header_bytes = Bytes::read_cfg(buf, &RangeCfg::new(0..=MAX_HEADER_BYTES))?;
        let header = BlockHeader::decode(&header_bytes)
            .map_err(|e| CodecError::Wrapped("verity block header", Box::new(e)))?;
        let body = Bytes::read_cfg(buf, &RangeCfg::new(0..=*max_body))?;
        Self::new(header, body)
            .map_err(|_| CodecError::Invalid("verity block", "body hash mismatch"))
    }
}

impl Digestible for Block {
    type Digest = sha256::Digest;

    fn digest(&self) -> sha256::Digest {
        self.digest
    }
}

impl Committable for Block {
    type Commitment = sha256::Digest;

    fn commitment(&self) -> sha256::Digest {
        self.digest
    }
}

impl Heightable for Block {
    fn height(&self) -> Height {
        Height::new(self.header.height)
    }
}

impl commonware_consensus::Block for Block {
    fn parent(&self) -> sha256::Digest {
        sha256::Digest::from(self.header.parent.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Decode, Encode};

    fn block(body: &[u8]) -> Block {
        let header = BlockHeader {
            parent: genesis_header().digest(),
            height: 1,
            timestamp_ms: 5,
            claim: StateClaim::default(),
            body_hash: B256::from(sha256_bytes(body)),
            seed: None,
        };
        Block::new(header, Bytes::copy_from_slice(body)).unwrap()
    }

    #[test]
    fn digest_is_header_digest() {
        let b = block(b"txs");
        assert_eq!(b.digest().0, b.header().digest().0);
        assert_eq!(Block::genesis().digest().0, genesis_header().digest().0);
    }

    #[test]
    fn roundtrip_and_limits() {
        let b = block(b"hello");
        let enc = b.encode();
        assert_eq!(enc.len(), b.encode_size());
        assert_eq!(Block::decode_cfg(enc.clone(), &1024).unwrap(), b);
        // Body larger than the limit is refused.
        assert!(Block::decode_cfg(enc, &4).is_err());
    }

    #[test]
    fn rejects_body_hash_mismatch() {
        let b = block(b"hello");
        let mut header = b.header().clone();
        header.body_hash = B256::ZERO;
        assert!(Block::new(header.clone(), b.body().clone()).is_err());
        // Hand-encode a tampered block and check decoding refuses it.
        let mut buf = Vec::new();
        Bytes::from(header.encode()).write(&mut buf);
        b.body().write(&mut buf);
        assert!(Block::decode_cfg(Bytes::from(buf), &1024).is_err());
        // Garbage does not panic.
        assert!(Block::decode_cfg(Bytes::from_static(&[0xff; 7]), &1024).is_err());
    }
}
