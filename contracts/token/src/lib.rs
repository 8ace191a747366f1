//! A fungible token: the owner mints; holders transfer and approve
//! spenders; `Transfer` and `Approval` events index both parties.
#![cfg_attr(target_arch = "wasm32", no_std)]

use stele_sdk::prelude::*;

#[contract]
pub struct Token {
    name: Item<String>,
    symbol: Item<String>,
    decimals: Item<u8>,
    owner: Item<Address>,
    total_supply: Item<u128>,
    balances: Map<Address, u128>,
    /// (owner, spender) -> remaining allowance.
    allowances: Map<(Address, Address), u128>,
}

#[data]
pub enum TokenError {
    InsufficientBalance {
        have: u128,
        need: u128,
    },
    InsufficientAllowance {
        have: u128,
        need: u128,
    },
    NotOwner,
    /// Minting would overflow the total supply.
    SupplyOverflow,
}

/// Tokens moved (`from` is zero for a mint).
#[event]
pub struct Transfer {
    #[topic]
    pub from: Address,
    #[topic]
    pub to: Address,
    pub amount: u128,
}

/// An allowance was set.
#[event]
pub struct Approval {
    #[topic]
    pub owner: Address,
    #[topic]
    pub spender: Address,
    pub amount: u128,
}

#[contract(events(Transfer, Approval))]
impl Token {
    /// Sets the metadata and gives `initial_supply` tokens to the deployer,
    /// who becomes the owner (the only account that may mint later).
    #[init]
    pub fn init(&mut self, name: String, symbol: String, decimals: u8, initial_supply: u128) {
        let owner = env::caller();
        self.name.set(&name);
        self.symbol.set(&symbol);
        self.decimals.set(&decimals);
        self.owner.set(&owner);
        self.total_supply.set(&initial_supply);
        if initial_supply > 0 {
            self.balances.set(&owner, &initial_supply);
            emit(&Transfer {
                from: Address::ZERO,
                to: owner,
                amount: initial_supply,
            });
        }
    }

    /// Creates `amount` tokens for `to`; owner only.
    pub fn mint(&mut self, to: Address, amount: u128) -> Result<(), TokenError> {
        if Some(env::caller()) != self.owner.get() {
            return Err(TokenError::NotOwner);
        }
        let supply = self.total_supply.get_or_default();
        let supply = supply
            .checked_add(amount)
            .ok_or(TokenError::SupplyOverflow)?;
        self.total_supply.set(&supply);
        // Cannot overflow: a balance is at most the total supply.
        self.balances
            .set(&to, &(self.balances.get_or_default(&to) + amount));
        emit(&Transfer {
            from: Address::ZERO,
            to,
            amount,
        });
        Ok(())
    }

    /// Moves `amount` of the caller's tokens to `to`.
    pub fn transfer(&mut self, to: Address, amount: u128) -> Result<(), TokenError> {
        self.move_tokens(env::caller(), to, amount)
    }

    /// Lets `spender` move up to `amount` of the caller's tokens.
    pub fn approve(&mut self, spender: Address, amount: u128) {
        let owner = env::caller();
        self.allowances.set(&(owner, spender), &amount);
        emit(&Approval {
            owner,
            spender,
            amount,
        });
    }

    /// Moves `amount` from `from` to `to` using the caller's allowance.
    pub fn transfer_from(
        &mut self,
        from: Address,
        to: Address,
        amount: u128,
    ) -> Result<(), TokenError> {
        let key = (from, env::caller());
        let have = self.allowances.get_or_default(&key);
        if have < amount {
            return Err(TokenError::InsufficientAllowance { have, need: amount });
        }
        self.allowances.set(&key, &(have - amount));
        self.move_tokens(from, to, amount)
    }

    fn move_tokens(&mut self, from: Address, to: Address, amount: u128) -> Result<(), TokenError> {
        let have = self.balances.get_or_default(&from);
        if have < amount {
            return Err(TokenError::InsufficientBalance { have, need: amount });
        }
        self.balances.set(&from, &(have - amount));
        self.balances
            .set(&to, &(self.balances.get_or_default(&to) + amount));
        emit(&Transfer { from, to, amount });
        Ok(())
    }

    #[view]
    pub fn balance_of(&self, who: Address) -> u128 {
        self.balances.get_or_default(&who)
    }

    #[view]
    pub fn allowance(&self, owner: Address, spender: Address) -> u128 {
        self.allowances.get_or_default(&(owner, spender))
    }

    #[view]
    pub fn total_supply(&self) -> u128 {
        self.total_supply.get_or_default()
    }

    #[view]
    pub fn name(&self) -> String {
        self.name.get_or_default()
    }

    #[view]
    pub fn symbol(&self) -> String {
        self.symbol.get_or_default()
    }

    #[view]
    pub fn decimals(&self) -> u8 {
        self.decimals.get_or_default()
    }

    #[view]
    pub fn owner(&self) -> Option<Address> {
        self.owner.get()
    }
}
