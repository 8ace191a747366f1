//! Validator set changes decided on chain (ADR 0010).
//!
//! The state's system namespace holds the current validator set, the
//! epoch, the votes of the epoch and, once decided, the pending change.
//! A validator of the current epoch votes with a
//! [`TxPayload::VoteValidators`](stele_types::TxPayload::VoteValidators)
//! transaction naming the epoch and the whole next set; when validators
//! holding more than two thirds of the epoch's power voted for the same
//! set, the change is decided, and the epoch ends at the first checkpoint
//! at or after that block (its *last height*). Executing the block at the
//! last height installs the new set: the block after it is the next
//! epoch's. Everything here is a function of the state and the block, so
//! every node computes the same epochs.

use stele_types::codec::{Decode, DecodeError, Encode, Limits, Reader, decode};
use stele_types::proof::{Namespace, StateKey};
use stele_types::{Address, Hash, Signature, Validator, ValidatorSet};
use stele_vm::WorldError;

use super::world::StateWorld;

/// The current validator set (written by the genesis, replaced at each
/// epoch boundary).
pub const KEY_VALIDATORS: &[u8] = b"validators";
/// The current epoch and its first height; absent means epoch 0 from
/// height 1.
pub const KEY_EPOCH: &[u8] = b"epoch";
/// The votes of the current epoch.
pub const KEY_BALLOT: &[u8] = b"gov/ballot";
/// The change decided in the current epoch, until its last height.
pub const KEY_PENDING: &[u8] = b"gov/pending";

/// Gas a vote costs on top of the intrinsic gas: reading and writing the
/// ballot...
pub const VOTE_GAS_BASE: u64 = 100_000;
/// ...plus this much per validator of the proposed set (checking its key
/// and address, about 12 µs, and the tally) and per possession proof
/// checked.
pub const VOTE_GAS_PER_VALIDATOR: u64 = 5_000;
pub const VOTE_GAS_PER_PROOF: u64 = 50_000;

/// The epoch the next block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochInfo {
    pub epoch: u64,
    /// The epoch's first height.
    pub start_height: u64,
}

impl Encode for EpochInfo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.epoch.encode_to(out);
        self.start_height.encode_to(out);
    }
}

impl Decode for EpochInfo {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EpochInfo {
            epoch: r.u64("epoch")?,
            start_height: r.u64("epoch start height")?,
        })
    }
}

/// A decided change: the next set, and the height the epoch ends at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// The epoch that decided it (the one ending).
    pub epoch: u64,
    pub validators: ValidatorSet,
    /// The block whose vote reached the quorum.
    pub decided_at: u64,
    /// The epoch's last height: the first checkpoint at or after
    /// `decided_at`.
    pub last_height: u64,
}

impl Encode for PendingChange {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.epoch.encode_to(out);
        self.validators.encode_to(out);
        self.decided_at.encode_to(out);
        self.last_height.encode_to(out);
    }
}

impl Decode for PendingChange {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PendingChange {
            epoch: r.u64("epoch")?,
            validators: ValidatorSet::decode_from(r)?,
            decided_at: r.u64("decided at")?,
            last_height: r.u64("last height")?,
        })
    }
}

/// The votes of one epoch: each voter's latest vote, and the sets voted
/// for. At most one vote per validator, so at most one set per validator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Ballot {
    epoch: u64,
    /// (voter, hash of the set voted for), by voter.
    votes: Vec<(Address, Hash)>,
    /// (set hash, set), by hash; only sets someone votes for.
    proposals: Vec<(Hash, ValidatorSet)>,
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
        for (hash, set) in &self.proposals {
            hash.encode_to(out);
            set.encode_to(out);
        }
    }
}

impl Decode for Ballot {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let max = r.limits().validators_max;
        Ok(Ballot {
            epoch: r.u64("epoch")?,
            votes: r.seq(max, 52, "votes", |r| {
                Ok((Address::decode_from(r)?, Hash::decode_from(r)?))
            })?,
            proposals: r.seq(max, 36, "proposals", |r| {
                Ok((Hash::decode_from(r)?, ValidatorSet::decode_from(r)?))
            })?,
        })
    }
}

pub(crate) fn system(key: &[u8]) -> StateKey {
    StateKey::new(Namespace::System, key.to_vec())
}

