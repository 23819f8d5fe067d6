//! A transparent multilinear polynomial commitment: Ligero/Brakedown-style tensor code
//! commitment with a Reed–Solomon code over Goldilocks and a BLAKE3 Merkle tree.
//!
//! **Commit.** The `N` base-field values of a multilinear polynomial in `n = ceil(log2 N)`
//! variables (missing values are zero) are laid out as a matrix of `R = ceil(N / C)` rows of
//! `C = 2^c` columns (row index = high `n - c` variables, column index = low `c` variables).
//! Each row is encoded with the Reed–Solomon code of rate `ρ = 2^-log_inv_rate`: the row is
//! the coefficient vector of a polynomial of degree `< C`, evaluated on the subgroup of order
//! `C/ρ` (Plonky3's radix-2 DFT). Column `j` of the encoded matrix (one symbol of every row)
//! is a Merkle leaf; the root is the commitment.
//!
//! **Open at `z = (z_row, z_col)`.** The verifier draws `γ ∈ EF^R`; the prover sends
//! `u_γ = Σ γ_i row_i` (proximity row) and `u_z = Σ eq(z_row, i) row_i` (evaluation row).
//! The verifier draws `t` column indices; the prover sends those columns with a Merkle
//! multi-opening. The verifier checks the openings, `⟨u_z, eq(z_col)⟩ = v`, and at every
//! opened column `j` that `Enc(u_γ)_j = Σ γ_i M_ij` and `Enc(u_z)_j = Σ eq(z_row,i) M_ij`.
//!
//! **Soundness** (sketch, see docs/proof-system.md): by the proximity-gap (correlated
//! agreement) theorem for RS codes in the unique-decoding regime, if the committed matrix is
//! not within relative distance `δ/2` (`δ = 1 - ρ`) of the interleaved code, `Enc(u_γ)`
//! disagrees with the committed columns on more than a `δ/2` fraction except with
//! probability `≤ n_enc/|EF|`; otherwise the rows decode uniquely, and a wrong `u_z` differs
//! from the true combination in `≥ δ·n_enc` symbols, of which at least a `δ/2` fraction are
//! not explained by corrupted columns. Each query therefore catches a cheat with probability
//! `≥ δ/2`: error `≤ (1 - δ/2)^t + n_enc/|EF|`.

use crate::error::VerifyError;
use crate::field::{ceil_log2, EF, EF_BITS, F};
use crate::merkle::{sibling_positions, verify_multi, Hash, LeafHasher, MerkleTree};
use crate::mle::eq_table;
use crate::transcript::{Challenger, ProverTranscript, VerifierTranscript};
use p3_dft::{Radix2Dit, TwoAdicSubgroupDft};
use p3_field::PrimeCharacteristicRing;
use p3_matrix::dense::RowMajorMatrix;

/// The longest code used: `2^26` symbols.
pub const MAX_LOG_N_ENC: usize = 26;

/// Bound on `log2(R · n_enc)` (rows times code length) for which the proximity-gap term
/// `R·n_enc/|EF|` stays below `2^-100`.
pub const MAX_LOG_CODE_CELLS: usize = 27;

/// Code rate and number of column queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcsParams {
    /// `log2(1/ρ)`.
    pub log_inv_rate: u8,
    /// Number of column openings `t` (sampled with replacement).
    pub num_queries: u16,
}

impl PcsParams {
    /// Rate 1/4, 148 queries: 100.3 bits (see [`PcsParams::security_bits`]).
    pub const DEFAULT: PcsParams = PcsParams {
        log_inv_rate: 2,
        num_queries: 148,
    };

    /// Rate 1/4, 241 queries: 100 bits even under the older `δ/3` analysis of the
    /// Ligero/Brakedown test (about 110 KiB more per opening at the MLP's size).
    pub const CONSERVATIVE: PcsParams = PcsParams {
        log_inv_rate: 2,
        num_queries: 241,
    };

    /// The minimum security a verifier accepts.
    pub const MIN_SECURITY_BITS: f64 = 100.0;

    /// Bits from the column queries: `-t·log2(1 - δ/2)` with `δ = 1 - ρ` (unique-decoding
    /// radius of the Reed–Solomon code).
    pub fn query_bits(&self) -> f64 {
        let rho = 0.5f64.powi(i32::from(self.log_inv_rate));
        -((1.0 + rho) / 2.0).log2() * f64::from(self.num_queries)
    }

    /// Bits of security of one opening of a polynomial with `len` values: the query term,
    /// capped by the proximity-gap term `log2(|EF| / (R·n_enc))`.
    pub fn security_bits(&self, len: usize) -> f64 {
        let l = PcsLayout::new(len, *self);
        let cells = (l.num_rows as f64).log2() + l.log_n_enc as f64;
        self.query_bits().min(EF_BITS - cells)
    }

