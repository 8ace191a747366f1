//! Protocol upgrades decided on chain (ADR 0011).
//!
//! The state's system namespace holds the protocol in force once an
//! upgrade activated (before that, the genesis's), the votes of the current
//! epoch and, once decided, the scheduled upgrade. A validator of the
//! current epoch votes with a
//! [`TxPayload::VoteUpgrade`](stele_types::TxPayload::VoteUpgrade) naming
//! the parameters and their activation height; when validators holding
//! more than two thirds of the epoch's power voted for the same pair, the
//! upgrade is scheduled. Executing the block just below the activation
//! height writes the new parameters, so the block at the activation height
//! is the first to run under them: what a block executes under is always
//! read from its parent's state.
//!
//! Whether this node can run a version is not part of any rule here: a
//! vote for a version some nodes lack counts the same on every node (the
//! chain must not fork on it); those nodes stop before the activation
//! height instead (the node checks [`scheduled`] after each commit).

use stele_types::codec::{Decode, DecodeError, Encode, Reader};
use stele_types::{Address, Hash, ProtocolParams, ValidatorSet, keccak256_parts};
use stele_vm::WorldError;

use super::governance::{cast, epoch_info, read, system, validators};
use super::world::StateWorld;

/// The protocol in force (absent until the first upgrade activates: the
/// genesis's).
pub const KEY_PROTOCOL: &[u8] = b"protocol";
/// The votes for upgrades in the current epoch.
pub const KEY_UPGRADE_BALLOT: &[u8] = b"gov/upgrade_ballot";
/// The upgrade decided and not yet active.
pub const KEY_UPGRADE: &[u8] = b"gov/upgrade";

/// Gas an upgrade vote costs on top of the intrinsic gas (reading and
/// writing a ballot of at most one entry per validator).
pub const UPGRADE_VOTE_GAS: u64 = 100_000;
/// The activation height must be at least this many checkpoint intervals
/// after the block of each vote: every node learns of the upgrade that
/// long before it, to compile its contracts for the new VM or, lacking the
/// version, to stop in time and tell its operator.
pub const UPGRADE_DELAY_MIN_CHECKPOINTS: u64 = 2;
/// ...and at most this many blocks after it.
pub const UPGRADE_DELAY_MAX_BLOCKS: u64 = 10_000_000;

/// An upgrade decided by vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledUpgrade {
    /// The epoch whose validators decided it.
    pub epoch: u64,
    pub params: ProtocolParams,
    /// The first height executed under `params`.
    pub activation_height: u64,
    /// The block whose vote reached the quorum.
    pub decided_at: u64,
}

impl Encode for ScheduledUpgrade {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.epoch.encode_to(out);
        self.params.encode_to(out);
        self.activation_height.encode_to(out);
        self.decided_at.encode_to(out);
    }
}

impl Decode for ScheduledUpgrade {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ScheduledUpgrade {
            epoch: r.u64("epoch")?,
            params: ProtocolParams::decode_from(r)?,
            activation_height: r.u64("activation height")?,
            decided_at: r.u64("decided at")?,
        })
    }
}

/// What a validator votes for: parameters and their activation height.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proposal {
    activation_height: u64,
    params: ProtocolParams,
}

impl Proposal {
    fn hash(&self) -> Hash {
        keccak256_parts(&[
            b"STELE/v1/upgrade\0",
            &self.activation_height.to_le_bytes(),
            &self.params.hash().0,
        ])
    }
}

/// The upgrade votes of one epoch: each voter's latest vote, and what is
/// voted for (at most one proposal per validator).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Ballot {
    epoch: u64,
    /// (voter, proposal hash), by voter.
    votes: Vec<(Address, Hash)>,
    /// (proposal hash, proposal), by hash.
    proposals: Vec<(Hash, Proposal)>,
}

impl Encode for Ballot {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.epoch.encode_to(out);
        stele_types::codec::put_len(out, self.votes.len());
        for (voter, hash) in &self.votes {
            voter.encode_to(out);
            hash.encode_to(out);
        }
        stele_types::codec::put_len(out, self.proposals.len());
        for (hash, p) in &self.proposals {
            hash.encode_to(out);
            p.activation_height.encode_to(out);
            p.params.encode_to(out);
        }
    }
}

impl Decode for Ballot {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let max = ValidatorSet::VALIDATORS_MAX;
        Ok(Ballot {
            epoch: r.u64("epoch")?,
            votes: r.seq(max, 52, "upgrade votes", |r| {
                Ok((Address::decode_from(r)?, Hash::decode_from(r)?))
            })?,
            proposals: r.seq(max, 104, "upgrade proposals", |r| {
                Ok((
                    Hash::decode_from(r)?,
                    Proposal {
                        activation_height: r.u64("activation height")?,
                        params: ProtocolParams::decode_from(r)?,
                    },
                ))
            })?,
        })
    }
}

/// The protocol a block on `world` executes under: the last activated
/// upgrade's, or `genesis` before any.
pub fn active(world: &StateWorld, genesis: &ProtocolParams) -> Result<ProtocolParams, WorldError> {
    Ok(read(world, KEY_PROTOCOL)?.unwrap_or_else(|| genesis.clone()))
}

