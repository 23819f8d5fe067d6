//! Executor draws: requests are assigned from a later block's seed, a
//! silent executor's request is reassigned once to another executor, and a
//! request nobody answers expires with its escrow refunded.

use crate::{
    apply::{request_key, Exec, EXECUTORS_KEY},
    records::{RequestRecord, RequestStatus},
    store::OPEN,
    LedgerError,
};
use redb::ReadableTable;
use verity_primitives::{
    codec::{keccak, Canonical},
    Address, BlockSeed, B256,
};

impl Exec<'_> {
    /// Draws executors for requests ordered two or more blocks before this
    /// one, from this block's seed (the seed of the previous block's view,
    /// which was unknown when the request was ordered); reassigns, once,
    /// requests whose executor posted nothing by its deadline (from this
    /// block's seed, among the other executors); and expires the rest of the
    /// overdue ones. Without a seed (the first block) nothing is drawn.
    pub(crate) fn assign_and_expire(&self, seed: Option<&BlockSeed>) -> Result<(), LedgerError> {
        let executors: Vec<Address> = self
            .get::<Executors>(EXECUTORS_KEY)?
            .map(|e| e.0)
            .unwrap_or_default();
        let open: Vec<(B256, u64)> = {
            let t = self.w.open_table(OPEN)?;
            let mut v = Vec::new();
            for item in t.iter()? {
                let (k, h) = item?;
                v.push((B256::from_slice(k.value()), h.value()));
            }
            v
        };
        let (timeout, half) = (self.params.request_timeout, self.params.reassign_after());
        for (id, at) in open {
            let mut rec: RequestRecord = self
                .get(&request_key(&id))?
                .ok_or_else(|| LedgerError::Corrupt("open request without record".into()))?;
            let next = match (rec.status.clone(), seed) {
                (RequestStatus::Pending, Some(seed)) if at.saturating_add(2) <= self.height => {
                    let Some(executor) = draw_executor(&executors, &seed.randomness(), &id) else {
                        continue;
                    };
                    let window = if half == 0 { timeout } else { half };
                    RequestStatus::Assigned {
                        executor,
                        deadline: self.height.saturating_add(window),
                        seed: seed.clone(),
                    }
                }
                (
                    RequestStatus::Assigned {
                        executor, deadline, ..
                    },
                    Some(seed),
                ) if deadline < self.height && half > 0 => {
                    let Some(next) =
                        draw_reassignment(&executors, &seed.randomness(), &id, &executor)
                    else {
                        continue;
                    };
                    RequestStatus::Reassigned {
                        executor: next,
                        // the request expires when it would have unreassigned
                        deadline: deadline.saturating_add(timeout - half),
                        seed: seed.clone(),
                        silent: executor,
                    }
                }
                (RequestStatus::Assigned { deadline, .. }, _) if deadline < self.height => {
                    self.expire(
                        &id,
                        &mut rec,
                        format!("no result by height {deadline}; escrow refunded"),
                    )?;
                    continue;
                }
                (
                    RequestStatus::Reassigned {
                        executor,
                        deadline,
                        silent,
                        ..
                    },
                    _,
                ) if deadline < self.height => {
                    let reason = format!(
                        "no result by height {deadline} (reassigned from {silent} to \
                         {executor}); escrow refunded"
                    );
                    self.expire(&id, &mut rec, reason)?;
                    continue;
                }
                _ => continue,
            };
            rec.status = next;
            self.put(&request_key(&id), &rec)?;
        }
        Ok(())
    }

    fn expire(
        &self,
        id: &B256,
        rec: &mut RequestRecord,
        reason: String,
    ) -> Result<(), LedgerError> {
        self.credit(&rec.requester, rec.max_fee)?;
        rec.status = RequestStatus::Failed { reason };
        self.put(&request_key(id), rec)?;
        self.w.open_table(OPEN)?.remove(id.as_slice())?;
        Ok(())
    }
}

/// The executor drawn for `request` from `executors` with `randomness` (a
/// block seed's [`BlockSeed::randomness`]): anyone holding the request
/// record's seed and the executor set recomputes it. `None` when there is
/// no executor.
pub fn draw_executor(executors: &[Address], randomness: &B256, request: &B256) -> Option<Address> {
    if executors.is_empty() {
        return None;
    }
    let mut input = b"verity/draw/v1".to_vec();
    input.extend_from_slice(randomness.as_slice());
    input.extend_from_slice(request.as_slice());
    let draw = u64::from_le_bytes(keccak(&input)[..8].try_into().expect("8 bytes"));
    Some(executors[(draw % executors.len() as u64) as usize])
}

/// The executor a request is reassigned to after `silent` posted nothing:
/// [`draw_executor`] over the executors other than `silent` (all of them
/// when `silent` is the only one), with the reassigning block's seed, which
/// the request record keeps.
pub fn draw_reassignment(
    executors: &[Address],
    randomness: &B256,
    request: &B256,
    silent: &Address,
) -> Option<Address> {
    let others: Vec<Address> = executors.iter().filter(|e| *e != silent).copied().collect();
    if others.is_empty() {
        return draw_executor(executors, randomness, request);
    }
    draw_executor(&others, randomness, request)
}

/// Genesis executor list.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub(crate) struct Executors(pub Vec<Address>);
impl Canonical for Executors {
    const WHAT: &'static str = "executor set";
}
