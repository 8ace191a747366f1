//! Non-fungible tokens: the owner mints ids; holders transfer them; the
//! tokens of an owner are listed by prefix iteration.
#![cfg_attr(target_arch = "wasm32", no_std)]

use stele_sdk::prelude::*;

#[contract]
pub struct Nft {
    minter: Item<Address>,
    owners: Map<u64, Address>,
    /// (owner, id): one entry per token held, for `tokens_of`.
    holdings: Map<(Address, u64), ()>,
}

#[data]
pub enum NftError {
    NotMinter,
    AlreadyMinted,
    NoSuchToken,
    NotTokenOwner,
}

/// A token changed hands (`from` is zero for a mint).
#[event]
pub struct Transfer {
    #[topic]
    pub from: Address,
    #[topic]
    pub to: Address,
    #[topic]
    pub id: u64,
}

/// Most ids `tokens_of` returns in one call.
const PAGE_MAX: u32 = 100;

#[contract(events(Transfer))]
impl Nft {
    #[init]
    pub fn init(&mut self) {
        self.minter.set(&env::caller());
    }

    pub fn mint(&mut self, to: Address, id: u64) -> Result<(), NftError> {
        if Some(env::caller()) != self.minter.get() {
            return Err(NftError::NotMinter);
        }
        if self.owners.contains(&id) {
            return Err(NftError::AlreadyMinted);
        }
        self.owners.set(&id, &to);
        self.holdings.set(&(to, id), &());
        emit(&Transfer {
            from: Address::ZERO,
            to,
            id,
        });
        Ok(())
    }

    /// Moves token `id` from the caller to `to`.
    pub fn transfer(&mut self, to: Address, id: u64) -> Result<(), NftError> {
        let from = self.owners.get(&id).ok_or(NftError::NoSuchToken)?;
        if from != env::caller() {
            return Err(NftError::NotTokenOwner);
        }
        self.owners.set(&id, &to);
        self.holdings.remove(&(from, id));
        self.holdings.set(&(to, id), &());
        emit(&Transfer { from, to, id });
        Ok(())
    }

    #[view]
    pub fn owner_of(&self, id: u64) -> Option<Address> {
        self.owners.get(&id)
    }

    /// Ids held by `owner` above `after` (exclusive; `None` from the start),
    /// ascending, at most 100.
    #[view]
    pub fn tokens_of(&self, owner: Address, after: Option<u64>) -> Vec<u64> {
        self.holdings
            .iter_prefix(&owner)
            .map(|((_, id), ())| id)
            .filter(|id| after.is_none_or(|a| *id > a))
            .take(PAGE_MAX as usize)
            .collect()
    }
}
