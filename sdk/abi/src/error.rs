//! Why an ABI could not be read or a value could not be converted.

use thiserror::Error;

/// Every failure of this crate, with the path of the offending value
/// (`arg \`amount\``, `return.owner`, ...) where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AbiError {
    #[error("not a valid Wasm module: {0}")]
    InvalidWasm(String),
    #[error("the module has no `stele_abi` custom section")]
    NoAbiSection,
    #[error("the module has more than one `stele_abi` custom section")]
    DuplicateAbiSection,
    #[error("the `stele_abi` section is {len} bytes, over the maximum of {max}")]
    AbiTooLarge { len: usize, max: usize },
    #[error("the ABI is not valid JSON for this format: {0}")]
    InvalidJson(String),
    #[error("the ABI is inconsistent: {0}")]
    Invalid(String),
    #[error("the contract has no method `{0}`")]
    UnknownMethod(String),
    #[error("{path}: {msg}")]
    Value { path: String, msg: String },
    #[error("{path}: {msg}")]
    Decode { path: String, msg: String },
    #[error("no event of this contract has the first topic {0}")]
    UnknownEvent(String),
}
