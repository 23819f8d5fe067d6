//! Binary Merkle trees over BLAKE3 (domain-separated leaf and node hashing), with
//! multi-openings that send each needed sibling hash once.

use crate::field::{f_to_bytes, F};

/// A 32-byte digest.
pub type Hash = [u8; 32];

const LEAF_CTX: &str = "verity-prover v1 merkle leaf";
const NODE_CTX: &str = "verity-prover v1 merkle node";

fn leaf_key() -> Hash {
    blake3::derive_key(LEAF_CTX, b"")
}

fn node_key() -> Hash {
    blake3::derive_key(NODE_CTX, b"")
}

/// Hashes leaves that are vectors of field elements.
#[derive(Debug, Clone)]
pub struct LeafHasher {
    key: Hash,
}

impl Default for LeafHasher {
    fn default() -> Self {
        Self { key: leaf_key() }
    }
}

impl LeafHasher {
    /// The hash of one leaf.
    pub fn hash(&self, values: &[F]) -> Hash {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&(values.len() as u64).to_le_bytes());
        let mut buf = Vec::with_capacity(values.len() * 8);
        for v in values {
            buf.extend_from_slice(&f_to_bytes(*v));
        }
        h.update(&buf);
        *h.finalize().as_bytes()
    }
}

fn hash_node(key: &Hash, l: &Hash, r: &Hash) -> Hash {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(l);
    buf[32..].copy_from_slice(r);
    *blake3::keyed_hash(key, &buf).as_bytes()
}

/// A full binary tree over `2^depth` leaf hashes.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Build the tree; `leaves.len()` must be a power of two.
    pub fn new(leaves: Vec<Hash>) -> Self {
        assert!(leaves.len().is_power_of_two(), "leaf count must be 2^k");
        let key = node_key();
        let mut levels = vec![leaves];
        while levels.last().map_or(0, Vec::len) > 1 {
            let prev = levels.last().map(Vec::as_slice).unwrap_or(&[]);
            let next: Vec<Hash> = prev
                .chunks_exact(2)
                .map(|p| hash_node(&key, &p[0], &p[1]))
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// The root.
    pub fn root(&self) -> Hash {
        self.levels.last().map_or([0u8; 32], |l| l[0])
    }

    /// Number of levels above the leaves.
    pub fn depth(&self) -> usize {
        self.levels.len() - 1
    }

    /// The sibling hashes that open the (sorted, distinct) `indices`, in the order
    /// [`verify_multi`] consumes them.
    pub fn open(&self, indices: &[usize]) -> Vec<Hash> {
        sibling_positions(self.depth(), indices)
            .into_iter()
            .map(|(level, i)| self.levels[level][i])
            .collect()
    }
}

/// `(level, index)` of each sibling a multi-opening of `indices` needs, in canonical order:
/// level by level from the leaves, by increasing index.
pub fn sibling_positions(depth: usize, indices: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut known: Vec<usize> = indices.to_vec();
    for level in 0..depth {
        let mut k = 0;
        while k < known.len() {
            let i = known[k];
            if i.is_multiple_of(2) && k + 1 < known.len() && known[k + 1] == i + 1 {
                k += 2;
            } else {
                out.push((level, i ^ 1));
                k += 1;
            }
        }
        known = parents(&known);
    }
    out
}

fn parents(known: &[usize]) -> Vec<usize> {
    let mut p: Vec<usize> = known.iter().map(|i| i >> 1).collect();
    p.dedup();
    p
}

/// Check a multi-opening: `leaves[k]` is the hash of leaf `indices[k]` (sorted, distinct,
/// each `< 2^depth`), and `siblings` are the hashes listed by [`sibling_positions`].
pub fn verify_multi(
    root: &Hash,
    depth: usize,
    indices: &[usize],
    leaves: &[Hash],
    siblings: &[Hash],
) -> bool {
    if indices.len() != leaves.len() || indices.is_empty() {
        return false;
    }
    if indices.windows(2).any(|w| w[0] >= w[1]) {
        return false;
    }
    if depth < usize::BITS as usize && indices.iter().any(|i| *i >> depth != 0) {
        return false;
    }
    let key = node_key();
    let mut sib = siblings.iter();
    let mut cur: Vec<(usize, Hash)> = indices
        .iter()
        .copied()
        .zip(leaves.iter().copied())
        .collect();
    for _ in 0..depth {
        let mut next = Vec::with_capacity(cur.len());
        let mut k = 0;
        while k < cur.len() {
            let (i, h) = cur[k];
            let parent = if i.is_multiple_of(2) && k + 1 < cur.len() && cur[k + 1].0 == i + 1 {
                k += 1;
                hash_node(&key, &h, &cur[k].1)
            } else {
                let Some(s) = sib.next() else {
                    return false;
                };
                if i.is_multiple_of(2) {
                    hash_node(&key, &h, s)
                } else {
                    hash_node(&key, s, &h)
                }
            };
            next.push((i >> 1, parent));
            k += 1;
        }
        cur = next;
    }
    sib.next().is_none() && cur.len() == 1 && cur[0].1 == *root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::f_from_i64;

    fn tree(n: usize) -> (MerkleTree, Vec<Hash>) {
        let lh = LeafHasher::default();
        let leaves: Vec<Hash> = (0..n)
            .map(|i| lh.hash(&[f_from_i64(i as i64), f_from_i64(-(i as i64))]))
            .collect();
        (MerkleTree::new(leaves.clone()), leaves)
    }

    #[test]
    fn multi_openings_verify_and_tampering_fails() {
        let (t, leaves) = tree(64);
        for idx in [
            vec![0usize],
            vec![63],
            vec![0, 1],
            vec![3, 4, 5, 40, 63],
            (0..64).collect(),
        ] {
            let sibs = t.open(&idx);
            assert_eq!(sibs.len(), sibling_positions(6, &idx).len());
            let lv: Vec<Hash> = idx.iter().map(|i| leaves[*i]).collect();
            assert!(verify_multi(&t.root(), 6, &idx, &lv, &sibs));
            if !sibs.is_empty() {
                let mut bad = sibs.clone();
                bad[0][5] ^= 1;
                assert!(!verify_multi(&t.root(), 6, &idx, &lv, &bad));
                assert!(!verify_multi(&t.root(), 6, &idx, &lv, &sibs[1..]));
            }
            let mut badl = lv.clone();
            badl[0][0] ^= 1;
            assert!(!verify_multi(&t.root(), 6, &idx, &badl, &sibs));
        }
        // a full opening needs no siblings; one leaf needs `depth`
        assert_eq!(sibling_positions(6, &(0..64).collect::<Vec<_>>()).len(), 0);
        assert_eq!(sibling_positions(6, &[9]).len(), 6);
        // a single-leaf tree
        let (t1, l1) = tree(1);
        assert!(verify_multi(&t1.root(), 0, &[0], &l1, &[]));
    }
}