/// Limits for reading governance records the executor wrote: a ballot
/// holds a set per validator, so more bytes than one transaction may.
fn record_limits() -> Limits {
    Limits {
        input_bytes_max: 256 << 20,
        validators_max: ValidatorSet::VALIDATORS_MAX,
        ..Limits::DEFAULT
    }
}

pub(crate) fn read<T: Decode>(world: &StateWorld, key: &[u8]) -> Result<Option<T>, WorldError> {
    let Some(bytes) = world.system_get(&system(key))? else {
        return Ok(None);
    };
    decode(&bytes, &record_limits()).map(Some).map_err(|e| {
        WorldError::Backend(format!(
            "system record {} is corrupt: {e}",
            String::from_utf8_lossy(key)
        ))
    })
}

/// The epoch the next block on `world` belongs to.
pub fn epoch_info(world: &StateWorld) -> Result<EpochInfo, WorldError> {
    Ok(read(world, KEY_EPOCH)?.unwrap_or(EpochInfo {
        epoch: 0,
        start_height: 1,
    }))
}

/// The validator set that certifies the next block on `world`.
pub fn validators(world: &StateWorld) -> Result<ValidatorSet, WorldError> {
    read(world, KEY_VALIDATORS)?
        .ok_or_else(|| WorldError::Backend("the state holds no validator set".into()))
}

/// The change decided in the current epoch, if any.
pub fn pending(world: &StateWorld) -> Result<Option<PendingChange>, WorldError> {
    read(world, KEY_PENDING)
}

/// [`pending`] read straight from `state` at `version`, for a caller that
/// holds the state itself (the block store, writing an epoch's record).
pub fn pending_in(
    state: &stele_state::State,
    version: u64,
) -> Result<Option<PendingChange>, WorldError> {
    let bytes = state
        .get(&system(KEY_PENDING), version)
        .map_err(|e| WorldError::Backend(e.to_string()))?;
    bytes
        .map(|b| {
            decode(&b, &record_limits()).map_err(|e| {
                WorldError::Backend(format!("system record gov/pending is corrupt: {e}"))
            })
        })
        .transpose()
}

/// Records `sender`'s vote for `proposal` (replacing its earlier vote),
/// keeps only the proposals someone still votes for, and returns the power
/// of `set` behind `proposal`. `votes` is by voter, `proposals` by hash:
/// the ballots of set changes and of upgrades share it.
pub(crate) fn cast<P>(
    votes: &mut Vec<(Address, Hash)>,
    proposals: &mut Vec<(Hash, P)>,
    sender: Address,
    (hash, proposal): (Hash, P),
    set: &ValidatorSet,
) -> u64 {
    match votes.binary_search_by(|(a, _)| a.cmp(&sender)) {
        Ok(i) => votes[i].1 = hash,
        Err(i) => votes.insert(i, (sender, hash)),
    }
    if let Err(i) = proposals.binary_search_by(|(h, _)| h.cmp(&hash)) {
        proposals.insert(i, (hash, proposal));
    }
    proposals.retain(|(h, _)| votes.iter().any(|(_, v)| v == h));
    votes
        .iter()
        .filter(|(_, h)| *h == hash)
        .filter_map(|(voter, _)| set.index_of(voter).and_then(|i| set.get(i)))
        .map(|v| v.power)
        .sum()
}

/// Gas a vote for a set of `validators` with `proofs` possession proofs
/// costs.
pub fn vote_gas(validators: usize, proofs: usize) -> u64 {
    VOTE_GAS_BASE
        .saturating_add(VOTE_GAS_PER_VALIDATOR.saturating_mul(validators as u64))
        .saturating_add(VOTE_GAS_PER_PROOF.saturating_mul(proofs as u64))
}

/// What a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Counted; the set has this much power behind it, short of a quorum.
    Counted { power: u64, quorum: u64 },
    /// Counted, and it decided the change: the epoch ends at this height.
    Decided { last_height: u64 },
}

