//! The snapshots a node keeps for its peers (ADR 0012): one every
//! `interval` heights, made on a thread of its own from a view of the
//! version just committed, into `data/snapshots/<height>` (written as
//! `<height>.partial`, renamed once whole); the newest `kept` stay.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use stele_state::CommittedView;
use tracing::{info, warn};

use crate::metrics::NodeMetrics;
use crate::snapshot::{DirSink, export};

/// The folder of a node's snapshots in its data dir.
pub fn snapshots_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// The heights of the whole snapshots in `dir`, newest first.
pub fn kept_heights(dir: &Path) -> Vec<u64> {
    let mut heights: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    heights.sort_unstable_by(|a, b| b.cmp(a));
    heights
}

pub(super) struct Snapshots {
    dir: PathBuf,
    interval: u64,
    kept: usize,
    chunk_entries: usize,
    making: Option<JoinHandle<()>>,
}

impl Snapshots {
    /// An interval of 0 makes none.
    pub(super) fn new(data_dir: &Path, options: super::SnapshotOptions) -> Snapshots {
        let dir = snapshots_dir(data_dir);
        // A snapshot a crash cut short is of no use.
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".partial") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Snapshots {
            dir,
            interval: options.interval_blocks,
            kept: options.kept.max(1),
            chunk_entries: options.chunk_entries,
            making: None,
        }
    }

    /// After committing `height` (`view` takes its version): starts a
    /// snapshot if one is due and none is being made.
    pub(super) fn after_commit(
        &mut self,
        height: u64,
        view: impl FnOnce() -> Option<CommittedView>,
        metrics: &Arc<NodeMetrics>,
    ) {
        if self.interval == 0 || height == 0 || !height.is_multiple_of(self.interval) {
            return;
        }
        if self.making.as_ref().is_some_and(|h| !h.is_finished()) {
            warn!(
                height,
                "the previous snapshot is still being made; skipping this one"
            );
            return;
        }
        let Some(view) = view().filter(|v| v.version() == height) else {
            return;
        };
        let (dir, kept, metrics) = (self.dir.clone(), self.kept, metrics.clone());
        let chunk_entries = self.chunk_entries;
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || make(&view, &dir, kept, chunk_entries, &metrics));
        match spawned {
            Ok(handle) => self.making = Some(handle),
            Err(e) => warn!(height, error = %e, "could not start making a snapshot"),
        }
    }
}

impl Snapshots {
    /// The height of the oldest snapshot kept, if any.
    pub(super) fn oldest_kept(&self) -> Option<u64> {
        kept_heights(&self.dir).last().copied()
    }
}

impl Drop for Snapshots {
    fn drop(&mut self) {
        if let Some(handle) = self.making.take() {
            let _ = handle.join();
        }
    }
}

fn make(
    view: &CommittedView,
    dir: &Path,
    kept: usize,
    chunk_entries: usize,
    metrics: &NodeMetrics,
) {
    let height = view.version();
    let started = Instant::now();
    let partial = dir.join(format!("{height}.partial"));
    let done = dir.join(height.to_string());
    let made = DirSink::new(&partial)
        .and_then(|mut sink| export(view, &mut sink, chunk_entries))
        .and_then(|exported| {
            std::fs::rename(&partial, &done)?;
            Ok(exported)
        });
    match made {
        Ok(exported) => {
            let seconds = started.elapsed().as_secs_f64();
            metrics.snapshot_seconds.observe(seconds);
            metrics.snapshot_height.set(height as i64);
            metrics.snapshot_bytes.set(exported.bytes as i64);
            info!(
                height,
                entries = exported.entries,
                chunks = exported.manifest.parts.len(),
                bytes = exported.bytes,
                ms = (seconds * 1000.0) as u64,
                "made a state snapshot"
            );
            for old in kept_heights(dir).into_iter().skip(kept) {
                if let Err(e) = std::fs::remove_dir_all(dir.join(old.to_string())) {
                    warn!(height = old, error = %e, "could not delete an old snapshot");
                }
            }
        }
        Err(e) => {
            warn!(height, error = %e, "making a snapshot failed");
            let _ = std::fs::remove_dir_all(&partial);
        }
    }
}
