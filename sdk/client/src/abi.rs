//! ABI-aware calls: JSON arguments encoded, and return values, reverts and
//! events decoded, by the contract's ABI (`stele-abi`), which the node
//! serves from the code's `stele_abi` custom section.

use serde_json::Value;
pub use stele_abi::{Abi, AbiError, DecodedEvent, Revert};
use stele_types::{Address, ExecStatus, Transaction};

use crate::client::{Client, ClientError};
use crate::tx::TxBuilder;

/// A call's outcome decoded by the ABI.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Success: the return value as JSON.
    Returned(Value),
    /// The contract reverted: its message, typed error or raw payload.
    Reverted(Revert),
    /// Out of gas, trapped or failed: the VM's message.
    Failed { status: ExecStatus, message: String },
}

/// Decodes a call's `status` and `output` for `method` of `abi`.
pub fn decode_outcome(
    abi: &Abi,
    method: &str,
    status: ExecStatus,
    output: &[u8],
) -> Result<Decoded, AbiError> {
    Ok(match status {
        ExecStatus::Success => Decoded::Returned(abi.decode_return(method, output)?),
        ExecStatus::Reverted => Decoded::Reverted(abi.decode_revert(method, output)?),
        status => Decoded::Failed {
            status,
            message: stele_abi::output_text(output),
        },
    })
}

/// A call transaction with `args` (a JSON object by name or array by
/// position) encoded by the ABI.
pub fn call_tx(
    abi: &Abi,
    builder: &TxBuilder,
    contract: Address,
    method: &str,
    args: &Value,
    value: stele_types::Amount,
) -> Result<Transaction, AbiError> {
    let encoded = abi.encode_args(method, args)?;
    Ok(builder.call(contract, method, encoded, value))
}

impl Client {
    /// The ABI embedded in the contract's code.
    pub async fn get_abi(&self, contract: Address) -> Result<Abi, ClientError> {
        let info = self.get_contract(contract).await?;
        let raw = info.abi_raw.ok_or(ClientError::NoAbi(contract))?;
        Ok(Abi::from_json(&raw.0)?)
    }

    /// A read-only call with JSON arguments, decoded by the ABI.
    pub async fn call_view_json(
        &self,
        abi: &Abi,
        contract: Address,
        method: &str,
        args: &Value,
        height: Option<u64>,
    ) -> Result<Decoded, ClientError> {
        let encoded = abi.encode_args(method, args)?;
        let r = self.call_view(contract, method, &encoded, height).await?;
        Ok(decode_outcome(abi, method, r.status, &r.output.0)?)
    }
}
