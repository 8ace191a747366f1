//! The contract's heap: dlmalloc, asking the VM for memory in small steps.
//!
//! A frame's memory lives for one call, so what matters is that an ordinary
//! call never grows it. The linker rounds the initial memory up to whole
//! 64 KiB pages; the part past the data and the stack (`__heap_base` to
//! `__heap_end`) is free. dlmalloc's wasm backend hands that part over on
//! its first request if the request fits, and grows memory otherwise. With
//! dlmalloc's default granularity every request is at least 64 KiB, which
//! the free part (under a page) never fits: every call that allocated
//! anything grew memory by a page, paid `memory.grow`'s gas, and the node
//! changed the slot's page protection to grow it and again to shrink it for
//! the next instance. Requests rounded to 4 KiB fit, so a call that
//! allocates less than the free part never grows memory; later requests
//! grow it contiguously and dlmalloc merges the two.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

use dlmalloc::Dlmalloc;

/// What dlmalloc rounds its requests for more memory up to.
const GRANULARITY: usize = 4096;

/// The global allocator of every SDK contract.
pub struct Heap(UnsafeCell<Dlmalloc>);

// SAFETY: a wasm32 contract has one thread; nothing else reaches the cell.
unsafe impl Sync for Heap {}

impl Heap {
    pub const fn new() -> Heap {
        let mut dlmalloc = Dlmalloc::new();
        assert!(dlmalloc.set_granularity(GRANULARITY));
        Heap(UnsafeCell::new(dlmalloc))
    }

    #[allow(clippy::mut_from_ref)]
    fn get(&self) -> &mut Dlmalloc {
        // SAFETY: one thread, and no method below re-enters the allocator
        // while holding this borrow.
        unsafe { &mut *self.0.get() }
    }
}

// SAFETY: delegates to dlmalloc, which upholds `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { self.get().malloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.get().free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { self.get().calloc(layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            self.get()
                .realloc(ptr, layout.size(), layout.align(), new_size)
        }
    }
}
