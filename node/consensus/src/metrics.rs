//! Counters of dropped and suspicious messages, exposed for the node's metrics.

/// Why messages were dropped, and how often; read with
/// [`Replica::counters`](crate::Replica::counters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages over `MessageLimits::message_bytes_max`.
    pub dropped_oversized: u64,
    /// Messages that were not a canonical encoding within the limits.
    pub dropped_malformed: u64,
    /// Signer index outside the validator set.
    pub dropped_non_validator: u64,
    /// Signature that does not verify for the claimed signer.
    pub dropped_bad_signature: u64,
    /// Message of another epoch (ADR 0010), dropped before any signature
    /// check. A node routes messages of the next epoch to that epoch's
    /// replica itself; what reaches a replica from another epoch is stale
    /// or early.
    pub dropped_wrong_epoch: u64,
    /// Message for a view this replica is not in (older, or too far ahead).
    pub dropped_wrong_view: u64,
    /// Sequence number outside the watermark window.
    pub dropped_out_of_window: u64,
    /// Well-formed and signed but invalid content (e.g. a PRE-PREPARE from a
    /// backup, a VIEW-CHANGE with a bad certificate, a NEW-VIEW whose O does
    /// not follow from its V).
    pub dropped_invalid: u64,
    /// Duplicates of messages already counted.
    pub duplicates: u64,
    /// PREPAREs for a slot already prepared in their view and COMMITs for a
    /// slot already committed-local (or committed), dropped without
    /// checking their signatures.
    pub unneeded_votes: u64,
    /// Conflicting signed messages from one signer (reported as evidence).
    pub equivocations: u64,
    /// Times this replica refused to sign a second value for one
    /// (view, seq, phase); nonzero only after a bug or a bad restart.
    pub double_sign_refused: u64,
}

impl Counters {
    /// These counts plus `other`'s (a node adds up its epochs' replicas).
    pub fn plus(&self, other: &Counters) -> Counters {
        Counters {
            dropped_oversized: self.dropped_oversized + other.dropped_oversized,
            dropped_malformed: self.dropped_malformed + other.dropped_malformed,
            dropped_non_validator: self.dropped_non_validator + other.dropped_non_validator,
            dropped_bad_signature: self.dropped_bad_signature + other.dropped_bad_signature,
            dropped_wrong_epoch: self.dropped_wrong_epoch + other.dropped_wrong_epoch,
            dropped_wrong_view: self.dropped_wrong_view + other.dropped_wrong_view,
            dropped_out_of_window: self.dropped_out_of_window + other.dropped_out_of_window,
            dropped_invalid: self.dropped_invalid + other.dropped_invalid,
            duplicates: self.duplicates + other.duplicates,
            unneeded_votes: self.unneeded_votes + other.unneeded_votes,
            equivocations: self.equivocations + other.equivocations,
            double_sign_refused: self.double_sign_refused + other.double_sign_refused,
        }
    }
}
