//! Quorums by voting power. The paper counts replicas (2f + 1 of 3f + 1);
//! Stele weighs each validator by its power, so a quorum is more than two
//! thirds of the total power (`ValidatorSet::quorum_power`).

use stele_types::ValidatorSet;

use crate::message::ReplicaIndex;

/// The voting power of `signers`; an index outside the set counts zero.
pub(crate) fn power<'a>(
    validators: &ValidatorSet,
    signers: impl Iterator<Item = &'a ReplicaIndex>,
) -> u64 {
    signers
        .map(|s| validators.get(*s as usize).map_or(0, |v| v.power))
        .sum()
}

/// Whether `signers` hold a quorum (`ValidatorSet::quorum_power`).
pub(crate) fn is_quorum<'a>(
    validators: &ValidatorSet,
    signers: impl Iterator<Item = &'a ReplicaIndex>,
) -> bool {
    power(validators, signers) >= validators.quorum_power()
}