    /// The most values one commitment may hold with these parameters.
    pub fn max_len(&self) -> usize {
        1usize << MAX_LOG_CODE_CELLS.saturating_sub(usize::from(self.log_inv_rate))
    }

    /// Whether these parameters are allowed.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.log_inv_rate) {
            return Err(format!("log_inv_rate {} not in 1..=4", self.log_inv_rate));
        }
        if self.query_bits() < Self::MIN_SECURITY_BITS {
            return Err(format!(
                "{} queries at rate 2^-{} give {:.1} bits < {}",
                self.num_queries,
                self.log_inv_rate,
                self.query_bits(),
                Self::MIN_SECURITY_BITS
            ));
        }
        Ok(())
    }
}

/// The shape of a committed polynomial, derived from its length and the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcsLayout {
    /// Number of committed values `N`.
    pub len: usize,
    /// Variables of the polynomial: `ceil(log2 N)`.
    pub num_vars: usize,
    /// `log2 C`: the low variables index columns.
    pub log_cols: usize,
    /// `R = ceil(N / C)`.
    pub num_rows: usize,
    /// `log2` of the code length `C/ρ`.
    pub log_n_enc: usize,
}

impl PcsLayout {
    /// The layout for `len` values (chooses `C` to minimise the opening size).
    pub fn new(len: usize, params: PcsParams) -> Self {
        let len = len.max(1);
        let num_vars = ceil_log2(len);
        let lir = usize::from(params.log_inv_rate);
        let t = usize::from(params.num_queries);
        let mut best = (usize::MAX, 0usize);
        for log_cols in 0..=num_vars.min(MAX_LOG_N_ENC.saturating_sub(lir)) {
            let c = 1usize << log_cols;
            let rows = len.div_ceil(c);
            let n_enc_log = log_cols + lir;
            let q = t.min(1 << n_enc_log);
            let shared = ceil_log2(q);
            let path = n_enc_log.saturating_sub(shared);
            let size = 2 * c * 16 + q * rows * 8 + q * path * 32;
            if size < best.0 {
                best = (size, log_cols);
            }
        }
        let log_cols = best.1;
        Self {
            len,
            num_vars,
            log_cols,
            num_rows: len.div_ceil(1 << log_cols),
            log_n_enc: log_cols + lir,
        }
    }

    fn cols(&self) -> usize {
        1 << self.log_cols
    }
}

/// What a verifier needs to know about a committed polynomial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcsCommitment {
    /// The Merkle root over the encoded columns.
    pub root: Hash,
    /// Number of committed values.
    pub len: usize,
    /// The parameters it was committed with.
    pub params: PcsParams,
}

impl PcsCommitment {
    /// Its layout.
    pub fn layout(&self) -> PcsLayout {
        PcsLayout::new(self.len, self.params)
    }
}

/// What the prover keeps to open a commitment.
#[derive(Debug, Clone)]
pub struct PcsProverData {
    values: Vec<F>,
    layout: PcsLayout,
    /// The encoded matrix, transposed: row `j` is column `j` (one Merkle leaf).
    encoded: Vec<F>,
    tree: MerkleTree,
    params: PcsParams,
}

impl PcsProverData {
    /// The commitment to these values.
    pub fn commitment(&self) -> PcsCommitment {
        PcsCommitment {
            root: self.tree.root(),
            len: self.layout.len,
            params: self.params,
        }
    }

    /// The committed values.
    pub fn values(&self) -> &[F] {
        &self.values
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        (self.values.len() + self.encoded.len()) * 8 + (2usize << self.layout.log_n_enc) * 32
    }
}

/// Commit to `values` (a polynomial in `ceil(log2 len)` variables).
pub fn commit(values: Vec<F>, params: PcsParams) -> PcsProverData {
    let layout = PcsLayout::new(values.len(), params);
    let c = layout.cols();
    let rows = layout.num_rows;
    let n_enc = 1usize << layout.log_n_enc;
    // column-of-coefficients matrix: height n_enc, one column per row of the tensor matrix
    let mut m = vec![F::ZERO; n_enc * rows];
    for (idx, v) in values.iter().enumerate() {
        let (i, j) = (idx / c, idx % c);
        m[j * rows + i] = *v;
    }
    let encoded = Radix2Dit::default()
        .dft_batch(RowMajorMatrix::new(m, rows))
        .values;
    let lh = LeafHasher::default();
    let leaves: Vec<Hash> = encoded.chunks_exact(rows).map(|col| lh.hash(col)).collect();
    let tree = MerkleTree::new(leaves);
    PcsProverData {
        values,
        layout,
        encoded,
        tree,
        params,
    }
}

