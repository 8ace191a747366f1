//! The protocol parameters a chain executes under, which its validators
//! change by vote at an activation height (ADR 0011).

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::hash::{Hash, keccak256};

/// What every node must agree on to execute and certify the same blocks,
/// other than the validator set: the VM's gas schedule and limits (by
/// version: their contents are compiled into the node), the block limits,
/// the intrinsic gas and the consensus timeouts. The genesis fixes the
/// first; a [`TxPayload::VoteUpgrade`](crate::TxPayload::VoteUpgrade)
/// decided by more than two thirds of an epoch's power schedules the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolParams {
    pub gas_schedule_version: u32,
    pub vm_limits_version: u32,
    /// Sum of the gas limits of a block's transactions.
    pub block_gas_max: u64,
    /// Encoded transaction bytes in a block.
    pub block_bytes_max: u64,
    pub block_txs_max: u64,
    /// Gas every transaction pays before any code runs...
    pub tx_gas_base: u64,
    /// ...plus this much per byte of its encoding.
    pub tx_gas_per_byte: u64,
    /// How long a replica waits for progress before it asks for a view
    /// change, doubling per failed view up to the max.
    pub view_timeout_ms: u64,
    pub view_timeout_max_ms: u64,
}

/// Largest `block_bytes_max` any parameters may set (64 MiB): a block
/// travels whole in one PRE-PREPARE, whose size limit a node derives from
/// it.
pub const BLOCK_BYTES_MAX_LIMIT: u64 = 64 << 20;
/// Largest view timeout any parameters may set (one hour).
pub const VIEW_TIMEOUT_MAX_LIMIT_MS: u64 = 3_600_000;
/// Smallest base view timeout: below it an idle primary's empty blocks
/// (every 500 ms by default) would not beat the timer, and views would
/// change while nothing is wrong.
pub const VIEW_TIMEOUT_MIN_MS: u64 = 1_000;

impl ProtocolParams {
    /// Gas charged for a transaction of `encoded_len` bytes before any code
    /// runs.
    pub fn intrinsic_gas(&self, encoded_len: usize) -> u64 {
        self.tx_gas_base
            .saturating_add(self.tx_gas_per_byte.saturating_mul(encoded_len as u64))
    }

    /// Checks everything but the versions (which only a node can check
    /// against what it was built with): the same rules for every node, so
    /// a vote is refused or counted alike everywhere.
    pub fn check(&self) -> Result<(), String> {
        for (field, value) in [
            ("block_gas_max", self.block_gas_max),
            ("block_bytes_max", self.block_bytes_max),
            ("block_txs_max", self.block_txs_max),
            ("view_timeout_ms", self.view_timeout_ms),
        ] {
            if value == 0 {
                return Err(format!("{field} must be positive"));
            }
        }
        if self.block_bytes_max > BLOCK_BYTES_MAX_LIMIT {
            return Err(format!(
                "block_bytes_max is {}, over the largest allowed ({BLOCK_BYTES_MAX_LIMIT})",
                self.block_bytes_max
            ));
        }
        if self.view_timeout_ms < VIEW_TIMEOUT_MIN_MS {
            return Err(format!(
                "view_timeout_ms is {}, under the smallest allowed ({VIEW_TIMEOUT_MIN_MS})",
                self.view_timeout_ms
            ));
        }
        if self.view_timeout_max_ms < self.view_timeout_ms {
            return Err(format!(
                "view_timeout_max_ms ({}) is below view_timeout_ms ({})",
                self.view_timeout_max_ms, self.view_timeout_ms
            ));
        }
        if self.view_timeout_max_ms > VIEW_TIMEOUT_MAX_LIMIT_MS {
            return Err(format!(
                "view_timeout_max_ms is {}, over the largest allowed ({VIEW_TIMEOUT_MAX_LIMIT_MS})",
                self.view_timeout_max_ms
            ));
        }
        Ok(())
    }

    /// Keccak-256 of the encoding: what votes for these parameters name.
    pub fn hash(&self) -> Hash {
        keccak256(&self.to_bytes())
    }
}

impl Encode for ProtocolParams {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.gas_schedule_version.encode_to(out);
        self.vm_limits_version.encode_to(out);
        self.block_gas_max.encode_to(out);
        self.block_bytes_max.encode_to(out);
        self.block_txs_max.encode_to(out);
        self.tx_gas_base.encode_to(out);
        self.tx_gas_per_byte.encode_to(out);
        self.view_timeout_ms.encode_to(out);
        self.view_timeout_max_ms.encode_to(out);
    }
}

impl Decode for ProtocolParams {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProtocolParams {
            gas_schedule_version: r.u32("gas schedule version")?,
            vm_limits_version: r.u32("VM limits version")?,
            block_gas_max: r.u64("block gas max")?,
            block_bytes_max: r.u64("block bytes max")?,
            block_txs_max: r.u64("block txs max")?,
            tx_gas_base: r.u64("tx gas base")?,
            tx_gas_per_byte: r.u64("tx gas per byte")?,
            view_timeout_ms: r.u64("view timeout")?,
            view_timeout_max_ms: r.u64("view timeout max")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Limits, decode};

    fn params() -> ProtocolParams {
        ProtocolParams {
            gas_schedule_version: 5,
            vm_limits_version: 3,
            block_gas_max: 400_000_000,
            block_bytes_max: 8 << 20,
            block_txs_max: 10_000,
            tx_gas_base: 21_000,
            tx_gas_per_byte: 16,
            view_timeout_ms: 2_000,
            view_timeout_max_ms: 60_000,
        }
    }

    #[test]
    fn the_encoding_is_pinned() {
        let p = params();
        let bytes = p.to_bytes();
        assert_eq!(bytes.len(), 4 + 4 + 7 * 8);
        assert_eq!(
            hex::encode(&bytes),
            "05000000030000000084d71700000000000080000000000010270000000000000852000000000000\
             1000000000000000d00700000000000060ea000000000000"
        );
        assert_eq!(
            decode::<ProtocolParams>(&bytes, &Limits::DEFAULT).unwrap(),
            p
        );
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<ProtocolParams>(&long, &Limits::DEFAULT).is_err());
        assert!(decode::<ProtocolParams>(&bytes[..bytes.len() - 1], &Limits::DEFAULT).is_err());
    }

    #[test]
    fn checks_refuse_what_no_chain_can_run() {
        assert_eq!(params().check(), Ok(()));
        let bad = [
            ProtocolParams {
                block_gas_max: 0,
                ..params()
            },
            ProtocolParams {
                block_txs_max: 0,
                ..params()
            },
            ProtocolParams {
                block_bytes_max: 0,
                ..params()
            },
            ProtocolParams {
                block_bytes_max: BLOCK_BYTES_MAX_LIMIT + 1,
                ..params()
            },
            ProtocolParams {
                view_timeout_ms: 0,
                ..params()
            },
            ProtocolParams {
                view_timeout_ms: 999,
                ..params()
            },
            ProtocolParams {
                view_timeout_max_ms: 1_999,
                ..params()
            },
            ProtocolParams {
                view_timeout_max_ms: VIEW_TIMEOUT_MAX_LIMIT_MS + 1,
                ..params()
            },
        ];
        for p in bad {
            assert!(p.check().is_err(), "{p:?}");
        }
    }
}
