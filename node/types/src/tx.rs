//! Transactions: what an account asks the chain to do, and its signature.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::address::Address;
use crate::block::{Validator, ValidatorSet};
use crate::codec::{Decode, DecodeError, Encode, Reader, put_bytes, put_seq};
use crate::crypto::{CryptoError, SecretKey, Signature};
use crate::hash::{Hash, domain, keccak256, keccak256_parts};
use crate::hex::{serde_bytes, serde_u128};
use crate::protocol::ProtocolParams;

/// Amount of the native token, in its smallest unit.
pub type Amount = u128;

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// The chain this transaction is meant for; any other chain rejects it.
    pub chain_id: u64,
    /// The sender's account nonce; transactions apply in nonce order.
    pub nonce: u64,
    /// The most gas this transaction may use.
    pub gas_limit: u64,
    /// Native tokens paid per unit of gas.
    pub gas_price: u64,
    /// What the transaction does.
    pub payload: TxPayload,
}

/// The action a transaction performs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TxPayload {
    /// Move native tokens to another account.
    Transfer {
        to: Address,
        #[serde(with = "serde_u128")]
        amount: Amount,
    },
    /// Upload a contract and run its constructor with `init_args`.
    Deploy {
        #[serde(with = "serde_bytes")]
        code: Vec<u8>,
        #[serde(with = "serde_bytes")]
        init_args: Vec<u8>,
        #[serde(with = "serde_u128")]
        value: Amount,
    },
    /// Call `method` of a deployed contract.
    Call {
        contract: Address,
        method: String,
        #[serde(with = "serde_bytes")]
        args: Vec<u8>,
        #[serde(with = "serde_u128")]
        value: Amount,
    },
    /// A validator of `epoch` votes for `validators` as the next epoch's
    /// whole set (ADR 0010). The change is decided once validators holding
    /// more than two thirds of the epoch's power voted for the same set,
    /// and takes effect at the next epoch boundary. `possession` holds, for
    /// each key of `validators` that the current set lacks, in set order,
    /// its signature over [`validator_change_hash`]: nobody can name a key
    /// it does not hold.
    ///
    /// `validators` is a list, not a [`ValidatorSet`]: decoding one checks
    /// every key (about 12 µs each), which a transaction on the wire must
    /// not cost before anyone pays. The vote checks the list as a set when
    /// it executes, paid by its gas.
    VoteValidators {
        epoch: u64,
        validators: Vec<Validator>,
        possession: Vec<Signature>,
    },
    /// A validator of `epoch` votes for `params` as the protocol from
    /// `activation_height` on (ADR 0011). Once validators holding more than
    /// two thirds of the epoch's power voted for the same parameters and
    /// height, the upgrade is scheduled: the block at `activation_height`
    /// is the first to execute under `params`, and a node that lacks one of
    /// their versions stops after the block before it.
    VoteUpgrade {
        epoch: u64,
        activation_height: u64,
        params: ProtocolParams,
    },
}

const TAG_TRANSFER: u8 = 0;
const TAG_DEPLOY: u8 = 1;
const TAG_CALL: u8 = 2;
const TAG_VOTE_VALIDATORS: u8 = 3;
const TAG_VOTE_UPGRADE: u8 = 4;

/// What validators vote for and new keys sign when `validators` is
/// proposed as the set after `epoch` on chain `chain_id`.
pub fn validator_change_hash(chain_id: u64, epoch: u64, validators: &ValidatorSet) -> Hash {
    keccak256_parts(&[
        domain::VALIDATOR_CHANGE,
        &chain_id.to_le_bytes(),
        &epoch.to_le_bytes(),
        &validators.hash().0,
    ])
}

/// Why a method name was rejected: 1 to `method_bytes_max` bytes of ASCII
/// letters, digits and `_`, not starting with a digit.
pub fn validate_method_name(name: &str, max: usize) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err("method name is empty");
    }
    if bytes.len() > max {
        return Err("method name is too long");
    }
    if bytes[0].is_ascii_digit() {
        return Err("method name starts with a digit");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return Err("method name has a character outside [A-Za-z0-9_]");
    }
    Ok(())
}

impl Encode for TxPayload {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            TxPayload::Transfer { to, amount } => {
                out.push(TAG_TRANSFER);
                to.encode_to(out);
                amount.encode_to(out);
            }
            TxPayload::Deploy {
                code,
                init_args,
                value,
            } => {
                out.push(TAG_DEPLOY);
                put_bytes(out, code);
                put_bytes(out, init_args);
                value.encode_to(out);
            }
            TxPayload::Call {
                contract,
                method,
                args,
                value,
            } => {
                out.push(TAG_CALL);
                contract.encode_to(out);
                put_bytes(out, method.as_bytes());
                put_bytes(out, args);
                value.encode_to(out);
            }
            TxPayload::VoteValidators {
                epoch,
                validators,
                possession,
            } => {
                out.push(TAG_VOTE_VALIDATORS);
                epoch.encode_to(out);
                put_seq(out, validators);
                put_seq(out, possession);
            }
            TxPayload::VoteUpgrade {
                epoch,
                activation_height,
                params,
            } => {
                out.push(TAG_VOTE_UPGRADE);
                epoch.encode_to(out);
                activation_height.encode_to(out);
                params.encode_to(out);
            }
        }
    }
}