fn split_point<'a>(layout: &PcsLayout, point: &'a [EF]) -> (&'a [EF], &'a [EF]) {
    point.split_at(layout.num_vars - layout.log_cols)
}

/// Row combination `Σ_i coeffs_i · row_i` over the committed (unencoded) rows.
fn combine_rows(data: &PcsProverData, coeffs: &[EF]) -> Vec<EF> {
    let c = data.layout.cols();
    let mut out = vec![EF::ZERO; c];
    for (i, row) in data.values.chunks(c).enumerate() {
        let g = coeffs[i];
        for (o, v) in out.iter_mut().zip(row) {
            *o += g * *v;
        }
    }
    out
}

fn query_indices<C: Challenger>(tr: &mut C, layout: &PcsLayout, params: PcsParams) -> Vec<usize> {
    let mut idx = tr.challenge_indices(usize::from(params.num_queries), layout.log_n_enc);
    idx.sort_unstable();
    idx.dedup();
    idx
}

/// Open the committed polynomial at `point` (its value must already be in the transcript).
pub fn open(data: &PcsProverData, point: &[EF], tr: &mut ProverTranscript) {
    let layout = &data.layout;
    assert_eq!(point.len(), layout.num_vars, "point has the wrong arity");
    let (z_row, _) = split_point(layout, point);
    let gamma = tr.challenge_ef_vec(layout.num_rows);
    tr.send_ef_slice(&combine_rows(data, &gamma));
    let eq_row = eq_table(z_row);
    tr.send_ef_slice(&combine_rows(data, &eq_row));
    let idx = query_indices(tr, layout, data.params);
    let rows = layout.num_rows;
    for j in &idx {
        tr.send_f_slice(&data.encoded[j * rows..(j + 1) * rows]);
    }
    for h in data.tree.open(&idx) {
        tr.send_hash(&h);
    }
}

fn encode_ef(u: &[EF], log_n_enc: usize) -> Vec<EF> {
    let mut padded = u.to_vec();
    padded.resize(1 << log_n_enc, EF::ZERO);
    Radix2Dit::<F>::default().dft_algebra(padded)
}

/// Verify an opening of `comm` at `point` to `value`.
pub fn verify(
    comm: &PcsCommitment,
    point: &[EF],
    value: EF,
    tr: &mut VerifierTranscript<'_>,
) -> Result<(), VerifyError> {
    let layout = comm.layout();
    comm.params
        .check()
        .map_err(|_| VerifyError::Pcs("parameters below the security floor"))?;
    if comm.len > comm.params.max_len()
        || comm.params.security_bits(comm.len) < PcsParams::MIN_SECURITY_BITS
    {
        return Err(VerifyError::Pcs("polynomial too large for the parameters"));
    }
    if point.len() != layout.num_vars {
        return Err(VerifyError::Pcs("point has the wrong arity"));
    }
    let (z_row, z_col) = split_point(&layout, point);
    let rows = layout.num_rows;
    let c = layout.cols();
    let gamma = tr.challenge_ef_vec(rows);
    let u_gamma = tr.recv_ef_vec(c)?;
    let u_z = tr.recv_ef_vec(c)?;
    let eq_col = eq_table(z_col);
    let claimed: EF = u_z.iter().zip(&eq_col).map(|(a, b)| *a * *b).sum();
    if claimed != value {
        return Err(VerifyError::Pcs(
            "evaluation row does not match the claimed value",
        ));
    }
    let eq_row = eq_table(z_row);
    let idx = query_indices(tr, &layout, comm.params);
    let mut cols = Vec::with_capacity(idx.len());
    for _ in &idx {
        cols.push(tr.recv_f_vec(rows)?);
    }
    let n_sib = sibling_positions(layout.log_n_enc, &idx).len();
    let mut sibs = Vec::with_capacity(n_sib);
    for _ in 0..n_sib {
        sibs.push(tr.recv_hash()?);
    }
    let lh = LeafHasher::default();
    let leaves: Vec<Hash> = cols.iter().map(|col| lh.hash(col)).collect();
    if !verify_multi(&comm.root, layout.log_n_enc, &idx, &leaves, &sibs) {
        return Err(VerifyError::Pcs("Merkle opening is invalid"));
    }
    let enc_gamma = encode_ef(&u_gamma, layout.log_n_enc);
    let enc_z = encode_ef(&u_z, layout.log_n_enc);
    for (j, col) in idx.iter().zip(&cols) {
        let mut a = EF::ZERO;
        let mut b = EF::ZERO;
        for (i, v) in col.iter().enumerate() {
            a += gamma[i] * *v;
            b += eq_row[i] * *v;
        }
        if a != enc_gamma[*j] {
            return Err(VerifyError::Pcs("column disagrees with the proximity row"));
        }
        if b != enc_z[*j] {
            return Err(VerifyError::Pcs("column disagrees with the evaluation row"));
        }
    }
    Ok(())
}

