//! JSON-RPC error objects with the codes of `stele_client::api::codes`.

use jsonrpsee::types::ErrorObjectOwned;
use stele_client::api::codes;

use super::size::TooLarge;
use crate::exec::{ApplyError, TxRejection};
use crate::mempool::AdmitError;

pub(crate) fn err(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

pub(crate) fn not_found(what: impl std::fmt::Display) -> ErrorObjectOwned {
    err(codes::NOT_FOUND, format!("{what} not found"))
}

pub(crate) fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    err(codes::INVALID_ARGUMENT, message)
}

/// An answer over the response limit that cannot be cut; `hint` says what
/// to call instead.
pub(crate) fn too_large(e: &TooLarge, hint: &str) -> ErrorObjectOwned {
    let message = if hint.is_empty() {
        e.to_string()
    } else {
        format!("{e}; {hint}")
    };
    err(codes::RESPONSE_TOO_LARGE, message)
}

/// A node-side failure; the message is logged and reported.
pub(crate) fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    tracing::warn!(error = %e, "rpc: internal error");
    err(codes::INTERNAL, format!("internal error: {e}"))
}

/// The code naming each mempool rejection; the message is the error's.
pub(crate) fn admit(e: &AdmitError) -> ErrorObjectOwned {
    let code = match e {
        AdmitError::TooLarge { .. } => codes::TX_TOO_LARGE,
        AdmitError::Malformed(_) => codes::TX_MALFORMED,
        AdmitError::WrongChain { .. } => codes::TX_WRONG_CHAIN,
        AdmitError::BadSignature(_) => codes::TX_BAD_SIGNATURE,
        AdmitError::NotSignedBy(_) => codes::TX_NOT_SIGNED_BY,
        AdmitError::AlreadyKnown(_) => codes::TX_ALREADY_KNOWN,
        AdmitError::NonceTooLow { .. } => codes::TX_NONCE_TOO_LOW,
        AdmitError::NonceTooHigh { .. } => codes::TX_NONCE_TOO_HIGH,
        AdmitError::InsufficientFunds { .. } => codes::TX_INSUFFICIENT_FUNDS,
        AdmitError::GasLimitOverBlock { .. } => codes::TX_GAS_LIMIT_OVER_BLOCK,
        AdmitError::GasBelowIntrinsic { .. } => codes::TX_GAS_BELOW_INTRINSIC,
        AdmitError::GasPriceTooLow { .. } => codes::TX_GAS_PRICE_TOO_LOW,
        AdmitError::ReplacementUnderpriced { .. } => codes::TX_REPLACEMENT_UNDERPRICED,
        AdmitError::SenderFull { .. } => codes::TX_SENDER_FULL,
        AdmitError::GappedBytesOver { .. } => codes::TX_GAPPED_BYTES_OVER,
        AdmitError::Full { .. } => codes::TX_MEMPOOL_FULL,
    };
    err(code, e.to_string())
}

pub(crate) fn apply(e: ApplyError) -> ErrorObjectOwned {
    match e {
        ApplyError::Rejected(r @ TxRejection::Signature(_)) => {
            err(codes::TX_BAD_SIGNATURE, r.to_string())
        }
        ApplyError::Rejected(r) => err(codes::TX_REJECTED, r.to_string()),
        ApplyError::Backend(e) => internal(e),
    }
}
