//! Any bytes either fail to decode with an error or decode to a transaction
//! whose canonical encoding is exactly those bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_types::{Encode, Limits, SignedTransaction, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = decode::<SignedTransaction>(data, &Limits::default()) {
        assert_eq!(tx.to_bytes(), data);
        let _ = tx.verify(tx.tx.chain_id);
    }
});
