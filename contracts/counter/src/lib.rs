//! The tutorial contract (docs/contracts.md): a counter anyone can
//! increment, that only its owner can reset, with a cap as a typed error.
#![cfg_attr(target_arch = "wasm32", no_std)]

use stele_sdk::prelude::*;

#[contract]
pub struct Counter {
    count: Item<u64>,
    owner: Item<Address>,
    max: Item<u64>,
}

/// Why a counter call fails.
#[data]
pub enum CounterError {
    /// Incrementing would pass the cap.
    AtMax {
        max: u64,
    },
    NotOwner,
}

/// Emitted on every change.
#[event]
pub struct Changed {
    #[topic]
    pub by: Address,
    pub count: u64,
}

#[contract(events(Changed))]
impl Counter {
    /// Starts at `start`, capped at `max`; the deployer owns the counter.
    #[init]
    pub fn init(&mut self, start: u64, max: u64) {
        require!(start <= max, "start is above max");
        self.count.set(&start);
        self.max.set(&max);
        self.owner.set(&env::caller());
    }

    /// Adds `by`; returns the new count.
    pub fn increment(&mut self, by: u64) -> Result<u64, CounterError> {
        let max = self.max.get_or_default();
        let next = self.count.get_or_default().saturating_add(by);
        if next > max {
            return Err(CounterError::AtMax { max });
        }
        self.count.set(&next);
        emit(&Changed {
            by: env::caller(),
            count: next,
        });
        Ok(next)
    }

    /// Back to zero; owner only.
    pub fn reset(&mut self) -> Result<(), CounterError> {
        if Some(env::caller()) != self.owner.get() {
            return Err(CounterError::NotOwner);
        }
        self.count.set(&0);
        emit(&Changed {
            by: env::caller(),
            count: 0,
        });
        Ok(())
    }

    /// Accepts a tip; returns the contract's balance.
    #[payable]
    pub fn tip(&mut self) -> u128 {
        env::balance(&env::self_address())
    }

    #[view]
    pub fn get(&self) -> u64 {
        self.count.get_or_default()
    }

    #[view]
    pub fn owner(&self) -> Option<Address> {
        self.owner.get()
    }
}
