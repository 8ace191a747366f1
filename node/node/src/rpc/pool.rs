//! The execution pool: a fixed set of threads with the VM's stack size that
//! run views and simulations, fed by a bounded queue, so contract code never
//! runs on (or blocks) the tokio runtime and a burst of calls is refused
//! rather than queued without bound.

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolError {
    /// Every thread is busy and the queue is full.
    Busy,
    /// The pool is shutting down.
    Closed,
}

#[derive(Debug)]
pub(crate) struct ExecPool {
    jobs: SyncSender<Job>,
}

impl ExecPool {
    /// Starts `threads` threads of `stack_bytes` stack with room for
    /// `queue_max` waiting jobs. The threads exit when the pool is dropped.
    pub(crate) fn new(
        threads: usize,
        queue_max: usize,
        stack_bytes: usize,
    ) -> std::io::Result<Self> {
        let (jobs, rx) = sync_channel::<Job>(queue_max);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("rpc-exec-{i}"))
                .stack_size(stack_bytes)
                .spawn(move || {
                    loop {
                        // Hold the lock only to take a job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(ExecPool { jobs })
    }

    /// Runs `f` on a pool thread and awaits its result.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may have gone away; nothing to do then.
            let _ = tx.send(f());
        });
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Busy,
            TrySendError::Disconnected(_) => PoolError::Closed,
        })?;
        rx.await.map_err(|_| PoolError::Closed)
    }
}
