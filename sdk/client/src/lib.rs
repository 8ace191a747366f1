//! Typed async client for the Stele JSON-RPC API (`docs/rpc.md`), with a
//! transaction builder and signer and verification of storage proofs and
//! commit certificates against a known validator set.
//!
//! `api` is the single definition of the wire protocol: the node's server
//! implements `api::SteleApiServer` (feature `server`), this crate calls through
//! [`api::SteleApiClient`].
//!
//! Architecture invariant: no RocksDB or wasmtime dependency; everything a
//! dApp needs to check a node's answer comes from `stele-types`.

pub mod abi;
pub mod api;
mod client;
mod keystore;
mod tx;
mod verify;

pub use client::{Client, ClientError, EPOCH_WALK_MAX, RESPONSE_BYTES_MAX};
pub use keystore::{KeystoreError, decrypt_keystore, encrypt_keystore};
pub use tx::{Signer, TxBuilder};
pub use verify::{
    VerifyError, check_account_answer, check_storage_answer, verify_account_proof,
    verify_storage_proof,
};
