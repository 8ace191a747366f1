//! Committed blocks made up for tests and benchmarks: transactions nobody
//! signed, receipts with the events asked for, an unchanged state, written
//! through the real commit path (block store, index, one batch). Not for
//! production use.

use stele_exec::StorageWrite;
use stele_state::{State, WriteSet};
use stele_types::{
    Address, Block, BlockHeader, CommitCertificate, Event, ExecStatus, Hash, Receipt, Signature,
    SignedTransaction, Transaction, TxPayload,
};

use super::{IndexConfig, put_block};
use crate::store::{CommittedBlock, StoreError, prepare_block_commit};

/// One made-up transaction: the events its receipt carries and the
/// storage writes the index records for it.
#[derive(Debug, Clone, Default)]
pub struct SyntheticTx {
    pub events: Vec<Event>,
    pub storage_writes: Vec<StorageWrite>,
}

/// Commits the block after the latest one, holding one transaction per
/// entry of `txs`, with the indexes `config` names, and returns it.
pub fn commit_block(
    state: &mut State,
    config: &IndexConfig,
    txs: Vec<SyntheticTx>,
) -> Result<CommittedBlock, StoreError> {
    let height = state.latest_version().map_or(0, |v| v + 1);
    let signed: Vec<SignedTransaction> = (0..txs.len())
        .map(|i| SignedTransaction {
            tx: Transaction {
                chain_id: 1,
                nonce: height.wrapping_mul(1 << 20).wrapping_add(i as u64),
                gas_limit: 21_000,
                gas_price: 1,
                payload: TxPayload::Transfer {
                    to: Address([2; 20]),
                    amount: 1,
                },
            },
            signature: Signature([0; 65]),
        })
        .collect();
    let mut storage_writes = Vec::with_capacity(txs.len());
    let receipts: Vec<Receipt> = txs
        .into_iter()
        .zip(&signed)
        .map(|(tx, signed)| {
            storage_writes.push(tx.storage_writes);
            Receipt {
                tx_hash: signed.hash(),
                status: ExecStatus::Success,
                gas_used: 21_000,
                events: tx.events,
                output: Vec::new(),
                contract_address: None,
            }
        })
        .collect();
    let writes = WriteSet::new();
    let root = state.prepare_commit(height, &writes)?.root();
    let block = Block {
        header: BlockHeader {
            chain_id: 1,
            height,
            epoch: 0,
            view: 0,
            parent_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            state_root: root,
            receipts_root: Hash::ZERO,
            timestamp_ms: height,
            proposer: Address([1; 20]),
            next_validators_hash: Hash::ZERO,
        },
        txs: signed,
    };
    let certificate = CommitCertificate {
        height,
        epoch: 0,
        view: 0,
        block_hash: block.hash(),
        signatures: Vec::new(),
    };
    let mut prepared = prepare_block_commit(state, &block, &receipts, &certificate, &writes)?;
    put_block(
        state,
        prepared.batch_mut()?,
        config,
        &block,
        &receipts,
        &storage_writes,
    )?;
    state.apply_unsynced(prepared)?;
    Ok(CommittedBlock {
        block,
        receipts,
        certificate,
    })
}
