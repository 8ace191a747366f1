//! Runtime glue used by the code the macros generate. Not a stable API.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::{env, sys};

pub use crate::abi::{AbiBuilder, AbiType, TypeFn, TypeRegistry};
pub use crate::storage::StorageField;

/// A `#[contract]` struct: its storage fields at their prefixes.
pub trait ContractState {
    fn __load() -> Self;
}

/// Whether the running export is a `#[view]`. A frame is one instance
/// (the flag starts false in each), and wasm32 contracts have one thread.
static IN_VIEW: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// What a `#[view]` that tries to change something reverts with.
pub const VIEW_WRITES: &str = "a #[view] method cannot write storage, emit events or move value";

/// The line of a `log!`.
pub fn format(args: core::fmt::Arguments<'_>) -> alloc::string::String {
    alloc::fmt::format(args)
}

/// Marks the running export a `#[view]`: from here on, a storage write, an
/// event, a transfer, a call with value, a deploy or an upgrade reverts
/// with [`VIEW_WRITES`], also when a transaction calls the view (a node's
/// `call_view` discards writes anyway).
pub fn enter_view() {
    IN_VIEW.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Reverts when the running export is a `#[view]`.
#[cfg(target_arch = "wasm32")]
pub(crate) fn check_writable() {
    if IN_VIEW.load(core::sync::atomic::Ordering::Relaxed) {
        env::revert_msg(VIEW_WRITES)
    }
}

/// Reverts if value is attached to a non-payable method.
pub fn check_payable(payable: bool) {
    if !payable && sys::value() != 0 {
        env::revert_msg("method is not payable")
    }
}

/// The call input decoded as the argument tuple.
pub fn args<A: BorshDeserialize>() -> A {
    match A::try_from_slice(&sys::input()) {
        Ok(a) => a,
        Err(_) => env::revert_msg("arguments do not decode"),
    }
}

/// Sets the return data to `v`'s Borsh encoding (nothing for `()`).
pub fn ret<T: BorshSerialize>(v: &T) {
    let mut out = Vec::new();
    if v.serialize(&mut out).is_err() {
        env::revert_msg("return value encoding failed")
    }
    if !out.is_empty() {
        sys::set_return(&out);
    }
}

/// Returns `Ok` values; reverts with the typed error (tag 1) on `Err`.
pub fn ret_result<T: BorshSerialize, E: BorshSerialize>(r: &Result<T, E>) {
    match r {
        Ok(v) => ret(v),
        Err(e) => env::revert_with(e),
    }
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: crate::heap::Heap = crate::heap::Heap::new();

/// A panic reverts with its message when it is a plain string literal
/// (`PanicMessage::as_str` needs no formatting code), else with "panic".
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    env::revert_msg(info.message().as_str().unwrap_or("panic"))
}

/// Expands its input only when the SDK is built with the `__abi` feature
/// (stele-build's ABI pass).
#[cfg(feature = "__abi")]
#[macro_export]
#[doc(hidden)]
macro_rules! __abi_export {
    ($($t:tt)*) => { $($t)* };
}

/// Expands its input only when the SDK is built with the `__abi` feature
/// (stele-build's ABI pass).
#[cfg(not(feature = "__abi"))]
#[macro_export]
#[doc(hidden)]
macro_rules! __abi_export {
    ($($t:tt)*) => {};
}

pub use alloc::string::String;
pub use alloc::vec::Vec;

/// Appends `v`'s Borsh encoding to `out` (reverts if it cannot encode).
pub fn encode_into<T: BorshSerialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    if v.serialize(out).is_err() {
        env::revert_msg("value encoding failed")
    }
}
