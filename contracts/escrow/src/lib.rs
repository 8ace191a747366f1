//! Native-token escrow: the deployer deposits value at deploy; the arbiter
//! (or the depositor) releases it to the beneficiary, or after the deadline
//! height the depositor takes it back.
#![cfg_attr(target_arch = "wasm32", no_std)]

use stele_sdk::prelude::*;

#[data]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    Released,
    Refunded,
}

#[data]
pub enum EscrowError {
    NotAllowed,
    Closed,
    /// Refunds open at `deadline`.
    TooEarly {
        deadline: u64,
    },
    TransferFailed,
}

#[contract]
pub struct Escrow {
    depositor: Item<Address>,
    beneficiary: Item<Address>,
    arbiter: Item<Address>,
    deadline: Item<u64>,
    amount: Item<u128>,
    state: Item<State>,
}

/// The escrow was settled.
#[event]
pub struct Settled {
    #[topic]
    pub to: Address,
    pub amount: u128,
}

#[contract(events(Settled))]
impl Escrow {
    #[init]
    #[payable]
    pub fn init(&mut self, beneficiary: Address, arbiter: Address, deadline: u64) {
        require!(env::value() > 0, "deposit some value");
        require!(deadline > env::block_height(), "deadline is in the past");
        self.depositor.set(&env::caller());
        self.beneficiary.set(&beneficiary);
        self.arbiter.set(&arbiter);
        self.deadline.set(&deadline);
        self.amount.set(&env::value());
        self.state.set(&State::Open);
    }

    /// Pays the deposit to the beneficiary; arbiter or depositor only.
    pub fn release(&mut self) -> Result<(), EscrowError> {
        let caller = Some(env::caller());
        if caller != self.arbiter.get() && caller != self.depositor.get() {
            return Err(EscrowError::NotAllowed);
        }
        let to = self.beneficiary.get().unwrap_or_default();
        self.settle(to, State::Released)
    }

    /// Returns the deposit to the depositor once the deadline height is
    /// reached.
    pub fn refund(&mut self) -> Result<(), EscrowError> {
        let deadline = self.deadline.get_or_default();
        if env::block_height() < deadline {
            return Err(EscrowError::TooEarly { deadline });
        }
        let to = self.depositor.get().unwrap_or_default();
        self.settle(to, State::Refunded)
    }

    #[view]
    pub fn state(&self) -> State {
        self.state.get().unwrap_or(State::Open)
    }

    fn settle(&mut self, to: Address, next: State) -> Result<(), EscrowError> {
        if self.state.get() != Some(State::Open) {
            return Err(EscrowError::Closed);
        }
        let amount = self.amount.get_or_default();
        env::transfer(&to, amount).map_err(|_| EscrowError::TransferFailed)?;
        self.state.set(&next);
        emit(&Settled { to, amount });
        Ok(())
    }
}
