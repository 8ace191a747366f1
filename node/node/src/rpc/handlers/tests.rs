//! Block-store fixtures for the RPC's tests, and a test of reads through a
//! view.

use std::sync::{Arc, RwLock};

use stele_state::{State, StateConfig};
use stele_types::{Address, Block, BlockHeader, CommitCertificate, Hash};

use crate::store::{BLOCK_STORE_CFS, BlockReader, CommittedBlock, prepare_block_commit};

/// `n` empty blocks committed to a fresh state with the block store.
pub(crate) fn chain(
    dir: &std::path::Path,
    n: u64,
) -> (stele_exec::SharedState, Vec<Arc<CommittedBlock>>) {
    let mut state = State::open_with_column_families(dir, StateConfig::default(), &BLOCK_STORE_CFS)
        .expect("state");
    let writes = Default::default();
    let genesis = state.prepare_commit(0, &writes).expect("genesis");
    state.apply(genesis).expect("apply genesis");
    let mut blocks: Vec<Arc<CommittedBlock>> = Vec::new();
    for height in 1..=n {
        let parent = blocks.last().map_or(Hash::ZERO, |b| b.block.hash());
        blocks.push(append_empty(&mut state, height, parent));
    }
    (Arc::new(RwLock::new(state)), blocks)
}

/// Commits an empty block at `height` on `parent`.
pub(crate) fn append_empty(state: &mut State, height: u64, parent: Hash) -> Arc<CommittedBlock> {
    let writes = Default::default();
    let root = state
        .prepare_commit(height, &writes)
        .expect("prepare")
        .root();
    let block = Block {
        header: BlockHeader {
            chain_id: 1,
            height,
            epoch: 0,
            view: 0,
            parent_hash: parent,
            tx_root: Hash::ZERO,
            state_root: root,
            receipts_root: Hash::ZERO,
            timestamp_ms: height,
            proposer: Address([1; 20]),
            next_validators_hash: Hash::ZERO,
        },
        txs: Vec::new(),
    };
    let certificate = CommitCertificate {
        height,
        epoch: 0,
        view: 0,
        block_hash: block.hash(),
        signatures: Vec::new(),
    };
    let prepared =
        prepare_block_commit(state, &block, &[], &certificate, &writes).expect("block commit");
    state.apply(prepared).expect("apply");
    Arc::new(CommittedBlock {
        block,
        receipts: Vec::new(),
        certificate,
    })
}

#[test]
fn a_block_reader_on_a_view_lets_commits_through_and_keeps_its_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, blocks) = chain(dir.path(), 3);
    let view = state.read().expect("lock").view().expect("a version");
    let reader = BlockReader::from_view(&view);
    assert_eq!(
        reader.committed(2).expect("read").as_ref(),
        Some(&*blocks[1])
    );
    // The reader holds no lock: a block commits while it reads.
    let fourth = {
        let mut guard = state.try_write().expect("no reader holds the lock");
        append_empty(&mut guard, 4, blocks[2].block.hash())
    };
    assert_eq!(reader.committed_height(), Some(3));
    assert_eq!(reader.committed(4).expect("read"), None);
    assert_eq!(
        reader.committed(3).expect("read").as_ref(),
        Some(&*blocks[2])
    );
    let guard = state.read().expect("lock");
    assert_eq!(
        BlockReader::new(&guard)
            .committed(4)
            .expect("read")
            .as_ref(),
        Some(&*fourth)
    );
}
