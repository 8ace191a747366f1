//! Not an example: what the SDK guarantees, tried on the real VM by
//! `sdk/testkit/tests/probe.rs`. Its views try to change things, which the
//! SDK refuses however the view is called.
#![cfg_attr(target_arch = "wasm32", no_std)]
use stele_sdk::prelude::*;

#[contract]
pub struct Probe {
    n: Item<u64>,
}

#[event]
pub struct Poked {
    pub n: u64,
}

#[contract(events(Poked))]
impl Probe {
    /// A call: writes and emits.
    pub fn poke(&mut self, n: u64) {
        self.n.set(&n);
        emit(&Poked { n });
    }

    #[view]
    pub fn get(&self) -> u64 {
        self.n.get_or_default()
    }

    /// A view that writes through `&self`: refused.
    #[view]
    pub fn write_in_view(&self) -> u64 {
        self.n.set(&7);
        7
    }

    /// A view that emits: refused.
    #[view]
    pub fn emit_in_view(&self) {
        emit(&Poked { n: 9 });
    }

    /// Writes two debug log lines, then reverts if asked: the lines show
    /// in the trace either way, and never on chain.
    pub fn logged(&mut self, n: u64, fail: bool) -> u64 {
        log!("logged n={n} by {}", env::caller());
        env::log("a plain line");
        require!(!fail, "asked to fail");
        n + 1
    }

    /// A view logs too.
    #[view]
    pub fn logged_view(&self) -> u64 {
        let n = self.n.get_or_default();
        log!("viewing n={n}");
        n
    }

    /// The height and time the view runs at.
    #[view]
    pub fn now(&self) -> (u64, u64) {
        (env::block_height(), env::block_timestamp_ms())
    }

    /// Allocates a block of each of `sizes` bytes, filled with its index +
    /// 1 and all kept to the end: the memory's pages before and after, and
    /// the sum of every byte allocated.
    #[view]
    pub fn heap_pages(&self, sizes: Vec<u32>) -> (u32, u32, u64) {
        let before = memory_pages();
        let blocks: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| vec![i as u8 + 1; *n as usize])
            .collect();
        let sum = blocks
            .iter()
            .flat_map(|b| b.iter())
            .map(|x| u64::from(*x))
            .sum();
        (before, memory_pages(), sum)
    }
}

/// The frame's memory size in 64 KiB pages (0 off wasm32).
fn memory_pages() -> u32 {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) as u32
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}
