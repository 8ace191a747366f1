//! The Stele contract SDK: macros, typed storage, context, events and
//! cross-contract calls for wasm32 contracts.
//!
//! A contract is a `#[contract]` struct of storage fields plus a
//! `#[contract]` impl whose `pub fn`s become exported methods; see
//! `docs/contracts.md` for a tutorial and the encoding conventions (Borsh
//! arguments and returns, tagged revert payloads, the `stele_abi` section).
//!
//! On `wasm32` the SDK talks to the VM's `stele` host functions. On any
//! other target it runs against an in-memory mock (see [`testing`]) so the
//! SDK and contract logic compile, lint and unit-test on the host.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

pub mod abi;
mod address;
pub mod call;
pub mod env;
pub mod event;
// A global allocator is an `unsafe` trait; see the module's comments.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod heap;
pub mod storage;
mod sys;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[doc(hidden)]
pub mod __rt;

pub use address::Address;
pub use borsh;
pub use borsh::{BorshDeserialize, BorshSerialize};
pub use call::{CallError, CallOptions, Status, deploy, upgrade};
pub use event::{Event, Topic, emit};
pub use stele_sdk_macros::{AbiType, contract, data, event, interface};
pub use storage::{Item, Map, StorageKey, Vector};

/// A native token amount (16-byte little-endian `u128` on the ABI).
pub type Amount = u128;

/// Reverts with a message (tag 0) unless `cond` holds. The message is a
/// string literal or any `&str`: no formatting code is pulled in.
#[macro_export]
macro_rules! require {
    ($cond:expr, $msg:expr $(,)?) => {
        if !$cond {
            $crate::env::revert_msg($msg)
        }
    };
}

/// Writes a formatted line to the debug log, like `format!`: see
/// [`env::log`] for what it costs and where it shows. Formatting pulls
/// `core::fmt` into the module (several KiB of Wasm); `env::log("text")`
/// writes a fixed line without it.
///
/// ```
/// use stele_sdk::prelude::*;
/// let amount = 5u128;
/// stele_sdk::log!("paying {amount} to {}", Address([7; 20]));
/// # stele_sdk::testing::with(|m| assert_eq!(m.logs.last().map(String::as_str), Some("paying 5 to 0x0707070707070707070707070707070707070707")));
/// ```
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::env::log(&$crate::__rt::format(::core::format_args!($($arg)*)))
    };
}

/// Marks a contract as accepting re-entrant calls (see `docs/vm.md`):
/// writes the `stele_reentrant` custom section. Use once, at the crate root.
#[macro_export]
macro_rules! allow_reentrancy {
    () => {
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "stele_reentrant")]
        static __STELE_REENTRANT: [u8; 1] = [1];
    };
}

/// The names a contract usually needs: `use stele_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::call::{CallError, CallOptions, OrRevert};
    pub use crate::env;
    pub use crate::{
        Address, Amount, BorshDeserialize, BorshSerialize, Item, Map, Vector, contract, data, emit,
        event, interface, log, require,
    };
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}