impl Decode for TxPayload {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let limits = r.limits();
        match r.u8("tx payload tag")? {
            TAG_TRANSFER => Ok(TxPayload::Transfer {
                to: Address::decode_from(r)?,
                amount: r.u128("amount")?,
            }),
            TAG_DEPLOY => Ok(TxPayload::Deploy {
                code: r.bytes(limits.code_bytes_max, "contract code")?,
                init_args: r.bytes(limits.args_bytes_max, "init args")?,
                value: r.u128("value")?,
            }),
            TAG_CALL => {
                let contract = Address::decode_from(r)?;
                let method = r.bytes(limits.method_bytes_max, "method name")?;
                let method = String::from_utf8(method).map_err(|_| DecodeError::Invalid {
                    what: "method name",
                    reason: "not UTF-8",
                })?;
                validate_method_name(&method, limits.method_bytes_max).map_err(|reason| {
                    DecodeError::Invalid {
                        what: "method name",
                        reason,
                    }
                })?;
                Ok(TxPayload::Call {
                    contract,
                    method,
                    args: r.bytes(limits.args_bytes_max, "call args")?,
                    value: r.u128("value")?,
                })
            }
            TAG_VOTE_VALIDATORS => Ok(TxPayload::VoteValidators {
                epoch: r.u64("epoch")?,
                validators: r.seq(
                    limits.validators_max,
                    61,
                    "validators",
                    Validator::decode_from,
                )?,
                possession: r.seq(limits.validators_max, 65, "possession proofs", |r| {
                    Signature::decode_from(r)
                })?,
            }),
            TAG_VOTE_UPGRADE => Ok(TxPayload::VoteUpgrade {
                epoch: r.u64("epoch")?,
                activation_height: r.u64("activation height")?,
                params: ProtocolParams::decode_from(r)?,
            }),
            tag => Err(DecodeError::InvalidTag {
                what: "tx payload",
                tag,
            }),
        }
    }
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.nonce.encode_to(out);
        self.gas_limit.encode_to(out);
        self.gas_price.encode_to(out);
        self.payload.encode_to(out);
    }
}

impl Decode for Transaction {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Transaction {
            chain_id: r.u64("chain id")?,
            nonce: r.u64("nonce")?,
            gas_limit: r.u64("gas limit")?,
            gas_price: r.u64("gas price")?,
            payload: TxPayload::decode_from(r)?,
        })
    }
}

impl Transaction {
    /// The digest the sender signs: Keccak-256 of the transaction domain tag,
    /// the chain id, and the canonical encoding.
    pub fn signing_digest(&self) -> Hash {
        keccak256_parts(&[domain::TX, &self.chain_id.to_le_bytes(), &self.to_bytes()])
    }

    /// The most the sender can be charged: `gas_limit * gas_price` plus the
    /// value attached. `None` if it overflows, which no balance can cover.
    pub fn max_cost(&self) -> Option<Amount> {
        let fee = Amount::from(self.gas_limit).checked_mul(Amount::from(self.gas_price))?;
        fee.checked_add(self.value())
    }

    /// Native tokens moved by this transaction.
    pub fn value(&self) -> Amount {
        match &self.payload {
            TxPayload::Transfer { amount, .. } => *amount,
            TxPayload::Deploy { value, .. } | TxPayload::Call { value, .. } => *value,
            TxPayload::VoteValidators { .. } | TxPayload::VoteUpgrade { .. } => 0,
        }
    }

    /// Signs the transaction.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign_digest(&self.signing_digest());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

/// A transaction with the sender's signature. The sender is not stored: it is
/// recovered from the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

/// Why a signed transaction is not acceptable on its own terms.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxError {
    #[error("transaction is for chain {got}, this chain is {expected}")]
    WrongChain { expected: u64, got: u64 },
    #[error("bad signature: {0}")]
    Signature(#[from] CryptoError),
}

impl SignedTransaction {
    /// The transaction hash: Keccak-256 of the whole signed encoding.
    pub fn hash(&self) -> Hash {
        keccak256(&self.to_bytes())
    }

    /// Checks the chain id and the signature and returns the sender.
    pub fn verify(&self, chain_id: u64) -> Result<Address, TxError> {
        if self.tx.chain_id != chain_id {
            return Err(TxError::WrongChain {
                expected: chain_id,
                got: self.tx.chain_id,
            });
        }
        Ok(self.signature.recover_address(&self.tx.signing_digest())?)
    }
}

impl Encode for SignedTransaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.tx.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for SignedTransaction {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedTransaction {
            tx: Transaction::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}
