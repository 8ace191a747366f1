//! A multisig wallet: owners propose a call (contract, method, encoded
//! arguments, value), approve it, and once `threshold` owners approved,
//! anyone of them executes it from the wallet's address.
#![cfg_attr(target_arch = "wasm32", no_std)]

use stele_sdk::call::{CallOptions, Status, call_raw};
use stele_sdk::prelude::*;

#[data]
pub struct Proposal {
    pub target: Address,
    pub method: String,
    /// Borsh-encoded argument tuple of `method`.
    pub args: Vec<u8>,
    pub value: u128,
    pub approvals: u32,
    pub executed: bool,
}

#[data]
pub enum MultisigError {
    NotOwner,
    NoSuchProposal,
    AlreadyApproved,
    AlreadyExecuted,
    NotEnoughApprovals {
        have: u32,
        need: u32,
    },
    /// The proposed call did not succeed: its status code and output.
    CallFailed {
        status: u8,
        output: Vec<u8>,
    },
}

#[contract]
pub struct Multisig {
    owners: Map<Address, ()>,
    threshold: Item<u32>,
    proposals: Vector<Proposal>,
    approved: Map<(u32, Address), ()>,
}

/// Most owners of a wallet.
const OWNERS_MAX: usize = 32;

#[contract]
impl Multisig {
    #[init]
    pub fn init(&mut self, owners: Vec<Address>, threshold: u32) {
        require!(
            !owners.is_empty() && owners.len() <= OWNERS_MAX,
            "1 to 32 owners"
        );
        require!(
            threshold >= 1 && threshold as usize <= owners.len(),
            "threshold out of range"
        );
        for o in &owners {
            require!(!self.owners.contains(o), "duplicate owner");
            self.owners.set(o, &());
        }
        self.threshold.set(&threshold);
    }

    /// Proposes a call (counts as the proposer's approval); returns its id.
    pub fn propose(
        &mut self,
        target: Address,
        method: String,
        args: Vec<u8>,
        value: u128,
    ) -> Result<u32, MultisigError> {
        let me = self.owner()?;
        let id = self.proposals.len();
        self.proposals.push(&Proposal {
            target,
            method,
            args,
            value,
            approvals: 1,
            executed: false,
        });
        self.approved.set(&(id, me), &());
        Ok(id)
    }

    pub fn approve(&mut self, id: u32) -> Result<u32, MultisigError> {
        let me = self.owner()?;
        let mut p = self
            .proposals
            .get(id)
            .ok_or(MultisigError::NoSuchProposal)?;
        if p.executed {
            return Err(MultisigError::AlreadyExecuted);
        }
        if self.approved.contains(&(id, me)) {
            return Err(MultisigError::AlreadyApproved);
        }
        self.approved.set(&(id, me), &());
        p.approvals += 1;
        self.proposals.set(id, &p);
        Ok(p.approvals)
    }

    /// Runs an approved proposal; returns the callee's return data.
    pub fn execute(&mut self, id: u32) -> Result<Vec<u8>, MultisigError> {
        self.owner()?;
        let mut p = self
            .proposals
            .get(id)
            .ok_or(MultisigError::NoSuchProposal)?;
        if p.executed {
            return Err(MultisigError::AlreadyExecuted);
        }
        let need = self.threshold.get_or_default();
        if p.approvals < need {
            return Err(MultisigError::NotEnoughApprovals {
                have: p.approvals,
                need,
            });
        }
        p.executed = true;
        self.proposals.set(id, &p);
        let opts = CallOptions {
            value: p.value,
            gas: 0,
        };
        match call_raw(&p.target, &p.method, &p.args, opts) {
            (Status::Success, out) => Ok(out),
            (status, output) => Err(MultisigError::CallFailed {
                status: status as u8,
                output,
            }),
        }
    }

    #[view]
    pub fn proposal(&self, id: u32) -> Option<Proposal> {
        self.proposals.get(id)
    }

    #[view]
    pub fn threshold(&self) -> u32 {
        self.threshold.get_or_default()
    }

    fn owner(&self) -> Result<Address, MultisigError> {
        let me = env::caller();
        if self.owners.contains(&me) {
            Ok(me)
        } else {
            Err(MultisigError::NotOwner)
        }
    }
}
