//! The genesis: chain id, validators, initial balances and the protocol
//! parameters, read from `genesis.json`. Its state is version 0; block `h`
//! commits version `h`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use stele_state::WriteSet;
use stele_types::codec::Encode;
use stele_types::hex::serde_u128;
use stele_types::proof::{Namespace, StateKey};
use stele_types::{Address, Amount, Hash, ValidatorSet, keccak256};
use stele_vm::{GasSchedule, VmLimits};
use thiserror::Error;

use stele_exec::{Account, ExecutorConfig};

/// Why a genesis file was rejected.
#[derive(Debug, Error)]
pub enum GenesisError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("account {0} is allocated twice")]
    DuplicateAllocation(Address),
    #[error("total supply overflows u128")]
    SupplyOverflow,
    #[error("{field} must be positive")]
    NotPositive { field: &'static str },
    #[error("{field} is {value}, over the largest this node accepts ({max})")]
    OverLimit {
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("gas schedule version {got} is not supported (this node knows {supported:?})")]
    GasSchedule { got: u32, supported: Vec<u32> },
    #[error("VM limits version {got} is not supported (this node knows {supported:?})")]
    VmLimits { got: u32, supported: Vec<u32> },
    #[error("{0}")]
    GasAndLimits(String),
    #[error("{0}")]
    Params(String),
}

/// Largest `block_bytes_max` a genesis may set (64 MiB). A block travels
/// whole in one PRE-PREPARE, whose size limit the node derives from it
/// (twice it and some room), so a larger value would overflow those sizes
/// or ask validators to hold messages of gigabytes.
pub const BLOCK_BYTES_MAX_LIMIT: usize = stele_types::protocol::BLOCK_BYTES_MAX_LIMIT as usize;

/// The chain's first protocol parameters, and its checkpoint interval.
/// Validators change all but the checkpoint interval by vote, at an
/// activation height (ADR 0011); `block_bytes_max` and `block_txs_max`
/// only downwards from the genesis's, which nodes size their messages and
/// block decoding for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainParams {
    pub gas_schedule_version: u32,
    pub vm_limits_version: u32,
    /// Sum of the gas limits of a block's transactions. It bounds how long
    /// a block can take to execute: new chains get 400 M, which the
    /// slowest gas known under gas schedule V5 (a pointer chase over a
    /// V3 frame's 1 MiB, ~3.8 ns per gas on the 2-core reference machine)
    /// runs in ~1.5 s, inside the 2 s a block may take. It also caps a
    /// deploy: at 3 000 gas per byte, code up to ~130 KB.
    pub block_gas_max: u64,
    pub block_bytes_max: usize,
    pub block_txs_max: usize,
    pub tx_gas_base: u64,
    pub tx_gas_per_byte: u64,
    /// K: validators take a checkpoint every K blocks, and an epoch ends
    /// at the first multiple of K at or after the block that decided a
    /// change of validator set (ADR 0010). 16 unless the genesis says
    /// otherwise.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: u64,
    /// How long a replica waits for progress before it asks for a view
    /// change (2 s unless the genesis says otherwise), doubling per failed
    /// view up to `view_timeout_max_ms` (60 s). A node's config may
    /// override both for itself.
    #[serde(default = "default_view_timeout")]
    pub view_timeout_ms: u64,
    #[serde(default = "default_view_timeout_max")]
    pub view_timeout_max_ms: u64,
}

fn default_view_timeout() -> u64 {
    2_000
}

fn default_view_timeout_max() -> u64 {
    60_000
}

impl ChainParams {
    /// The parameters votes can change: what blocks execute under until
    /// the first upgrade activates.
    pub fn protocol(&self) -> stele_types::ProtocolParams {
        stele_types::ProtocolParams {
            gas_schedule_version: self.gas_schedule_version,
            vm_limits_version: self.vm_limits_version,
            block_gas_max: self.block_gas_max,
            block_bytes_max: self.block_bytes_max as u64,
            block_txs_max: self.block_txs_max as u64,
            tx_gas_base: self.tx_gas_base,
            tx_gas_per_byte: self.tx_gas_per_byte,
            view_timeout_ms: self.view_timeout_ms,
            view_timeout_max_ms: self.view_timeout_max_ms,
        }
    }
}

