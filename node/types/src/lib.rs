//! Stele's I/O-free core, shared by the node, the SDK, the client and the CLI:
//! addresses, hashes, transactions, blocks, receipts, commit certificates, the
//! canonical codec, and signing and verification.
//!
//! Architecture invariant: nothing here does I/O or depends on tokio, RocksDB
//! or wasmtime, so any client can verify what it reads from a node.

pub mod account;
pub mod address;
pub mod block;
pub mod codec;
pub mod crypto;
mod fixed_base;
pub mod hash;
pub mod hex;
pub mod proof;
pub mod protocol;
pub mod receipt;
pub mod snapshot;
pub mod tx;

pub use account::Account;
pub use address::{Address, AddressError};
pub use block::{
    Block, BlockHeader, CertificateError, CommitCertificate, CommitSignature, ConsensusKind,
    Validator, ValidatorSet, ValidatorSetError, consensus_digest,
};
pub use codec::{Decode, DecodeError, Encode, Limits, decode};
pub use crypto::{
    CryptoError, PreparedKey, PublicKey, SecretKey, Signature, verify_recoverable_batch,
};
pub use hash::{Hash, keccak256, keccak256_parts, list_root};
pub use protocol::ProtocolParams;
pub use receipt::{Event, ExecStatus, Receipt};
pub use tx::{Amount, SignedTransaction, Transaction, TxError, TxPayload, validator_change_hash};
