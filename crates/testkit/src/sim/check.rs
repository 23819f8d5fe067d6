//! Properties checked over a simulated network: no fork, identical state
//! roots, and what a block-by-block auditor sees.

use super::Sim;
use verity_primitives::B256;

/// Why a property does not hold.
#[derive(Debug, thiserror::Error)]
pub enum Violation {
    #[error("fork: validators {a} and {b} finalized different blocks at height {height}")]
    Fork { height: u64, a: usize, b: usize },
    #[error("state roots differ at height {height}: validator {a} has {ra:#x}, validator {b} has {rb:#x}")]
    Roots {
        height: u64,
        a: usize,
        b: usize,
        ra: B256,
        rb: B256,
    },
    #[error("validator {node} lost height {height} (it had root {root:#x})")]
    Lost {
        node: usize,
        height: u64,
        root: B256,
    },
    #[error("request {request:#x}: bad executor draw: {why}")]
    Draw { request: B256, why: String },
    #[error("validator {node} halted: {reason}")]
    Halted { node: usize, reason: String },
}

/// Every running honest validator finalized the same headers and computed
/// the same root at every height they share; none halted.
pub fn agreement(sim: &Sim, honest: &[usize]) -> Result<u64, Violation> {
    let running: Vec<usize> = honest
        .iter()
        .copied()
        .filter(|&i| sim.nodes[i].state.is_some())
        .collect();
    for &i in &running {
        if let Some(reason) = sim.state(i).halt_reason() {
            return Err(Violation::Halted { node: i, reason });
        }
    }
    let common = running
        .iter()
        .map(|&i| sim.state(i).ledger.height().unwrap_or(0))
        .min()
        .unwrap_or(0);
    let Some(&first) = running.first() else {
        return Ok(0);
    };
    for h in 1..=common {
        let header = sim.state(first).chain.header(h).ok().flatten();
        let root = sim.state(first).ledger.root_at(h).ok().flatten();
        for &j in &running[1..] {
            let other = sim.state(j).chain.header(h).ok().flatten();
            if let (Some(a), Some(b)) = (&header, &other) {
                if a.digest() != b.digest() {
                    return Err(Violation::Fork {
                        height: h,
                        a: first,
                        b: j,
                    });
                }
            }
            let r = sim.state(j).ledger.root_at(h).ok().flatten();
            if r != root {
                return Err(Violation::Roots {
                    height: h,
                    a: first,
                    b: j,
                    ra: root.unwrap_or_default(),
                    rb: r.unwrap_or_default(),
                });
            }
        }
    }
    Ok(common)
}

/// Every assigned or settled request of `node`'s state was drawn from a
/// seed that verifies against the network identity, for a view after the
/// one that ordered it, and the draw recomputes to the recorded executor.
/// Returns how many draws were checked.
pub fn draws(sim: &Sim, node: usize, requests: &[B256]) -> Result<usize, Violation> {
    use verity_ledger::RequestStatus;
    let s = sim.state(node);
    let scheme = verity_node::consensus::Scheme::certificate_verifier(
        &verity_node::consensus::consensus_namespace(&super::SIM_CHAIN.to_string()),
        sim.identity.identity(),
    );
    let executors = s.ledger.executors().unwrap_or_default();
    let mut checked = 0;
    for id in requests {
        let Some(rec) = s.ledger.request(id).ok().flatten() else {
            continue;
        };
        let RequestStatus::Assigned { executor, seed, .. } = &rec.status else {
            continue;
        };
        let bad = |why: String| Violation::Draw { request: *id, why };
        // The seed is the seed of the view of some block after the one
        // that ordered the request: it must verify as such.
        let ordering = s
            .chain
            .header(rec.height + 1)
            .ok()
            .flatten()
            .and_then(|h| h.seed)
            .ok_or_else(|| bad("no seed after the ordering block".into()))?;
        if seed.view <= ordering.view {
            return Err(bad(format!(
                "drawn from view {}, not after the ordering view {}",
                seed.view, ordering.view
            )));
        }
        verity_node::consensus::check_seed(&scheme, 1, seed.view, Some(seed))
            .map_err(|e| bad(e.to_string()))?;
        let again = verity_ledger::draw_executor(&executors, &seed.randomness(), id);
        if again != Some(*executor) {
            return Err(bad(format!("recomputed {again:?}, recorded {executor}")));
        }
        checked += 1;
    }
    Ok(checked)
}

/// The roots `node` had before a crash are still its roots.
pub fn nothing_lost(sim: &Sim, node: usize, before: &[(u64, B256)]) -> Result<(), Violation> {
    for &(height, root) in before {
        if sim.state(node).ledger.root_at(height).ok().flatten() != Some(root) {
            return Err(Violation::Lost { node, height, root });
        }
    }
    Ok(())
}

/// Every root of `node` up to its height (to compare after a crash).
pub fn roots(sim: &Sim, node: usize) -> Vec<(u64, B256)> {
    let s = sim.state(node);
    let h = s.ledger.height().unwrap_or(0);
    (1..=h)
        .filter_map(|k| s.ledger.root_at(k).ok().flatten().map(|r| (k, r)))
        .collect()
}
