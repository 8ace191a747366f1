//! The protocol the chain executes under and the upgrade it scheduled, as
//! the committed tip's state says (ADR 0011), and what this node does
//! about them: it builds an upgrade's VM and compiles every contract for
//! it while the old rules still run, and a node that lacks a version stops
//! after the last block it can execute, with a message naming it.

use std::sync::Arc;

use stele_exec::upgrade;
use stele_exec::{Executor, ScheduledUpgrade, StateBase, StateWorld};
use stele_types::ProtocolParams;
use stele_vm::EXEC_THREAD_STACK_BYTES;
use tracing::{error, info, warn};

use super::{NodeError, Shared};

/// The protocol of the block after the tip, and the upgrade scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolView {
    pub active: ProtocolParams,
    pub scheduled: Option<ScheduledUpgrade>,
}

impl ProtocolView {
    /// What a block on `base` executes under, and what is scheduled.
    pub(super) fn on(executor: &Executor, base: &StateBase) -> Result<ProtocolView, NodeError> {
        let world = StateWorld::new(base.clone());
        let read = |e: stele_vm::WorldError| NodeError::Protocol(e.to_string());
        Ok(ProtocolView {
            active: upgrade::active(&world, &executor.config().protocol).map_err(read)?,
            scheduled: upgrade::scheduled(&world).map_err(read)?,
        })
    }

    /// The genesis's protocol, nothing scheduled.
    pub(super) fn genesis(executor: &Executor) -> ProtocolView {
        ProtocolView {
            active: executor.config().protocol.clone(),
            scheduled: None,
        }
    }

    /// That this node can execute the block after `tip`: otherwise it
    /// must stop here, before it, rather than refuse the chain's blocks or
    /// execute them under rules it does not have.
    pub(super) fn check_next(&self, executor: &Executor, tip: u64) -> Result<(), NodeError> {
        executor
            .supports(&self.active)
            .map_err(|reason| NodeError::ProtocolUnsupported {
                height: tip.saturating_add(1),
                reason,
            })
    }
}

/// Gets ready for the scheduled upgrade, if any: builds its VM and, on a
/// thread of its own, compiles every stored contract for it, so the first
/// blocks under it pay no compile; or, when this node lacks one of its
/// versions, tells the operator when it will stop.
pub(super) fn prepare(shared: &Arc<Shared>, view: &ProtocolView) {
    let Some(s) = &view.scheduled else {
        return;
    };
    let at = s.activation_height;
    if let Err(reason) = shared.executor.supports(&s.params) {
        error!(
            activation_height = at,
            gas_schedule_version = s.params.gas_schedule_version,
            vm_limits_version = s.params.vm_limits_version,
            %reason,
            "a protocol upgrade this node cannot run activates at height {at}: it will stop after block {}; install a build that has it before then",
            at.saturating_sub(1)
        );
        return;
    }
    info!(
        activation_height = at,
        gas_schedule_version = s.params.gas_schedule_version,
        vm_limits_version = s.params.vm_limits_version,
        "a protocol upgrade is scheduled; compiling the contracts for its VM"
    );
    let executor = shared.executor.clone();
    let state = shared.state.clone();
    let params = s.params.clone();
    let warm = move || {
        let vm = match executor.vm_for(&params) {
            Ok(vm) => vm,
            Err(reason) => {
                error!(%reason, "cannot build the VM of the scheduled upgrade");
                return;
            }
        };
        let view = match state.read() {
            Ok(state) => state.view(),
            Err(_) => return,
        };
        if let Some(view) = view
            && let Err(e) = super::open::warm_contracts_in(&vm, &view)
        {
            warn!(error = %e, "compiling contracts for the scheduled upgrade failed; blocks under it compile them as they run them");
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("stele-upgrade-warm".into())
        .stack_size(EXEC_THREAD_STACK_BYTES)
        .spawn(warm)
    {
        warn!(error = %e, "cannot start compiling contracts for the scheduled upgrade");
    }
}
