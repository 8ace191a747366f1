//! The per-peer signature-check budgets ([`VERIFY_PER_PEER_PER_S`],
//! [`VERIFY_PER_PEER_BURST`]) and what an offence costs.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::{VERIFY_PER_PEER_BURST, VERIFY_PER_PEER_PER_S};

/// Per peer, the signature checks it may still cost now.
#[derive(Debug, Clone, Copy)]
struct Budget {
    tokens: f64,
    at: Instant,
}

/// What one offence costs a peer's budget: a bad signature on a message
/// it signed itself, or two conflicting messages it signed (which an
/// honest validator never sends). Whatever it had left is gone and its
/// budget goes this far into debt, so its next messages are dropped
/// unchecked for about four seconds; a peer that keeps offending stays
/// there.
pub const OFFENCE_CHECKS: f64 = VERIFY_PER_PEER_BURST;
/// The deepest debt offences can put a budget in (~16 s of refill).
const BUDGET_DEBT_MAX: f64 = 4.0 * VERIFY_PER_PEER_BURST;

/// The signature-check budgets of every peer, shared by the pre-check
/// (which spends them), its checker (which charges a peer's bad
/// signatures) and the driver (which charges equivocations). At most one
/// entry per validator: the transport delivers only from validators.
#[derive(Debug, Default)]
pub struct PeerBudgets {
    peers: Mutex<BTreeMap<stele_types::Address, Budget>>,
}

impl PeerBudgets {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<stele_types::Address, Budget>> {
        // Every update leaves each entry whole.
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refilled(
        peers: &mut BTreeMap<stele_types::Address, Budget>,
        peer: stele_types::Address,
        now: Instant,
    ) -> &mut Budget {
        let budget = peers.entry(peer).or_insert(Budget {
            tokens: VERIFY_PER_PEER_BURST,
            at: now,
        });
        let elapsed = now.saturating_duration_since(budget.at).as_secs_f64();
        budget.tokens =
            (budget.tokens + elapsed * VERIFY_PER_PEER_PER_S).min(VERIFY_PER_PEER_BURST);
        budget.at = now;
        budget
    }

    /// Takes `checks` signature checks from `peer`'s budget; false (taking
    /// nothing) if it has not that many left.
    pub fn spend(&self, peer: stele_types::Address, checks: usize, now: Instant) -> bool {
        let mut peers = self.lock();
        let budget = Self::refilled(&mut peers, peer, now);
        let cost = checks as f64;
        if budget.tokens < cost {
            return false;
        }
        budget.tokens -= cost;
        true
    }

    /// Charges `peer` for an offence ([`OFFENCE_CHECKS`]).
    pub fn offence(&self, peer: stele_types::Address, now: Instant) {
        let mut peers = self.lock();
        let budget = Self::refilled(&mut peers, peer, now);
        budget.tokens = (budget.tokens.min(0.0) - OFFENCE_CHECKS).max(-BUDGET_DEBT_MAX);
    }
}