/// One vote by `sender` in the block at `height`. `Ok(Err(reason))` is a
/// vote refused for a reason the receipt reports (nothing is written);
/// `Err` is the state backend failing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn vote(
    world: &mut StateWorld,
    chain_id: u64,
    checkpoint_interval: u64,
    height: u64,
    sender: Address,
    epoch: u64,
    next: &[Validator],
    possession: &[Signature],
) -> Result<Result<VoteOutcome, String>, WorldError> {
    let next = match ValidatorSet::new(next.to_vec()) {
        Ok(set) => set,
        Err(e) => return Ok(Err(format!("the proposed validators are no set: {e}"))),
    };
    let next = &next;
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
    if pending(world)?.is_some() {
        return Ok(Err(format!("a change is already decided in epoch {epoch}")));
    }
    if next.hash() == current.hash() {
        return Ok(Err("the proposed set is the current set".into()));
    }
    let change = stele_types::validator_change_hash(chain_id, epoch, next);
    let newcomers: Vec<_> = next
        .validators()
        .iter()
        .filter(|v| current.index_of(&v.address).is_none())
        .collect();
    if possession.len() != newcomers.len() {
        return Ok(Err(format!(
            "{} possession proofs for {} new keys",
            possession.len(),
            newcomers.len()
        )));
    }
    for (v, proof) in newcomers.iter().zip(possession) {
        // Plain ECDSA, as the protocol fixed for vote proofs (a change
        // would make old blocks execute differently).
        if v.public_key.verify_ecdsa(&change, proof).is_err() {
            return Ok(Err(format!(
                "the possession proof of {} does not verify",
                v.address
            )));
        }
    }

    let mut ballot: Ballot = read(world, KEY_BALLOT)?.unwrap_or_default();
    if ballot.epoch != epoch {
        ballot = Ballot {
            epoch,
            ..Ballot::default()
        };
    }
    let set_hash = next.hash();
    let power = cast(
        &mut ballot.votes,
        &mut ballot.proposals,
        sender,
        (set_hash, next.clone()),
        &current,
    );
    let quorum = current.quorum_power();
    if power < quorum {
        world.system_put(system(KEY_BALLOT), ballot.to_bytes());
        return Ok(Ok(VoteOutcome::Counted { power, quorum }));
    }
    let k = checkpoint_interval.max(1);
    let last_height = height.div_ceil(k).saturating_mul(k);
    let decided = PendingChange {
        epoch,
        validators: next.clone(),
        decided_at: height,
        last_height,
    };
    world.system_delete(system(KEY_BALLOT));
    world.system_put(system(KEY_PENDING), decided.to_bytes());
    Ok(Ok(VoteOutcome::Decided { last_height }))
}

/// After the transactions of the block at `height`: at the epoch's last
/// height the decided set becomes the current one and the next epoch
/// starts with the next block. Returns the new epoch when one starts.
pub(crate) fn end_block(world: &mut StateWorld, height: u64) -> Result<Option<u64>, WorldError> {
    let Some(change) = pending(world)? else {
        return Ok(None);
    };
    if change.last_height != height {
        return Ok(None);
    }
    let next = EpochInfo {
        epoch: change.epoch.saturating_add(1),
        start_height: height.saturating_add(1),
    };
    world.system_put(system(KEY_VALIDATORS), change.validators.to_bytes());
    world.system_put(system(KEY_EPOCH), next.to_bytes());
    world.system_delete(system(KEY_PENDING));
    world.system_delete(system(KEY_BALLOT));
    Ok(Some(next.epoch))
}

/// The validator set a block's writes install, if they install one (the
/// block is an epoch's last): what its header's `next_validators_hash`
/// names instead of the current set's hash.
pub fn installed_set(writes: &stele_state::WriteSet) -> Result<Option<ValidatorSet>, WorldError> {
    match writes.get(&system(KEY_VALIDATORS)) {
        Some(Some(bytes)) => decode(bytes, &record_limits())
            .map(Some)
            .map_err(|e| WorldError::Backend(format!("installed validator set is corrupt: {e}"))),
        Some(None) => Err(WorldError::Backend(
            "a block deleted the validator set".into(),
        )),
        None => Ok(None),
    }
}

/// Whether `writes` change what [`epoch_on`] reads (the set, the epoch or
/// the decided change): otherwise the epoch after them is the one before,
/// and a caller that knows it need not read it again.
pub fn touches_epoch(writes: &stele_state::WriteSet) -> bool {
    [KEY_VALIDATORS, KEY_EPOCH, KEY_PENDING]
        .iter()
        .any(|k| writes.contains_key(&system(k)))
}

/// What a block on `base` belongs to: its epoch, the set that certifies
/// it, and the change decided so far in the epoch.
pub fn epoch_on(
    base: &super::world::StateBase,
) -> Result<(EpochInfo, ValidatorSet, Option<PendingChange>), WorldError> {
    let world = StateWorld::new(base.clone());
    Ok((epoch_info(&world)?, validators(&world)?, pending(&world)?))
}
