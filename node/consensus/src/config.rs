//! Replica configuration and message size limits.

use stele_types::{Hash, Limits, ValidatorSet};
use thiserror::Error;

/// Why a replica could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("checkpoint interval must be positive")]
    ZeroCheckpointInterval,
    #[error("window of {window} must be at least twice the checkpoint interval {interval}")]
    WindowTooSmall { window: u64, interval: u64 },
    #[error("pipeline depth {0} must be in 1..=window")]
    BadPipeline(u64),
    #[error("view timeouts must be positive with max >= base")]
    BadTimeouts,
    #[error("message limits must admit a full window of certificates and every validator")]
    LimitsTooSmall,
    #[error("the key is not in the validator set")]
    NotAValidator,
    #[error("an epoch must start after a checkpoint, not after height {0}")]
    BaseNotCheckpoint(u64),
}

/// Maximum sizes accepted when decoding a consensus message from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLimits {
    /// Largest encoded message; anything longer is dropped before decoding.
    pub message_bytes_max: usize,
    /// Largest block payload in a PRE-PREPARE or prepared certificate.
    pub payload_bytes_max: usize,
    /// Most signatures in a proof, and most view changes in a NEW-VIEW.
    pub validators_max: usize,
    /// Most prepared certificates in a VIEW-CHANGE (the watermark window).
    pub window_seqs_max: u64,
}

impl MessageLimits {
    /// The per-field limits as a count usable for decoding.
    pub fn window_max(&self) -> usize {
        usize::try_from(self.window_seqs_max).unwrap_or(usize::MAX)
    }

    /// Limits for the underlying codec reader.
    pub fn codec_limits(&self) -> Limits {
        Limits {
            input_bytes_max: self.message_bytes_max,
            validators_max: self.validators_max,
            ..Limits::DEFAULT
        }
    }
}

/// Everything a replica needs to know that does not change while it runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub chain_id: u64,
    /// The epoch this replica runs (ADR 0010). Its validator set is fixed;
    /// every message it signs or accepts names this epoch.
    pub epoch: u64,
    pub validators: ValidatorSet,
    /// The block the epoch builds on: the genesis (height 0) for epoch 0,
    /// the previous epoch's last block after that. It is the replica's
    /// first stable checkpoint, held without signatures.
    pub base_seq: u64,
    pub base_hash: Hash,
    /// K: a checkpoint is taken every K committed blocks (§4.3).
    pub checkpoint_interval_seqs: u64,
    /// L: the primary assigns sequence numbers in (h, h + L] where h is the
    /// stable checkpoint (the watermarks of §4.2). At least 2K, so the
    /// window never closes while the next checkpoint stabilises.
    pub window_seqs: u64,
    /// Most blocks the primary has proposed but not committed.
    pub pipeline_blocks_max: u64,
    /// View timer for the first attempt; doubled on every view change that
    /// does not lead to a commit (§4.5.2).
    pub view_timeout_ms: u64,
    /// Cap on the doubled view timer.
    pub view_timeout_max_ms: u64,
    /// How far ahead of its current view a replica buffers messages.
    pub views_ahead_max: u64,
    /// Limits on decoding peer messages.
    pub limits: MessageLimits,
}

impl Config {
    /// A configuration for epoch 0 with the defaults used by the node; only
    /// the chain, the validator set and the genesis hash must be given.
    pub fn new(chain_id: u64, validators: ValidatorSet, genesis_hash: Hash) -> Config {
        let n = validators.len();
        Config {
            chain_id,
            epoch: 0,
            validators,
            base_seq: 0,
            base_hash: genesis_hash,
            checkpoint_interval_seqs: 16,
            window_seqs: 32,
            pipeline_blocks_max: 4,
            view_timeout_ms: 2_000,
            view_timeout_max_ms: 60_000,
            views_ahead_max: 8,
            limits: MessageLimits {
                message_bytes_max: 32 << 20,
                payload_bytes_max: 8 << 20,
                validators_max: n,
                window_seqs_max: 32,
            },
        }
    }

    /// The same parameters for `epoch`, run by `validators` on top of the
    /// block `base_hash` at `base_seq` (the previous epoch's last block).
    pub fn for_epoch(
        &self,
        epoch: u64,
        validators: ValidatorSet,
        base_seq: u64,
        base_hash: Hash,
    ) -> Config {
        let mut cfg = self.clone();
        cfg.epoch = epoch;
        cfg.limits.validators_max = cfg.limits.validators_max.max(validators.len());
        cfg.validators = validators;
        cfg.base_seq = base_seq;
        cfg.base_hash = base_hash;
        cfg
    }

    /// Checks the relations between the parameters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.checkpoint_interval_seqs == 0 {
            return Err(ConfigError::ZeroCheckpointInterval);
        }
        if !self.base_seq.is_multiple_of(self.checkpoint_interval_seqs) {
            return Err(ConfigError::BaseNotCheckpoint(self.base_seq));
        }
        if self.window_seqs < 2 * self.checkpoint_interval_seqs {
            return Err(ConfigError::WindowTooSmall {
                window: self.window_seqs,
                interval: self.checkpoint_interval_seqs,
            });
        }
        if self.pipeline_blocks_max == 0 || self.pipeline_blocks_max > self.window_seqs {
            return Err(ConfigError::BadPipeline(self.pipeline_blocks_max));
        }
        if self.view_timeout_ms == 0 || self.view_timeout_max_ms < self.view_timeout_ms {
            return Err(ConfigError::BadTimeouts);
        }
        if self.limits.window_seqs_max < self.window_seqs
            || self.limits.validators_max < self.validators.len()
        {
            return Err(ConfigError::LimitsTooSmall);
        }
        Ok(())
    }
}
