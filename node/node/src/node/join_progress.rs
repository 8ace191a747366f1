//! How far a node is in joining its chain by snapshot (ADR 0012): the join
//! writes it, and the node's status, its metrics and the status a home
//! answers while the join runs (before the RPC server can start) read it.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use stele_client::api::{SnapshotSyncInfo, StatusInfo, SyncPhase};

/// Where the join by snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum JoinPhase {
    /// Not joining by snapshot (the state was not the genesis's, or
    /// `snapshot_sync` is off).
    None = 0,
    /// Asking peers which snapshots they keep, fetching an index.
    Finding = 1,
    /// Fetching and checking chunks.
    Fetching = 2,
    /// Building the state from the chunks and checking its root.
    Importing = 3,
    /// Joined at `height`.
    Joined = 4,
    /// No snapshot could be had: blocks sync from the genesis.
    NoSnapshot = 5,
}

impl JoinPhase {
    fn from_u8(v: u8) -> JoinPhase {
        match v {
            1 => JoinPhase::Finding,
            2 => JoinPhase::Fetching,
            3 => JoinPhase::Importing,
            4 => JoinPhase::Joined,
            5 => JoinPhase::NoSnapshot,
            _ => JoinPhase::None,
        }
    }

    /// Whether the join is still running.
    pub fn running(self) -> bool {
        matches!(
            self,
            JoinPhase::Finding | JoinPhase::Fetching | JoinPhase::Importing
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            JoinPhase::None => "none",
            JoinPhase::Finding => "finding",
            JoinPhase::Fetching => "fetching",
            JoinPhase::Importing => "importing",
            JoinPhase::Joined => "joined",
            JoinPhase::NoSnapshot => "no_snapshot",
        }
    }
}

/// The join's counters; all start at zero.
#[derive(Debug, Default)]
pub struct JoinProgress {
    phase: AtomicU8,
    height: AtomicU64,
    chunks: AtomicU64,
    chunks_fetched: AtomicU64,
    chunks_resumed: AtomicU64,
    chunks_refused: AtomicU64,
    bytes_fetched: AtomicU64,
}

impl JoinProgress {
    pub fn phase(&self) -> JoinPhase {
        JoinPhase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    pub(super) fn set_phase(&self, phase: JoinPhase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// A new attempt at `height`, of `chunks` chunks, `resumed` of them
    /// kept from an earlier run.
    pub(super) fn attempt(&self, height: u64, chunks: u64, resumed: u64) {
        self.height.store(height, Ordering::Relaxed);
        self.chunks.store(chunks, Ordering::Relaxed);
        self.chunks_resumed.store(resumed, Ordering::Relaxed);
        self.chunks_fetched.store(0, Ordering::Relaxed);
        self.set_phase(JoinPhase::Fetching);
    }

    pub(super) fn fetched(&self, bytes: usize) {
        self.chunks_fetched.fetch_add(1, Ordering::Relaxed);
        self.bytes_fetched
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn refused(&self) {
        self.chunks_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Chunks fetched and checked for the snapshot being fetched (bytes
    /// and refusals count over every attempt).
    pub fn chunks_fetched(&self) -> u64 {
        self.chunks_fetched.load(Ordering::Relaxed)
    }

    /// Chunks refused (they did not check) over every attempt.
    pub fn chunks_refused(&self) -> u64 {
        self.chunks_refused.load(Ordering::Relaxed)
    }

    pub fn bytes_fetched(&self) -> u64 {
        self.bytes_fetched.load(Ordering::Relaxed)
    }

    /// What `/status` says of the join; `None` if the node did not try.
    pub fn info(&self) -> Option<SnapshotSyncInfo> {
        let phase = self.phase();
        if phase == JoinPhase::None {
            return None;
        }
        Some(SnapshotSyncInfo {
            phase: phase.name().to_string(),
            height: self.height.load(Ordering::Relaxed),
            chunks: self.chunks.load(Ordering::Relaxed),
            chunks_fetched: self.chunks_fetched(),
            chunks_resumed: self.chunks_resumed.load(Ordering::Relaxed),
            chunks_refused: self.chunks_refused(),
            bytes_fetched: self.bytes_fetched(),
        })
    }

    /// The status of a node still starting (joining by snapshot, or
    /// opening its data): nothing else of it runs yet.
    pub fn joining_status(&self, chain_id: u64, full_node: bool) -> StatusInfo {
        StatusInfo {
            chain_id,
            full_node,
            syncing: true,
            phase: if self.phase().running() {
                SyncPhase::Snapshot
            } else {
                SyncPhase::Blocks
            },
            snapshot: self.info(),
            ..StatusInfo::default()
        }
    }
}
