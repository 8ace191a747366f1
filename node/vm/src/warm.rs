//! The query engine's background compiles of newly deployed code.
//!
//! Blocks and queries run on two engines (queries with epoch checks), and
//! code compiled by one does not run on the other. A deploy compiles its
//! code on the block engine (the compile its gas pays for); without this,
//! the first query of the new contract would compile it again, unpriced, on
//! the RPC path. So the block engine hands each deployed code to a warmer
//! thread that compiles it for the query engine off the consensus path, and
//! a query that needs code the warmer holds waits for it instead of
//! compiling it too. Node-local: results and gas never depend on it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use stele_types::Hash;

/// Most deployed codes waiting for the warmer; past it a deploy's code is
/// left for its first query to compile.
pub const QUERY_WARM_QUEUE_MAX: usize = 64;

/// Longest a query waits for the warmer to compile its code before it
/// compiles the code itself (the queue ahead of it is at most
/// [`QUERY_WARM_QUEUE_MAX`] compiles, each bounded by the deploy limits).
pub const QUERY_WARM_WAIT_MS: u64 = 10_000;

/// Code hashes queued for the warmer or being compiled by it.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    hashes: Mutex<BTreeSet<Hash>>,
    done: Condvar,
}

impl InFlight {
    fn insert(&self, hash: Hash) -> bool {
        self.hashes.lock().is_ok_and(|mut h| h.insert(hash))
    }

    fn remove(&self, hash: &Hash) {
        if let Ok(mut h) = self.hashes.lock() {
            h.remove(hash);
        }
        self.done.notify_all();
    }

    /// Waits while `hash` is in flight, at most `wait`; whether it was.
    pub(crate) fn wait_for(&self, hash: &Hash, wait: Duration) -> bool {
        let Ok(mut hashes) = self.hashes.lock() else {
            return false;
        };
        if !hashes.contains(hash) {
            return false;
        }
        let deadline = Instant::now() + wait;
        while hashes.contains(hash) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            hashes = match self.done.wait_timeout(hashes, left) {
                Ok((h, _)) => h,
                Err(_) => return true,
            };
        }
        true
    }
}

/// The block engine's end of the warmer: takes deployed code.
#[derive(Debug)]
pub(crate) struct WarmQueue {
    tx: SyncSender<(Hash, Vec<u8>)>,
    in_flight: Arc<InFlight>,
}

impl WarmQueue {
    /// Queues `code` (whose hash is `hash`) for the query engine, unless
    /// it is queued already or the queue is full.
    pub(crate) fn push(&self, hash: Hash, code: &[u8]) {
        if !self.in_flight.insert(hash) {
            return;
        }
        match self.tx.try_send((hash, code.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.in_flight.remove(&hash);
            }
        }
    }
}

/// Removes a hash from the in-flight set however its compile ends.
struct Done<'a>(&'a InFlight, Hash);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.remove(&self.1);
    }
}

/// Starts the warmer: a thread with `stack_bytes` of stack that runs
/// `compile` (the query engine's, whose queries wait on `in_flight`) on each
/// queued code; it stops when the queue is dropped or `stop` is set.
pub(crate) fn spawn(
    compile: impl Fn(&Hash, &[u8]) + Send + 'static,
    stack_bytes: usize,
    in_flight: Arc<InFlight>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<WarmQueue> {
    let (tx, rx) = sync_channel(QUERY_WARM_QUEUE_MAX);
    let thread_in_flight = Arc::clone(&in_flight);
    std::thread::Builder::new()
        .name("stele-vm-query-warmer".into())
        .stack_size(stack_bytes)
        .spawn(move || run(&compile, &thread_in_flight, &rx, &stop))?;
    Ok(WarmQueue { tx, in_flight })
}

fn run(
    compile: &dyn Fn(&Hash, &[u8]),
    in_flight: &InFlight,
    rx: &Receiver<(Hash, Vec<u8>)>,
    stop: &AtomicBool,
) {
    while let Ok((hash, code)) = rx.recv() {
        let _done = Done(in_flight, hash);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        compile(&hash, &code);
    }
    for (hash, _) in rx.try_iter() {
        in_flight.remove(&hash);
    }
}
