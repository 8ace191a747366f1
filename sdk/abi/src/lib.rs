//! The Stele contract ABI: method, type and event descriptions, and Borsh argument encoding from JSON values.