/// Evaluate the committed values at `point` (prover side helper).
pub fn evaluate(values: &[F], point: &[EF]) -> EF {
    crate::mle::eval_f(values, point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{ef_from_i64, f_from_i64};

    fn setup(n: usize) -> (PcsProverData, Vec<EF>, EF) {
        let values: Vec<F> = (0..n)
            .map(|i| f_from_i64((i as i64 * 7919) % 1000 - 500))
            .collect();
        let data = commit(values.clone(), PcsParams::DEFAULT);
        let nv = data.commitment().layout().num_vars;
        let point: Vec<EF> = (0..nv).map(|i| ef_from_i64(1000 + 17 * i as i64)).collect();
        let v = evaluate(&values, &point);
        (data, point, v)
    }

    fn prove_bytes(data: &PcsProverData, point: &[EF], v: EF) -> Vec<u8> {
        let mut p = ProverTranscript::new(b"pcs");
        p.send_ef(v);
        open(data, point, &mut p);
        p.finish()
    }

    fn check(comm: &PcsCommitment, point: &[EF], proof: &[u8]) -> Result<(), VerifyError> {
        let mut t = VerifierTranscript::new(b"pcs", proof);
        let v = t.recv_ef()?;
        verify(comm, point, v, &mut t)?;
        t.finish()
    }

    #[test]
    fn openings_verify_for_many_sizes() {
        for n in [1usize, 2, 3, 17, 100, 1000, 5000] {
            let (data, point, v) = setup(n);
            let proof = prove_bytes(&data, &point, v);
            check(&data.commitment(), &point, &proof).unwrap();
        }
    }

    #[test]
    fn wrong_value_or_point_or_root_fails() {
        let (data, point, v) = setup(3000);
        let comm = data.commitment();
        // lie about the value
        let mut p = ProverTranscript::new(b"pcs");
        p.send_ef(v + EF::ONE);
        open(&data, &point, &mut p);
        assert!(check(&comm, &point, &p.finish()).is_err());
        // another point
        let proof = prove_bytes(&data, &point, v);
        let mut other = point.clone();
        other[0] += EF::ONE;
        assert!(check(&comm, &other, &proof).is_err());
        // another commitment
        let mut bad = comm;
        bad.root[0] ^= 1;
        assert!(check(&bad, &point, &proof).is_err());
        // every tenth byte of the proof, flipped
        for pos in (0..proof.len()).step_by(10) {
            let mut b = proof.clone();
            b[pos] ^= 0x20;
            assert!(check(&comm, &point, &b).is_err(), "flip at {pos} accepted");
        }
    }

    #[test]
    fn a_lying_evaluation_row_is_caught() {
        // the prover sends an evaluation row consistent with a false value
        let (data, point, v) = setup(4096);
        let layout = data.commitment().layout();
        let (z_row, z_col) = split_point(&layout, &point);
        let mut p = ProverTranscript::new(b"pcs");
        p.send_ef(v + EF::ONE);
        let gamma = p.challenge_ef_vec(layout.num_rows);
        p.send_ef_slice(&combine_rows(&data, &gamma));
        let mut u = combine_rows(&data, &eq_table(z_row));
        // adjust one entry so that <u, eq(z_col)> = v + 1
        let eqc = eq_table(z_col);
        u[0] += p3_field::Field::inverse(&eqc[0]);
        p.send_ef_slice(&u);
        let idx = query_indices(&mut p, &layout, data.params);
        for j in &idx {
            p.send_f_slice(&data.encoded[j * layout.num_rows..(j + 1) * layout.num_rows]);
        }
        for h in data.tree.open(&idx) {
            p.send_hash(&h);
        }
        let err = check(&data.commitment(), &point, &p.finish()).unwrap_err();
        assert_eq!(
            err,
            VerifyError::Pcs("column disagrees with the evaluation row")
        );
    }

    #[test]
    fn security_of_default_parameters() {
        let p = PcsParams::DEFAULT;
        assert!((100.0..101.0).contains(&p.query_bits()));
        p.check().unwrap();
        PcsParams::CONSERVATIVE.check().unwrap();
        for len in [1usize, 1000, 1 << 17, p.max_len()] {
            let bits = p.security_bits(len);
            assert!(bits >= 100.0, "{len}: {bits}");
        }
        // the conservative set: (1 - δ/3)^t with δ = 3/4
        let c = PcsParams::CONSERVATIVE;
        assert!(-(0.75f64.log2()) * f64::from(c.num_queries) >= 100.0);
        assert!(PcsParams {
            log_inv_rate: 2,
            num_queries: 60
        }
        .check()
        .is_err());
    }
}
