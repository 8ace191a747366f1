//! A constant-product pool between two token contracts: liquidity and
//! swaps move tokens by cross-contract calls (`transfer_from` in,
//! `transfer` out), so a failing token call reverts the whole swap.
#![cfg_attr(target_arch = "wasm32", no_std)]

use stele_sdk::prelude::*;

/// The token contract's interface (contracts/token).
#[interface]
pub trait Token {
    fn transfer(&mut self, to: Address, amount: u128) -> Result<(), TokenError>;
    fn transfer_from(&mut self, from: Address, to: Address, amount: u128)
    -> Result<(), TokenError>;
    fn balance_of(&self, who: Address) -> u128;
}

/// The token contract's error type, as its ABI describes it.
#[data]
#[derive(Debug)]
pub enum TokenError {
    InsufficientBalance { have: u128, need: u128 },
    InsufficientAllowance { have: u128, need: u128 },
    NotOwner,
    SupplyOverflow,
}

#[contract]
pub struct Pool {
    token_a: Item<Address>,
    token_b: Item<Address>,
    reserve_a: Item<u128>,
    reserve_b: Item<u128>,
    total_shares: Item<u128>,
    shares: Map<Address, u128>,
    locked: Item<bool>,
}

#[data]
pub enum AmmError {
    /// `token_in` is neither of the pool's tokens.
    UnknownToken,
    /// Output below the caller's minimum (slippage).
    Slippage {
        out: u128,
        min_out: u128,
    },
    EmptyPool,
    ZeroAmount,
    /// A token call failed; the token's own error if it gave one.
    TokenFailed(Option<TokenError>),
    /// The pool was re-entered during a swap.
    Reentrant,
    Overflow,
}

/// A swap happened.
#[event]
pub struct Swap {
    #[topic]
    pub trader: Address,
    #[topic]
    pub token_in: Address,
    pub amount_in: u128,
    pub amount_out: u128,
}

fn token_call<T>(r: Result<T, CallError<TokenError>>) -> Result<T, AmmError> {
    match r {
        Ok(v) => Ok(v),
        Err(CallError::Error(e)) => Err(AmmError::TokenFailed(Some(e))),
        Err(_) => Err(AmmError::TokenFailed(None)),
    }
}

#[contract(events(Swap))]
impl Pool {
    #[init]
    pub fn init(&mut self, token_a: Address, token_b: Address) {
        require!(token_a != token_b, "the two tokens must differ");
        self.token_a.set(&token_a);
        self.token_b.set(&token_b);
        self.reserve_a.set(&0);
        self.reserve_b.set(&0);
        self.total_shares.set(&0);
        self.locked.set(&false);
    }

    /// Deposits both tokens (approve the pool first); returns the shares
    /// minted.
    pub fn add_liquidity(&mut self, amount_a: u128, amount_b: u128) -> Result<u128, AmmError> {
        self.lock()?;
        if amount_a == 0 || amount_b == 0 {
            return Err(AmmError::ZeroAmount);
        }
        let me = env::self_address();
        let who = env::caller();
        let (ra, rb, total) = (
            self.reserve_a.get_or_default(),
            self.reserve_b.get_or_default(),
            self.total_shares.get_or_default(),
        );
        let minted = if total == 0 {
            amount_a
        } else {
            let sa = amount_a.checked_mul(total).ok_or(AmmError::Overflow)? / ra;
            let sb = amount_b.checked_mul(total).ok_or(AmmError::Overflow)? / rb;
            sa.min(sb)
        };
        token_call(self.token(true).transfer_from(who, me, amount_a))?;
        token_call(self.token(false).transfer_from(who, me, amount_b))?;
        self.reserve_a
            .set(&ra.checked_add(amount_a).ok_or(AmmError::Overflow)?);
        self.reserve_b
            .set(&rb.checked_add(amount_b).ok_or(AmmError::Overflow)?);
        self.total_shares.set(&(total + minted));
        self.shares
            .set(&who, &(self.shares.get_or_default(&who) + minted));
        self.unlock();
        Ok(minted)
    }

    /// Swaps `amount_in` of `token_in` for the other token, at least
    /// `min_out` of it; 0.3% fee stays in the pool.
    pub fn swap(
        &mut self,
        token_in: Address,
        amount_in: u128,
        min_out: u128,
    ) -> Result<u128, AmmError> {
        self.lock()?;
        if amount_in == 0 {
            return Err(AmmError::ZeroAmount);
        }
        let a_in = if Some(token_in) == self.token_a.get() {
            true
        } else if Some(token_in) == self.token_b.get() {
            false
        } else {
            return Err(AmmError::UnknownToken);
        };
        let (r_in, r_out) = if a_in {
            (
                self.reserve_a.get_or_default(),
                self.reserve_b.get_or_default(),
            )
        } else {
            (
                self.reserve_b.get_or_default(),
                self.reserve_a.get_or_default(),
            )
        };
        if r_in == 0 || r_out == 0 {
            return Err(AmmError::EmptyPool);
        }
        let fee_in = amount_in.checked_mul(997).ok_or(AmmError::Overflow)?;
        let num = fee_in.checked_mul(r_out).ok_or(AmmError::Overflow)?;
        let den = r_in
            .checked_mul(1000)
            .and_then(|d| d.checked_add(fee_in))
            .ok_or(AmmError::Overflow)?;
        let out = num / den;
        if out < min_out || out == 0 {
            return Err(AmmError::Slippage { out, min_out });
        }
        let trader = env::caller();
        token_call(
            self.token(a_in)
                .transfer_from(trader, env::self_address(), amount_in),
        )?;
        token_call(self.token(!a_in).transfer(trader, out))?;
        let (new_in, new_out) = (r_in + amount_in, r_out - out);
        if a_in {
            self.reserve_a.set(&new_in);
            self.reserve_b.set(&new_out);
        } else {
            self.reserve_b.set(&new_in);
            self.reserve_a.set(&new_out);
        }
        emit(&Swap {
            trader,
            token_in,
            amount_in,
            amount_out: out,
        });
        self.unlock();
        Ok(out)
    }

    #[view]
    pub fn reserves(&self) -> (u128, u128) {
        (
            self.reserve_a.get_or_default(),
            self.reserve_b.get_or_default(),
        )
    }

    #[view]
    pub fn shares_of(&self, who: Address) -> u128 {
        self.shares.get_or_default(&who)
    }

    fn token(&self, a: bool) -> TokenRef {
        let addr = if a {
            self.token_a.get()
        } else {
            self.token_b.get()
        };
        TokenRef::new(addr.unwrap_or_default())
    }

    /// The reentrancy guard: a nested entry while a method runs fails.
    /// (Errors revert every write, so an early `Err` leaves it unlocked.)
    fn lock(&mut self) -> Result<(), AmmError> {
        if self.locked.get_or_default() {
            return Err(AmmError::Reentrant);
        }
        self.locked.set(&true);
        Ok(())
    }

    fn unlock(&mut self) {
        self.locked.set(&false);
    }
}