/// The checkpoint interval of a genesis that names none.
pub const CHECKPOINT_INTERVAL_DEFAULT: u64 = 16;
/// Largest checkpoint interval a genesis may set: the replica's window is
/// twice it, and every view change carries a window of certificates.
pub const CHECKPOINT_INTERVAL_MAX: u64 = 1_024;

fn default_checkpoint_interval() -> u64 {
    CHECKPOINT_INTERVAL_DEFAULT
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            gas_schedule_version: GasSchedule::LATEST.version,
            vm_limits_version: VmLimits::LATEST.version,
            block_gas_max: 400_000_000,
            block_bytes_max: 8 << 20,
            block_txs_max: 10_000,
            tx_gas_base: 21_000,
            tx_gas_per_byte: 16,
            checkpoint_interval: CHECKPOINT_INTERVAL_DEFAULT,
            view_timeout_ms: default_view_timeout(),
            view_timeout_max_ms: default_view_timeout_max(),
        }
    }
}

impl Encode for ChainParams {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.gas_schedule_version.encode_to(out);
        self.vm_limits_version.encode_to(out);
        self.block_gas_max.encode_to(out);
        (self.block_bytes_max as u64).encode_to(out);
        (self.block_txs_max as u64).encode_to(out);
        self.tx_gas_base.encode_to(out);
        self.tx_gas_per_byte.encode_to(out);
        self.checkpoint_interval.encode_to(out);
        self.view_timeout_ms.encode_to(out);
        self.view_timeout_max_ms.encode_to(out);
    }
}

/// An initial balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    pub address: Address,
    #[serde(with = "serde_u128")]
    pub balance: Amount,
}

/// The contents of `genesis.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: u64,
    /// Milliseconds since the Unix epoch; the first block's timestamp must
    /// be later.
    pub genesis_time_ms: u64,
    pub validators: ValidatorSet,
    pub allocations: Vec<Allocation>,
    pub params: ChainParams,
}

/// System keys written at genesis.
pub const KEY_VALIDATORS: &[u8] = b"validators";
pub const KEY_PARAMS: &[u8] = b"params";
pub const KEY_GENESIS: &[u8] = b"genesis";

