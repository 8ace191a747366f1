//! Building and signing transactions.

use stele_types::codec::Encode;
use stele_types::{
    Address, Amount, Hash, SecretKey, Signature, SignedTransaction, Transaction, TxPayload,
    ValidatorSet,
};

/// Signs transactions with one secret key.
#[derive(Debug)]
pub struct Signer {
    key: SecretKey,
    address: Address,
}

impl Signer {
    /// A signer for `key`.
    pub fn new(key: SecretKey) -> Self {
        let address = key.address();
        Signer { key, address }
    }

    /// A signer from a raw 32-byte secret key in `0x`-hex.
    pub fn from_hex(secret: &str) -> Result<Self, stele_types::crypto::CryptoError> {
        let bytes = stele_types::hex::decode_array::<32>(secret.trim())
            .map_err(|_| stele_types::crypto::CryptoError::InvalidSecretKey)?;
        Ok(Signer::new(SecretKey::from_bytes(&bytes)?))
    }

    /// The account this signer sends from.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs `tx`; returns the signed transaction, its canonical encoding
    /// (what `send_transaction` takes) and its hash.
    pub fn sign(&self, tx: Transaction) -> (SignedTransaction, Vec<u8>, Hash) {
        let signed = tx.sign(&self.key);
        let raw = signed.to_bytes();
        let hash = stele_types::keccak256(&raw);
        (signed, raw, hash)
    }
}

/// Builds a [`Transaction`] field by field.
#[derive(Debug, Clone)]
pub struct TxBuilder {
    chain_id: u64,
    nonce: u64,
    gas_limit: u64,
    gas_price: u64,
}

impl TxBuilder {
    /// A builder for `chain_id` with nonce 0, gas limit 1 000 000 and gas
    /// price 1.
    pub fn new(chain_id: u64) -> Self {
        TxBuilder {
            chain_id,
            nonce: 0,
            gas_limit: 1_000_000,
            gas_price: 1,
        }
    }

    pub fn nonce(mut self, nonce: u64) -> Self {
        self.nonce = nonce;
        self
    }

    pub fn gas_limit(mut self, gas_limit: u64) -> Self {
        self.gas_limit = gas_limit;
        self
    }

    pub fn gas_price(mut self, gas_price: u64) -> Self {
        self.gas_price = gas_price;
        self
    }

    fn with(&self, payload: TxPayload) -> Transaction {
        Transaction {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            gas_price: self.gas_price,
            payload,
        }
    }

    /// A native-token transfer.
    pub fn transfer(&self, to: Address, amount: Amount) -> Transaction {
        self.with(TxPayload::Transfer { to, amount })
    }

    /// A validator's vote for `validators` as the set after `epoch` (ADR
    /// 0010), with the new keys' possession proofs in set order.
    pub fn vote_validators(
        &self,
        epoch: u64,
        validators: ValidatorSet,
        possession: Vec<Signature>,
    ) -> Transaction {
        self.with(TxPayload::VoteValidators {
            epoch,
            validators: validators.into(),
            possession,
        })
    }

    /// A validator's vote for `params` as the protocol from
    /// `activation_height` on, in `epoch` (ADR 0011).
    pub fn vote_upgrade(
        &self,
        epoch: u64,
        activation_height: u64,
        params: stele_types::ProtocolParams,
    ) -> Transaction {
        self.with(TxPayload::VoteUpgrade {
            epoch,
            activation_height,
            params,
        })
    }

    /// A contract deploy; the new address is `Address::contract(sender, nonce)`.
    pub fn deploy(&self, code: Vec<u8>, init_args: Vec<u8>, value: Amount) -> Transaction {
        self.with(TxPayload::Deploy {
            code,
            init_args,
            value,
        })
    }

    /// A contract call.
    pub fn call(
        &self,
        contract: Address,
        method: impl Into<String>,
        args: Vec<u8>,
        value: Amount,
    ) -> Transaction {
        self.with(TxPayload::Call {
            contract,
            method: method.into(),
            args,
            value,
        })
    }
}