/// The upgrade decided and not yet active, if any.
pub fn scheduled(world: &StateWorld) -> Result<Option<ScheduledUpgrade>, WorldError> {
    read(world, KEY_UPGRADE)
}

/// Whether `writes` schedule or activate an upgrade (otherwise what
/// [`active`] and [`scheduled`] read is what it was before them).
pub fn touches_protocol(writes: &stele_state::WriteSet) -> bool {
    [KEY_PROTOCOL, KEY_UPGRADE]
        .iter()
        .any(|k| writes.contains_key(&system(k)))
}

/// What an upgrade vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// Counted; the proposal has this much power behind it.
    Counted { power: u64, quorum: u64 },
    /// Counted, and it scheduled the upgrade.
    Scheduled { activation_height: u64 },
}

/// One upgrade vote by `sender` in the block at `height` on a chain whose
/// genesis protocol is `genesis`. `Ok(Err(reason))` is a refused vote (the
/// receipt says why; nothing is written); `Err` is the state backend.
#[allow(clippy::too_many_arguments)]
pub(crate) fn vote(
    world: &mut StateWorld,
    genesis: &ProtocolParams,
    checkpoint_interval: u64,
    height: u64,
    sender: Address,
    epoch: u64,
    activation_height: u64,
    params: &ProtocolParams,
) -> Result<Result<UpgradeOutcome, String>, WorldError> {
    if let Err(e) = params.check() {
        return Ok(Err(format!("the proposed parameters are invalid: {e}")));
    }
    // A node sizes its consensus messages and block decoding for the
    // genesis's blocks when it starts; larger blocks would not reach it.
    if params.block_bytes_max > genesis.block_bytes_max {
        return Ok(Err(format!(
            "block_bytes_max {} is over the genesis's {}, which nodes size their messages for",
            params.block_bytes_max, genesis.block_bytes_max
        )));
    }
    if params.block_txs_max > genesis.block_txs_max {
        return Ok(Err(format!(
            "block_txs_max {} is over the genesis's {}, which nodes size their block decoding for",
            params.block_txs_max, genesis.block_txs_max
        )));
    }
    let info = epoch_info(world)?;
    if epoch != info.epoch {
        return Ok(Err(format!(
            "the vote is for epoch {epoch}, the chain is in epoch {}",
            info.epoch
        )));
    }
    let current = validators(world)?;
    if current.index_of(&sender).is_none() {
        return Ok(Err(format!("{sender} is not a validator of epoch {epoch}")));
    }
    if let Some(s) = scheduled(world)? {
        return Ok(Err(format!(
            "an upgrade is already scheduled for height {}",
            s.activation_height
        )));
    }
    let earliest = height
        .saturating_add(UPGRADE_DELAY_MIN_CHECKPOINTS.saturating_mul(checkpoint_interval.max(1)));
    if activation_height < earliest {
        return Ok(Err(format!(
            "activation height {activation_height} is too close: the earliest is {earliest}"
        )));
    }
    let latest = height.saturating_add(UPGRADE_DELAY_MAX_BLOCKS);
    if activation_height > latest {
        return Ok(Err(format!(
            "activation height {activation_height} is too far: the latest is {latest}"
        )));
    }
    if *params == active(world, genesis)? {
        return Ok(Err("the proposed parameters are the ones in force".into()));
    }

    let mut ballot: Ballot = read(world, KEY_UPGRADE_BALLOT)?.unwrap_or_default();
    if ballot.epoch != epoch {
        ballot = Ballot {
            epoch,
            ..Ballot::default()
        };
    }
    let proposal = Proposal {
        activation_height,
        params: params.clone(),
    };
    let power = cast(
        &mut ballot.votes,
        &mut ballot.proposals,
        sender,
        (proposal.hash(), proposal),
        &current,
    );
    let quorum = current.quorum_power();
    if power < quorum {
        world.system_put(system(KEY_UPGRADE_BALLOT), ballot.to_bytes());
        return Ok(Ok(UpgradeOutcome::Counted { power, quorum }));
    }
    let decided = ScheduledUpgrade {
        epoch,
        params: params.clone(),
        activation_height,
        decided_at: height,
    };
    world.system_delete(system(KEY_UPGRADE_BALLOT));
    world.system_put(system(KEY_UPGRADE), decided.to_bytes());
    Ok(Ok(UpgradeOutcome::Scheduled { activation_height }))
}

/// After the transactions of the block at `height`: the block below an
/// activation height puts the scheduled parameters in force for the next
/// one; a new epoch drops the old epoch's votes.
pub(crate) fn end_block(
    world: &mut StateWorld,
    height: u64,
    new_epoch: bool,
) -> Result<(), WorldError> {
    if new_epoch {
        world.system_delete(system(KEY_UPGRADE_BALLOT));
    }
    let Some(upgrade) = scheduled(world)? else {
        return Ok(());
    };
    if upgrade.activation_height != height.saturating_add(1) {
        return Ok(());
    }
    world.system_put(system(KEY_PROTOCOL), upgrade.params.to_bytes());
    world.system_delete(system(KEY_UPGRADE));
    Ok(())
}
