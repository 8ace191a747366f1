//! The executing frame's context, native transfers and reverts.

use alloc::vec::Vec;

use borsh::BorshSerialize;

use crate::{Address, Amount, sys};

/// Direct caller of this frame (an account, or a contract calling us).
pub fn caller() -> Address {
    Address(sys::caller())
}

/// Signer of the transaction.
pub fn origin() -> Address {
    Address(sys::origin())
}

/// This contract's address.
pub fn self_address() -> Address {
    Address(sys::self_address())
}

/// Native value attached to this frame (already credited to this contract).
pub fn value() -> Amount {
    sys::value()
}

/// Height of the block being executed.
pub fn block_height() -> u64 {
    sys::block_height()
}

/// Block timestamp in milliseconds since the Unix epoch.
pub fn block_timestamp_ms() -> u64 {
    sys::block_timestamp()
}

/// The chain id.
pub fn chain_id() -> u64 {
    sys::chain_id()
}

/// Hash of the executing transaction.
pub fn tx_hash() -> [u8; 32] {
    sys::tx_hash()
}

/// Gas left in this frame.
pub fn gas_left() -> u64 {
    sys::gas_left()
}

/// Native balance of `who`.
pub fn balance(who: &Address) -> Amount {
    sys::balance(&who.0)
}

/// Why a native transfer did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsufficientBalance;

/// Moves `amount` of this contract's native balance to `to` (runs no code
/// at `to`).
pub fn transfer(to: &Address, amount: Amount) -> Result<(), InsufficientBalance> {
    if sys::transfer(&to.0, amount) {
        Ok(())
    } else {
        Err(InsufficientBalance)
    }
}

/// Longest debug log line the VM takes; [`log`] cuts longer ones here.
pub const LOG_BYTES_MAX: usize = 4096;

/// Writes `line` to the debug log (host function `debug_log`, paid like an
/// event with no topic: 500 gas plus 4 per byte under `GasSchedule::V5`,
/// see `docs/vm.md`). The line is never stored on chain: a block's
/// execution drops it, while a simulation (`stele call`,
/// `simulate_transaction`), a replay (`stele tx HASH --trace`) and the
/// testkit show it in the call trace. A line over [`LOG_BYTES_MAX`] bytes is cut at a character boundary. Works
/// in views too. The chain must run VM limits 4 or later: older ones refuse
/// to deploy a module that imports `debug_log`. For formatted lines, see
/// [`crate::log!`].
pub fn log(line: &str) {
    let mut end = line.len().min(LOG_BYTES_MAX);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    sys::debug_log(&line.as_bytes()[..end]);
}

/// Keccak-256 of `data` (host function, metered).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    sys::keccak256(data)
}

/// SHA3-256 (FIPS 202) of `data` (host function, metered).
pub fn sha3_256(data: &[u8]) -> [u8; 32] {
    sys::sha3_256(data)
}

/// The 33-byte compressed secp256k1 public key that made `signature`
/// (65 bytes `r || s || v`, low-S, `v` 0 or 1) over the 32-byte `digest`,
/// or `None` when the signature is malformed, high-S or invalid (host
/// function; 400 000 gas). Compare the key, or the address it gives, with
/// the one you expect: this is the strict check (one valid signature
/// encoding per key and digest).
pub fn secp256k1_recover(digest: &[u8; 32], signature: &[u8; 65]) -> Option<[u8; 33]> {
    sys::secp256k1_recover(digest, signature)
}

/// Whether `signature` over `digest` is valid for the compressed
/// `public_key` by plain ECDSA: `v` must be 0 or 1 but is not compared, so
/// a signature's flipped-`v` twin passes too (host function; 400 000 gas).
/// Use [`secp256k1_recover`] when a signature must have one encoding, e.g.
/// when its bytes are a replay key.
pub fn secp256k1_verify(digest: &[u8; 32], signature: &[u8; 65], public_key: &[u8; 33]) -> bool {
    sys::secp256k1_verify(digest, signature, public_key)
}

/// Stops the frame, rolling back its writes, events and transfers, with a
/// message (revert tag 0).
pub fn revert_msg(msg: &str) -> ! {
    let mut out = Vec::with_capacity(msg.len() + 1);
    out.push(crate::abi::REVERT_MESSAGE);
    out.extend_from_slice(msg.as_bytes());
    sys::revert(&out)
}

/// Stops the frame with a typed error (revert tag 1, then Borsh): what a
/// method returning `Err(e)` does.
pub fn revert_with<E: BorshSerialize>(err: &E) -> ! {
    let mut out = Vec::with_capacity(16);
    out.push(crate::abi::REVERT_ERROR);
    if err.serialize(&mut out).is_err() {
        revert_msg("error encoding failed")
    }
    sys::revert(&out)
}

/// Stops the frame with exactly these revert bytes (to pass on a callee's
/// revert payload unchanged).
pub fn revert_raw(payload: &[u8]) -> ! {
    sys::revert(payload)
}
