//! What a call, deploy or view did, with decoding helpers. Helpers that
//! expect one outcome panic with the actual one (decoded) otherwise: they
//! are test assertions.

use std::sync::Arc;

use borsh::BorshDeserialize;
use serde_json::Value;
use stele_abi::{Abi, DecodedEvent, Revert};
use stele_types::{Event, ExecStatus};
use stele_vm::CallTrace;

use crate::Address;

/// The result of one transaction or view.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: ExecStatus,
    /// Gas the transaction paid for (intrinsic gas included); for a view,
    /// the VM's gas.
    pub gas_used: u64,
    /// Return data, revert payload or the VM's failure message.
    pub output: Vec<u8>,
    /// Events of a successful transaction, in order.
    pub events: Vec<Event>,
    /// The new contract, for a successful deploy.
    pub contract_address: Option<Address>,
    /// Nested calls with gas per frame, and the debug log lines of each.
    pub trace: Option<CallTrace>,
    pub(crate) method: String,
    pub(crate) abi: Option<Arc<Abi>>,
    /// ABIs of every contract the chain deployed, to decode events.
    pub(crate) abis: Vec<(Address, Arc<Abi>)>,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        self.status == ExecStatus::Success
    }

    /// The debug log lines (`stele_sdk::log!`) of every frame, in the
    /// order they were written.
    pub fn logs(&self) -> Vec<String> {
        self.trace
            .as_ref()
            .map(|t| {
                t.logs_in_order()
                    .into_iter()
                    .map(|(_, line)| line.to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A readable account of a failed outcome, with its debug log lines.
    pub fn describe(&self) -> String {
        let reason = match self.status {
            ExecStatus::Reverted => match self.revert() {
                Revert::Message(m) => format!("message {m:?}"),
                Revert::Error(v) => format!("error {v}"),
                Revert::Raw(b) => format!("raw payload {}", stele_types::hex::encode(&b)),
            },
            _ => String::from_utf8_lossy(&self.output).into_owned(),
        };
        let mut text = format!("`{}` ended {:?}: {reason}", self.method, self.status);
        for line in self.logs() {
            text.push_str("\n  log: ");
            text.push_str(&line);
        }
        text
    }

    /// Asserts success.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert!(self.is_success(), "{}", self.describe());
        self
    }

    /// The return value, Borsh-decoded; asserts success.
    #[track_caller]
    pub fn decode<T: BorshDeserialize>(&self) -> T {
        self.success();
        match T::try_from_slice(&self.output) {
            Ok(v) => v,
            Err(e) => panic!(
                "`{}` returned bytes that do not decode as the type: {e}",
                self.method
            ),
        }
    }

    /// The return value as JSON, decoded with the contract's ABI; asserts
    /// success.
    #[track_caller]
    pub fn json(&self) -> Value {
        self.success();
        let abi = self.abi.as_ref().expect("the contract's ABI is known");
        match abi.decode_return(&self.method, &self.output) {
            Ok(v) => v,
            Err(e) => panic!("`{}` return: {e}", self.method),
        }
    }

    /// The address of a deployed contract; asserts success.
    #[track_caller]
    pub fn address(&self) -> Address {
        self.success();
        self.contract_address
            .expect("a successful deploy has an address")
    }

    /// The decoded revert payload; asserts the outcome reverted.
    #[track_caller]
    pub fn revert(&self) -> Revert {
        assert_eq!(
            self.status,
            ExecStatus::Reverted,
            "`{}` did not revert: {:?}",
            self.method,
            self.status
        );
        match &self.abi {
            Some(abi) => match abi.decode_revert(&self.method, &self.output) {
                Ok(r) => r,
                Err(e) => panic!("`{}` revert payload: {e}", self.method),
            },
            None => Revert::Raw(self.output.clone()),
        }
    }

    /// The revert message (tag 0); asserts the outcome reverted with one.
    #[track_caller]
    pub fn revert_message(&self) -> String {
        match self.revert() {
            Revert::Message(m) => m,
            other => panic!("`{}` reverted with {other:?}, not a message", self.method),
        }
    }

    /// The typed error (tag 1), Borsh-decoded; asserts the outcome reverted
    /// with one.
    #[track_caller]
    pub fn revert_error<E: BorshDeserialize>(&self) -> E {
        assert_eq!(self.status, ExecStatus::Reverted, "{}", self.describe());
        match self.output.split_first() {
            Some((&stele_abi::REVERT_ERROR, body)) => match E::try_from_slice(body) {
                Ok(e) => e,
                Err(e) => panic!("`{}` error does not decode as the type: {e}", self.method),
            },
            _ => panic!("{}: not a typed error", self.describe()),
        }
    }

    /// Asserts a failure status (out of gas, trapped, failed) whose VM
    /// message contains `part`.
    #[track_caller]
    pub fn assert_failure(&self, status: ExecStatus, part: &str) {
        let msg = String::from_utf8_lossy(&self.output);
        assert!(
            self.status == status && msg.contains(part),
            "expected {status:?} with {part:?}, got {}",
            self.describe()
        );
    }

    /// Events decoded with the ABI of the contract that emitted each.
    #[track_caller]
    pub fn decoded_events(&self) -> Vec<DecodedEvent> {
        self.events
            .iter()
            .map(|e| {
                let from = Address(e.contract.0);
                let abi = self
                    .abis
                    .iter()
                    .find(|(a, _)| *a == from)
                    .map(|(_, abi)| abi)
                    .expect("event from a contract this chain deployed");
                let topics: Vec<[u8; 32]> = e.topics.iter().map(|t| t.0).collect();
                match abi.decode_event(&topics, &e.data) {
                    Ok(d) => d,
                    Err(err) => panic!("event of {from:?}: {err}"),
                }
            })
            .collect()
    }
}
