//! The account record (defined in `stele_types`, which clients share) and
//! where contract code is stored.

use stele_types::Hash;
use stele_types::proof::{Namespace, StateKey};

pub use stele_types::account::Account;

/// Where code with `code_hash` is stored: contracts with the same code
/// share one copy.
pub fn code_key(code_hash: &Hash) -> StateKey {
    StateKey::new(Namespace::Code, code_hash.0.to_vec())
}
