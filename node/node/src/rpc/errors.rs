//! JSON-RPC error objects with the codes of `stele_client::api::codes`.

use std::sync::atomic::{AtomicU64, Ordering};

use jsonrpsee::types::ErrorObjectOwned;
use stele_client::api::codes;

use super::size::TooLarge;
use crate::mempool::AdmitError;
use stele_exec::{ApplyError, TxRejection};

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

/// Numbers the internal errors of this process, so an answer and its log
/// line can be matched.
static INTERNAL_ERROR_IDS: AtomicU64 = AtomicU64::new(1);

/// A node-side failure. Its detail (storage or VM error text, paths) is
/// the operator's, not the caller's: it is logged once with an error id,
/// and the answer carries only that id.
pub(crate) fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(codes::INTERNAL, internal_message(log_internal(e)))
}

/// Logs a node-side failure once under a new error id; the id.
pub(crate) fn log_internal(e: impl std::fmt::Display) -> u64 {
    let id = INTERNAL_ERROR_IDS.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(error_id = id, error = %e, "rpc: internal error");
    id
}

/// What a client is told of the internal error logged as `id`.
pub(crate) fn internal_message(id: u64) -> String {
    format!(
        "internal error {id}: the node could not answer; its operator can find error_id={id} in the node's log"
    )
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
        e @ ApplyError::IterationUnavailable { .. } => {
            err(codes::ITERATION_UNAVAILABLE, e.to_string())
        }
        ApplyError::Backend(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Log lines written while `f` runs, and its result.
    fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let out = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        (out, text)
    }

    #[test]
    fn an_internal_error_answers_an_id_and_logs_the_detail_once() {
        let detail = "IO error: /var/lib/stele/data/000042.sst: wasm trap: out of bounds";
        let (e, log) = logged(|| internal(detail));
        assert_eq!(e.code(), codes::INTERNAL);
        let message = e.message();
        assert!(
            !message.contains("sst") && !message.contains("wasm"),
            "{message}"
        );
        assert!(e.data().is_none());
        let id = message
            .strip_prefix("internal error ")
            .and_then(|m| m.split(':').next())
            .unwrap();
        assert!(
            message.ends_with(&format!("error_id={id} in the node's log")),
            "{message}"
        );
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.contains(detail) && log.contains(&format!("error_id={id}")),
            "{log}"
        );
        // Each error has its own id.
        let (next, _) = logged(|| internal(detail));
        assert_ne!(next.message(), message);
    }
}
