//! Any bytes either fail to decode with an error or decode to a block whose
//! canonical encoding is exactly those bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_types::{Block, Encode, Limits, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = decode::<Block>(data, &Limits::default()) {
        assert_eq!(block.to_bytes(), data);
        let _ = block.compute_tx_root();
    }
});
