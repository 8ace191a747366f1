//! Safe wrappers over the VM's `stele` host functions (`docs/vm.md`), or,
//! off wasm32, over the in-memory mock in [`crate::testing`].

use alloc::vec;
use alloc::vec::Vec;

/// First read of a storage value or call result goes into a buffer this
/// big; longer values are read again at their exact size.
const READ_GUESS_BYTES: usize = 256;
/// Keys are at most 256 bytes (VM limit).
pub(crate) const KEY_BYTES_MAX: usize = 256;

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::host::*;

/// Reads a storage value of any length.
pub(crate) fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; READ_GUESS_BYTES];
    let len = storage_read(key, &mut buf)?;
    if len > buf.len() {
        buf = vec![0u8; len];
        storage_read(key, &mut buf)?;
    }
    buf.truncate(len);
    Some(buf)
}

// The host imports are `extern "C"` functions, which Rust can only call in
// `unsafe` blocks; this module and the global allocator (`heap.rs`) are the
// SDK's only unsafe code. Every pointer passed is to a live Rust buffer of
// the stated length, and the VM bounds-checks them again.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod wasm {
    use alloc::vec;
    use alloc::vec::Vec;

    mod raw {
        #[link(wasm_import_module = "stele")]
        unsafe extern "C" {
            pub fn input_len() -> i32;
            pub fn input_read(dst: *mut u8);
            pub fn set_return(ptr: *const u8, len: i32);
            pub fn revert(ptr: *const u8, len: i32) -> !;
            pub fn storage_read(kp: *const u8, kl: i32, dst: *mut u8, cap: i32) -> i64;
            pub fn storage_write(kp: *const u8, kl: i32, vp: *const u8, vl: i32);
            pub fn storage_remove(kp: *const u8, kl: i32) -> i32;
            pub fn storage_has(kp: *const u8, kl: i32) -> i32;
            pub fn storage_next(
                pp: *const u8,
                pl: i32,
                cp: *const u8,
                cl: i32,
                kd: *mut u8,
                kc: i32,
                vd: *mut u8,
                vc: i32,
            ) -> i64;
            pub fn caller(dst: *mut u8);
            pub fn origin(dst: *mut u8);
            pub fn self_address(dst: *mut u8);
            pub fn value(dst: *mut u8);
            pub fn block_height() -> i64;
            pub fn block_timestamp() -> i64;
            pub fn chain_id() -> i64;
            pub fn tx_hash(dst: *mut u8);
            pub fn gas_left() -> i64;
            pub fn balance(addr: *const u8, dst: *mut u8);
            pub fn transfer(to: *const u8, amount: *const u8) -> i32;
            pub fn emit_event(tp: *const u8, tc: i32, dp: *const u8, dl: i32);
            pub fn debug_log(ptr: *const u8, len: i32);
            pub fn keccak256(ptr: *const u8, len: i32, dst: *mut u8);
            pub fn sha3_256(ptr: *const u8, len: i32, dst: *mut u8);
            pub fn secp256k1_recover(digest: *const u8, sig: *const u8, pubkey_dst: *mut u8)
            -> i32;
            pub fn secp256k1_verify(digest: *const u8, sig: *const u8, pubkey: *const u8) -> i32;
            pub fn call(
                addr: *const u8,
                mp: *const u8,
                ml: i32,
                ap: *const u8,
                al: i32,
                value: *const u8,
                gas: i64,
            ) -> i32;
            pub fn deploy(
                cp: *const u8,
                cl: i32,
                ap: *const u8,
                al: i32,
                value: *const u8,
                gas: i64,
                addr_dst: *mut u8,
            ) -> i32;
            pub fn upgrade(cp: *const u8, cl: i32, ap: *const u8, al: i32, gas: i64) -> i32;
            pub fn result_len() -> i32;
            pub fn result_read(dst: *mut u8);
        }
    }

    pub fn input() -> Vec<u8> {
        unsafe {
            let mut buf = vec![0u8; raw::input_len() as u32 as usize];
            raw::input_read(buf.as_mut_ptr());
            buf
        }
    }
    pub fn set_return(b: &[u8]) {
        unsafe { raw::set_return(b.as_ptr(), b.len() as i32) }
    }
    pub fn revert(b: &[u8]) -> ! {
        unsafe { raw::revert(b.as_ptr(), b.len() as i32) }
    }
    pub fn storage_read(key: &[u8], dst: &mut [u8]) -> Option<usize> {
        let n = unsafe {
            raw::storage_read(
                key.as_ptr(),
                key.len() as i32,
                dst.as_mut_ptr(),
                dst.len() as i32,
            )
        };
        (n >= 0).then_some(n as usize)
    }
    pub fn storage_write(key: &[u8], val: &[u8]) {
        crate::__rt::check_writable();
        unsafe {
            raw::storage_write(
                key.as_ptr(),
                key.len() as i32,
                val.as_ptr(),
                val.len() as i32,
            )
        }
    }
    pub fn storage_remove(key: &[u8]) -> bool {
        crate::__rt::check_writable();
        unsafe { raw::storage_remove(key.as_ptr(), key.len() as i32) == 1 }
    }
    pub fn storage_has(key: &[u8]) -> bool {
        unsafe { raw::storage_has(key.as_ptr(), key.len() as i32) == 1 }
    }
    /// Next entry after `cursor` under `prefix`: (key, value) with the
    /// key copied in full (keys are at most 256 bytes) and the value
    /// truncated to `val.len()`, plus the value's full length.
    pub fn storage_next(
        prefix: &[u8],
        cursor: &[u8],
        key: &mut [u8; super::KEY_BYTES_MAX],
        val: &mut [u8],
    ) -> Option<(usize, usize)> {
        let r = unsafe {
            raw::storage_next(
                prefix.as_ptr(),
                prefix.len() as i32,
                cursor.as_ptr(),
                cursor.len() as i32,
                key.as_mut_ptr(),
                key.len() as i32,
                val.as_mut_ptr(),
                val.len() as i32,
            )
        };
        (r >= 0).then_some(((r >> 32) as usize, (r & 0xffff_ffff) as usize))
    }
    fn addr(f: unsafe extern "C" fn(*mut u8)) -> [u8; 20] {
        let mut a = [0u8; 20];
        unsafe { f(a.as_mut_ptr()) };
        a
    }
    pub fn caller() -> [u8; 20] {
        addr(raw::caller)
    }
    pub fn origin() -> [u8; 20] {
        addr(raw::origin)
    }
    pub fn self_address() -> [u8; 20] {
        addr(raw::self_address)
    }
    pub fn value() -> u128 {
        let mut v = [0u8; 16];
        unsafe { raw::value(v.as_mut_ptr()) };
        u128::from_le_bytes(v)
    }
    pub fn block_height() -> u64 {
        unsafe { raw::block_height() as u64 }
    }
    pub fn block_timestamp() -> u64 {
        unsafe { raw::block_timestamp() as u64 }
    }
    pub fn chain_id() -> u64 {
        unsafe { raw::chain_id() as u64 }
    }
    pub fn tx_hash() -> [u8; 32] {
        let mut h = [0u8; 32];
        unsafe { raw::tx_hash(h.as_mut_ptr()) };
        h
    }
    pub fn gas_left() -> u64 {
        unsafe { raw::gas_left() as u64 }
    }
    pub fn balance(a: &[u8; 20]) -> u128 {
        let mut v = [0u8; 16];
        unsafe { raw::balance(a.as_ptr(), v.as_mut_ptr()) };
        u128::from_le_bytes(v)
    }
    pub fn transfer(to: &[u8; 20], amount: u128) -> bool {
        crate::__rt::check_writable();
        let a = amount.to_le_bytes();
        unsafe { raw::transfer(to.as_ptr(), a.as_ptr()) == 0 }
    }
    pub fn emit_event(topics: &[[u8; 32]], data: &[u8]) {
        crate::__rt::check_writable();
        unsafe {
            raw::emit_event(
                topics.as_ptr() as *const u8,
                topics.len() as i32,
                data.as_ptr(),
                data.len() as i32,
            )
        }
    }
    pub fn debug_log(line: &[u8]) {
        unsafe { raw::debug_log(line.as_ptr(), line.len() as i32) }
    }
    pub fn keccak256(data: &[u8]) -> [u8; 32] {
        let mut h = [0u8; 32];
        unsafe { raw::keccak256(data.as_ptr(), data.len() as i32, h.as_mut_ptr()) };
        h
    }
    pub fn sha3_256(data: &[u8]) -> [u8; 32] {
        let mut h = [0u8; 32];
        unsafe { raw::sha3_256(data.as_ptr(), data.len() as i32, h.as_mut_ptr()) };
        h
    }
    pub fn secp256k1_recover(digest: &[u8; 32], sig: &[u8; 65]) -> Option<[u8; 33]> {
        let mut key = [0u8; 33];
        let r = unsafe { raw::secp256k1_recover(digest.as_ptr(), sig.as_ptr(), key.as_mut_ptr()) };
        (r == 0).then_some(key)
    }
    pub fn secp256k1_verify(digest: &[u8; 32], sig: &[u8; 65], key: &[u8; 33]) -> bool {
        unsafe { raw::secp256k1_verify(digest.as_ptr(), sig.as_ptr(), key.as_ptr()) == 1 }
    }
    fn result() -> Vec<u8> {
        unsafe {
            let mut buf = vec![0u8; raw::result_len() as u32 as usize];
            raw::result_read(buf.as_mut_ptr());
            buf
        }
    }
    pub fn call(to: &[u8; 20], method: &str, args: &[u8], value: u128, gas: u64) -> (u32, Vec<u8>) {
        if value > 0 {
            crate::__rt::check_writable();
        }
        let v = value.to_le_bytes();
        let status = unsafe {
            raw::call(
                to.as_ptr(),
                method.as_ptr(),
                method.len() as i32,
                args.as_ptr(),
                args.len() as i32,
                v.as_ptr(),
                gas as i64,
            )
        };
        (status as u32, result())
    }
    pub fn deploy(code: &[u8], args: &[u8], value: u128, gas: u64) -> (u32, [u8; 20], Vec<u8>) {
        crate::__rt::check_writable();
        let v = value.to_le_bytes();
        let mut addr = [0u8; 20];
        let status = unsafe {
            raw::deploy(
                code.as_ptr(),
                code.len() as i32,
                args.as_ptr(),
                args.len() as i32,
                v.as_ptr(),
                gas as i64,
                addr.as_mut_ptr(),
            )
        };
        (status as u32, addr, result())
    }
    pub fn upgrade(code: &[u8], args: &[u8], gas: u64) -> (u32, Vec<u8>) {
        crate::__rt::check_writable();
        let status = unsafe {
            raw::upgrade(
                code.as_ptr(),
                code.len() as i32,
                args.as_ptr(),
                args.len() as i32,
                gas as i64,
            )
        };
        (status as u32, result())
    }
}
