//! Receipts and events: the outcome of executing one transaction.

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::codec::{Decode, DecodeError, Encode, Reader, put_bytes, put_option, put_seq};
use crate::hash::{Hash, domain, keccak256_parts};
use crate::hex::serde_bytes;

/// How a transaction's execution ended. The codes are part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecStatus {
    /// Ran to completion; `output` is the return data.
    Success = 0,
    /// The contract reverted; `output` is its revert payload.
    Reverted = 1,
    /// Gas ran out; all writes were rolled back.
    OutOfGas = 2,
    /// The contract trapped (unreachable, out-of-bounds access, stack limit);
    /// `output` is a deterministic message.
    Trapped = 3,
    /// Execution failed before or around the contract (no such contract or
    /// method, insufficient funds for the attached value, depth limit, ...);
    /// `output` is a deterministic message.
    Failed = 4,
}

impl ExecStatus {
    pub fn is_success(self) -> bool {
        self == ExecStatus::Success
    }
}

impl Encode for ExecStatus {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

impl Decode for ExecStatus {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("exec status")? {
            0 => ExecStatus::Success,
            1 => ExecStatus::Reverted,
            2 => ExecStatus::OutOfGas,
            3 => ExecStatus::Trapped,
            4 => ExecStatus::Failed,
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "exec status",
                    tag,
                });
            }
        })
    }
}

/// A log entry emitted by a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The contract that emitted it.
    pub contract: Address,
    /// Indexed topics; the first is conventionally the event's name hash.
    pub topics: Vec<Hash>,
    /// Unindexed payload.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl Encode for Event {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.contract.encode_to(out);
        put_seq(out, &self.topics);
        put_bytes(out, &self.data);
    }
}

impl Decode for Event {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let limits = r.limits();
        Ok(Event {
            contract: Address::decode_from(r)?,
            topics: r.seq(
                limits.event_topics_max,
                32,
                "event topics",
                Hash::decode_from,
            )?,
            data: r.bytes(limits.event_data_bytes_max, "event data")?,
        })
    }
}

/// The outcome of one transaction in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub tx_hash: Hash,
    pub status: ExecStatus,
    pub gas_used: u64,
    /// Events, empty unless `status` is `Success`.
    pub events: Vec<Event>,
    /// Return data on success, the revert payload or failure message otherwise.
    #[serde(with = "serde_bytes")]
    pub output: Vec<u8>,
    /// The new contract's address, for a successful deploy.
    pub contract_address: Option<Address>,
}

impl Receipt {
    /// Hash committed to by the block's receipts root.
    pub fn hash(&self) -> Hash {
        keccak256_parts(&[domain::RECEIPT, &self.to_bytes()])
    }
}

impl Encode for Receipt {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.tx_hash.encode_to(out);
        self.status.encode_to(out);
        self.gas_used.encode_to(out);
        put_seq(out, &self.events);
        put_bytes(out, &self.output);
        put_option(out, &self.contract_address);
    }
}

impl Decode for Receipt {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let limits = r.limits();
        Ok(Receipt {
            tx_hash: Hash::decode_from(r)?,
            status: ExecStatus::decode_from(r)?,
            gas_used: r.u64("gas used")?,
            events: r.seq(
                limits.receipt_events_max,
                28,
                "receipt events",
                Event::decode_from,
            )?,
            output: r.bytes(limits.output_bytes_max, "receipt output")?,
            contract_address: r.option("contract address", Address::decode_from)?,
        })
    }
}
