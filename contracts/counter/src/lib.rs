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

    /// Replaces the counter's code (owner only); the new code's `migrate`
    /// then runs with `new_max`. A failed migration leaves the code as it
    /// was and reverts this call with the migration's error.
    pub fn upgrade(&mut self, code: Vec<u8>, new_max: u64) -> Result<(), CounterError> {
        if Some(env::caller()) != self.owner.get() {
            return Err(CounterError::NotOwner);
        }
        stele_sdk::upgrade(&code, &(new_max,), CallOptions::default()).or_revert();
        Ok(())
    }

    /// Runs once after an upgrade to this code: sets a new cap.
    #[migrate]
    pub fn migrate(&mut self, new_max: u64) {
        require!(
            new_max >= self.count.get_or_default(),
            "the new max is below the count"
        );
        self.max.set(&new_max);
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
    pub fn max(&self) -> u64 {
        self.max.get_or_default()
    }

    #[view]
    pub fn owner(&self) -> Option<Address> {
        self.owner.get()
    }
}