impl Genesis {
    /// Reads and validates a genesis file.
    pub fn load(path: &Path) -> Result<Genesis, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let genesis: Genesis = serde_json::from_str(&text)?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// Checks the parameters and allocations.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let mut seen = BTreeSet::new();
        let mut supply: Amount = 0;
        for a in &self.allocations {
            if !seen.insert(a.address) {
                return Err(GenesisError::DuplicateAllocation(a.address));
            }
            supply = supply
                .checked_add(a.balance)
                .ok_or(GenesisError::SupplyOverflow)?;
        }
        let p = &self.params;
        for (field, value) in [
            ("checkpoint_interval", p.checkpoint_interval),
            ("block_gas_max", p.block_gas_max),
            ("block_bytes_max", p.block_bytes_max as u64),
            ("block_txs_max", p.block_txs_max as u64),
        ] {
            if value == 0 {
                return Err(GenesisError::NotPositive { field });
            }
        }
        if p.checkpoint_interval > CHECKPOINT_INTERVAL_MAX {
            return Err(GenesisError::OverLimit {
                field: "checkpoint_interval",
                value: p.checkpoint_interval,
                max: CHECKPOINT_INTERVAL_MAX,
            });
        }
        if p.block_bytes_max > BLOCK_BYTES_MAX_LIMIT {
            return Err(GenesisError::OverLimit {
                field: "block_bytes_max",
                value: p.block_bytes_max as u64,
                max: BLOCK_BYTES_MAX_LIMIT as u64,
            });
        }
        p.protocol().check().map_err(GenesisError::Params)?;
        if GasSchedule::by_version(p.gas_schedule_version).is_none() {
            return Err(GenesisError::GasSchedule {
                got: p.gas_schedule_version,
                supported: GasSchedule::ALL.iter().map(|g| g.version).collect(),
            });
        }
        let Some(limits) = VmLimits::by_version(p.vm_limits_version) else {
            return Err(GenesisError::VmLimits {
                got: p.vm_limits_version,
                supported: VmLimits::ALL.iter().map(|l| l.version).collect(),
            });
        };
        if let Some(gas) = GasSchedule::by_version(p.gas_schedule_version) {
            gas.check_limits(&limits)
                .map_err(GenesisError::GasAndLimits)?;
        }
        Ok(())
    }

    /// Sum of the initial balances.
    pub fn total_supply(&self) -> Amount {
        self.allocations.iter().map(|a| a.balance).sum()
    }

    /// The writes of version 0: accounts, the validator set, the parameters.
    pub fn writes(&self) -> WriteSet {
        let mut writes = WriteSet::new();
        for a in &self.allocations {
            let account = Account {
                nonce: 0,
                balance: a.balance,
                code_hash: None,
            };
            writes.insert(StateKey::account(&a.address), Some(account.to_bytes()));
        }
        let system = |k: &[u8]| StateKey::new(Namespace::System, k.to_vec());
        debug_assert_eq!(KEY_VALIDATORS, stele_exec::governance::KEY_VALIDATORS);
        writes.insert(system(KEY_VALIDATORS), Some(self.validators.to_bytes()));
        writes.insert(system(KEY_PARAMS), Some(self.params.to_bytes()));
        let mut header = self.chain_id.to_le_bytes().to_vec();
        header.extend_from_slice(&self.genesis_time_ms.to_le_bytes());
        writes.insert(system(KEY_GENESIS), Some(header));
        writes
    }

    /// Identifies this genesis: nodes with different genesis hashes are on
    /// different chains.
    pub fn hash(&self) -> Hash {
        let mut bytes = Vec::new();
        for (k, v) in self.writes() {
            k.encode_to(&mut bytes);
            stele_types::codec::put_option(&mut bytes, &v.map(Bytes));
        }
        keccak256(&bytes)
    }

    /// The VM configuration this genesis fixes: its gas schedule and limits
    /// (`validate` checked that this build has them).
    pub fn vm_config(&self) -> Result<stele_vm::VmConfig, GenesisError> {
        let p = &self.params;
        let gas = GasSchedule::by_version(p.gas_schedule_version).ok_or_else(|| {
            GenesisError::GasSchedule {
                got: p.gas_schedule_version,
                supported: GasSchedule::ALL.iter().map(|g| g.version).collect(),
            }
        })?;
        let limits =
            VmLimits::by_version(p.vm_limits_version).ok_or_else(|| GenesisError::VmLimits {
                got: p.vm_limits_version,
                supported: VmLimits::ALL.iter().map(|l| l.version).collect(),
            })?;
        Ok(stele_vm::VmConfig {
            gas,
            limits,
            ..stele_vm::VmConfig::default()
        })
    }

    /// The executor parameters this genesis fixes.
    pub fn executor_config(&self) -> ExecutorConfig {
        let p = &self.params;
        ExecutorConfig {
            chain_id: self.chain_id,
            protocol: p.protocol(),
            sig_cache_entries_max: 100_000,
            checkpoint_interval: p.checkpoint_interval,
            record_storage_writes: false,
        }
    }
}

struct Bytes(Vec<u8>);

impl Encode for Bytes {
    fn encode_to(&self, out: &mut Vec<u8>) {
        stele_types::codec::put_bytes(out, &self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stele_types::{SecretKey, Validator};

    fn genesis(block_bytes_max: usize) -> Genesis {
        let key = SecretKey::generate();
        Genesis {
            chain_id: 1,
            genesis_time_ms: 0,
            validators: ValidatorSet::new(vec![Validator {
                address: key.public_key().address(),
                public_key: key.public_key(),
                power: 1,
            }])
            .expect("one validator"),
            allocations: Vec::new(),
            params: ChainParams {
                block_bytes_max,
                ..ChainParams::default()
            },
        }
    }

    #[test]
    fn block_bytes_max_is_accepted_up_to_its_limit_and_refused_over_it() {
        assert!(genesis(BLOCK_BYTES_MAX_LIMIT).validate().is_ok());
        for over in [BLOCK_BYTES_MAX_LIMIT + 1, usize::MAX] {
            let err = genesis(over).validate().expect_err("over the limit");
            assert!(
                matches!(
                    err,
                    GenesisError::OverLimit {
                        field: "block_bytes_max",
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
}
