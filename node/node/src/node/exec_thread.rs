//! Where blocks execute and commit, one job at a time (ADR 0007).

use stele_vm::EXEC_THREAD_STACK_BYTES;
use tokio::sync::oneshot;

use super::NodeError;

type Job = Box<dyn FnOnce() + Send>;

/// Where blocks execute (Wasm needs a deep native stack): in place on the
/// calling worker thread of a multi-threaded runtime built by
/// [`super::runtime`], or on a dedicated thread with that stack.
#[derive(Clone)]
pub(super) struct ExecThread {
    /// `None`: run jobs in place (`exec_inline`).
    jobs: Option<std::sync::mpsc::Sender<Job>>,
}

impl ExecThread {
    pub(super) fn start(inline: bool) -> Result<ExecThread, NodeError> {
        let inline = inline
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if inline {
            return Ok(ExecThread { jobs: None });
        }
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("stele-exec".into())
            .stack_size(EXEC_THREAD_STACK_BYTES)
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .map_err(NodeError::ExecThreadStart)?;
        Ok(ExecThread { jobs: Some(jobs) })
    }

    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        let Some(jobs) = &self.jobs else {
            return Ok(tokio::task::block_in_place(f));
        };
        let (tx, rx) = oneshot::channel();
        jobs.send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .map_err(|_| NodeError::ExecThreadGone)?;
        rx.await.map_err(|_| NodeError::ExecThreadGone)
    }
}
