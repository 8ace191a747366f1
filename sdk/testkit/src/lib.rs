//! In-process Stele chain for contract tests: real Wasm, real gas, real
//! Merkle state.
//!
//! A [`TestChain`] is an in-memory [`stele_state::State`] driven by the
//! validators' own executor ([`stele_exec::Executor`]): every call or deploy is a real
//! transaction (nonce, intrinsic gas, payment, refund) run as any sender
//! without a signature, and its writes are committed as the next block.
//! Compiled modules are cached on disk across chains and test processes, so
//! a contract's test suite runs in seconds.
//!
//! ```no_run
//! use stele_testkit::{Contract, TestChain};
//! let token = Contract::build("contracts/token").unwrap();
//! let mut chain = TestChain::new();
//! let alice = chain.account();
//! let addr = chain
//!     .deploy(&alice, &token, ("Gold".to_string(), "GLD".to_string(), 18u8))
//!     .address();
//! chain.call(&alice, &addr, "mint", (alice, 1_000u128)).success();
//! assert_eq!(chain.view(&addr, "balance_of", (alice,)).decode::<u128>(), 1_000);
//! ```

mod chain;
mod contract;
#[cfg(feature = "fork")]
mod fork;
mod outcome;

pub use chain::{DEFAULT_BALANCE, DEFAULT_GAS_LIMIT, TestChain};
pub use contract::Contract;
#[cfg(feature = "fork")]
pub use fork::{Fork, ForkError};
pub use outcome::Outcome;
pub use stele_abi::{Abi, DecodedEvent, Revert};
pub use stele_sdk::Address;
pub use stele_types::ExecStatus;

// The Rust examples of these pages run as doctests of this crate (which
// depends on everything they use), so the pages cannot drift from the code.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/contracts.md")]
mod contracts_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../docs/sdk-reference.md")]
mod sdk_reference_md {}
