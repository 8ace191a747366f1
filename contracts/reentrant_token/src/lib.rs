//! Test fixture, not an example: a "token" that, once armed, tries to
//! re-enter the pool that calls its `transfer_from` (a second swap inside
//! the first), and records what the VM answered. It keeps no balances:
//! transfers succeed without moving anything.
#![cfg_attr(target_arch = "wasm32", no_std)]

use stele_sdk::Status;
use stele_sdk::prelude::*;

/// The pool's swap (contracts/amm).
#[interface]
pub trait Pool {
    fn swap(&mut self, token_in: Address, amount_in: u128, min_out: u128) -> u128;
}

/// The error type the pool expects from a token.
#[data]
pub enum TokenError {
    InsufficientBalance { have: u128, need: u128 },
    InsufficientAllowance { have: u128, need: u128 },
    NotOwner,
    SupplyOverflow,
}

#[contract]
pub struct ReentrantToken {
    armed: Item<bool>,
    /// The last re-entry attempt: 0 it got in, 1 the VM refused the call,
    /// 2 it failed otherwise.
    reentry_status: Item<u32>,
}

#[contract]
impl ReentrantToken {
    #[init]
    pub fn init(&mut self) {}

    /// From now on, `transfer_from` tries to re-enter its caller.
    pub fn arm(&mut self) {
        self.armed.set(&true);
    }

    pub fn transfer(&mut self, _to: Address, _amount: u128) -> Result<(), TokenError> {
        Ok(())
    }

    pub fn transfer_from(
        &mut self,
        _from: Address,
        _to: Address,
        amount: u128,
    ) -> Result<(), TokenError> {
        if self.armed.get_or_default() {
            let pool = PoolRef::new(env::caller());
            let status = match pool.swap(env::self_address(), amount, 0) {
                Ok(_) => 0,
                Err(CallError::Failed {
                    status: Status::Failed,
                    ..
                }) => 1,
                Err(_) => 2,
            };
            self.reentry_status.set(&status);
        }
        Ok(())
    }

    #[view]
    pub fn balance_of(&self, _who: Address) -> u128 {
        0
    }

    /// See `reentry_status` in the struct.
    #[view]
    pub fn reentry_status(&self) -> Option<u32> {
        self.reentry_status.get()
    }
}
