//! Off-wasm32 only: an in-memory stand-in for the VM so SDK and contract
//! logic can be unit-tested on the host. It models storage, context and
//! events; cross-contract calls answer as [`mock_call`] says (and report
//! [`crate::Status::Failed`] when nothing was mocked for them), deploys and
//! upgrades report `Failed`. Integration tests of real Wasm on the real VM
//! use `stele-testkit`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::Address;

/// The mock chain's state for the current thread.
#[derive(Debug, Default, Clone)]
pub struct Mock {
    pub storage: BTreeMap<Vec<u8>, Vec<u8>>,
    pub caller: Address,
    pub origin: Address,
    pub self_address: Address,
    pub value: u128,
    pub block_height: u64,
    pub block_timestamp_ms: u64,
    pub chain_id: u64,
    pub balances: BTreeMap<Address, u128>,
    pub input: Vec<u8>,
    pub returned: Option<Vec<u8>>,
    /// Emitted events: topics and data.
    pub events: Vec<(Vec<[u8; 32]>, Vec<u8>)>,
    /// Debug log lines ([`crate::log!`]), in order.
    pub logs: Vec<String>,
}

thread_local! {
    static MOCK: RefCell<Mock> = RefCell::new(Mock::default());
}

/// The payload of a revert on the host: raised as a panic with this value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reverted(pub Vec<u8>);

/// Replaces the mock state of this thread, and forgets its call mocks and
/// the calls made.
pub fn reset(mock: Mock) {
    MOCK.with(|m| *m.borrow_mut() = mock);
    CALLS.with(|c| *c.borrow_mut() = (BTreeMap::new(), Vec::new()));
}

/// Reads or changes the mock state of this thread.
pub fn with<R>(f: impl FnOnce(&mut Mock) -> R) -> R {
    MOCK.with(|m| f(&mut m.borrow_mut()))
}

/// What a mocked callee answers ([`mock_call`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Success, with the Borsh encoding of the return value.
    Returns(Vec<u8>),
    /// A revert with this payload (a message: tag 0; a typed error: tag 1).
    Reverts(Vec<u8>),
    /// Out of gas, trapped or failed: the status code (2, 3 or 4) and the
    /// output.
    Fails(u32, Vec<u8>),
}

impl Reply {
    /// Success returning `value`.
    pub fn returns<T: borsh::BorshSerialize>(value: &T) -> Reply {
        Reply::Returns(borsh::to_vec(value).unwrap_or_default())
    }

    /// A revert with a message, as `require!` makes it.
    pub fn reverts_msg(message: &str) -> Reply {
        let mut out = vec![crate::abi::REVERT_MESSAGE];
        out.extend_from_slice(message.as_bytes());
        Reply::Reverts(out)
    }

    /// A revert with the method's typed error, as `Err(e)` makes it.
    pub fn reverts_with<E: borsh::BorshSerialize>(error: &E) -> Reply {
        let mut out = vec![crate::abi::REVERT_ERROR];
        out.extend(borsh::to_vec(error).unwrap_or_default());
        Reply::Reverts(out)
    }
}

/// A call the code under test made (see [`calls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeCall {
    pub to: Address,
    pub method: String,
    /// The Borsh encoding of the arguments tuple.
    pub args: Vec<u8>,
    pub value: u128,
}

type Answer = Box<dyn Fn(&MadeCall) -> Reply>;
/// The call mocks by (contract, method), and the calls made.
type Calls = (BTreeMap<(Address, String), Answer>, Vec<MadeCall>);

thread_local! {
    static CALLS: RefCell<Calls> = RefCell::new((BTreeMap::new(), Vec::new()));
}

/// Mocks method `method` of the contract at `to` for this thread: every
/// call to it (through a typed `#[interface]` stub or `call`) gets what
/// `answer` says for the call, and the value it carries moves from this
/// contract to `to` when the answer is a success, as on the VM. Replaces an
/// earlier mock of the same method; [`reset`] forgets them all.
pub fn mock_call(to: Address, method: &str, answer: impl Fn(&MadeCall) -> Reply + 'static) {
    CALLS.with(|c| {
        c.borrow_mut()
            .0
            .insert((to, method.to_string()), Box::new(answer))
    });
}

/// The calls made so far on this thread (mocked or not), in order.
pub fn calls() -> Vec<MadeCall> {
    CALLS.with(|c| c.borrow().1.clone())
}

/// Runs `f`, turning a revert into `Err(payload)`.
pub fn catch_revert<R>(f: impl FnOnce() -> R) -> Result<R, Vec<u8>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(e) => match e.downcast::<Reverted>() {
            Ok(r) => Err(r.0),
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

pub(crate) mod host {
    use super::{MOCK, Reverted};
    use sha3::{Digest, Keccak256};

    fn m<R>(f: impl FnOnce(&mut super::Mock) -> R) -> R {
        MOCK.with(|m| f(&mut m.borrow_mut()))
    }

    pub fn input() -> Vec<u8> {
        m(|m| m.input.clone())
    }
    pub fn set_return(b: &[u8]) {
        m(|m| m.returned = Some(b.to_vec()))
    }
    pub fn revert(b: &[u8]) -> ! {
        std::panic::panic_any(Reverted(b.to_vec()))
    }
    fn check_key(key: &[u8]) {
        assert!(
            !key.is_empty() && key.len() <= super::super::sys::KEY_BYTES_MAX,
            "storage key length out of 1..=256"
        );
    }
    pub fn storage_read(key: &[u8], dst: &mut [u8]) -> Option<usize> {
        check_key(key);
        m(|m| {
            let v = m.storage.get(key)?;
            let n = v.len().min(dst.len());
            dst[..n].copy_from_slice(&v[..n]);
            Some(v.len())
        })
    }
    pub fn storage_write(key: &[u8], val: &[u8]) {
        check_key(key);
        m(|m| m.storage.insert(key.to_vec(), val.to_vec()));
    }
    pub fn storage_remove(key: &[u8]) -> bool {
        check_key(key);
        m(|m| m.storage.remove(key).is_some())
    }
    pub fn storage_has(key: &[u8]) -> bool {
        check_key(key);
        m(|m| m.storage.contains_key(key))
    }
    pub fn storage_next(
        prefix: &[u8],
        cursor: &[u8],
        key: &mut [u8; super::super::sys::KEY_BYTES_MAX],
        val: &mut [u8],
    ) -> Option<(usize, usize)> {
        m(|m| {
            let (k, v) = m
                .storage
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .find(|(k, _)| cursor.is_empty() || k.as_slice() > cursor)?;
            key[..k.len()].copy_from_slice(k);
            let n = v.len().min(val.len());
            val[..n].copy_from_slice(&v[..n]);
            Some((k.len(), v.len()))
        })
    }
    pub fn caller() -> [u8; 20] {
        m(|m| m.caller.0)
    }
    pub fn origin() -> [u8; 20] {
        m(|m| m.origin.0)
    }
    pub fn self_address() -> [u8; 20] {
        m(|m| m.self_address.0)
    }
    pub fn value() -> u128 {
        m(|m| m.value)
    }
    pub fn block_height() -> u64 {
        m(|m| m.block_height)
    }
    pub fn block_timestamp() -> u64 {
        m(|m| m.block_timestamp_ms)
    }
    pub fn chain_id() -> u64 {
        m(|m| m.chain_id)
    }
    pub fn tx_hash() -> [u8; 32] {
        [0; 32]
    }
    pub fn gas_left() -> u64 {
        u64::MAX
    }
    pub fn balance(a: &[u8; 20]) -> u128 {
        m(|m| m.balances.get(&crate::Address(*a)).copied().unwrap_or(0))
    }
    pub fn transfer(to: &[u8; 20], amount: u128) -> bool {
        m(|m| {
            let me = m.self_address;
            let have = m.balances.get(&me).copied().unwrap_or(0);
            if have < amount {
                return false;
            }
            m.balances.insert(me, have - amount);
            *m.balances.entry(crate::Address(*to)).or_default() += amount;
            true
        })
    }
    pub fn emit_event(topics: &[[u8; 32]], data: &[u8]) {
        m(|m| m.events.push((topics.to_vec(), data.to_vec())))
    }
    pub fn debug_log(line: &[u8]) {
        m(|m| m.logs.push(String::from_utf8_lossy(line).into_owned()))
    }
    pub fn keccak256(data: &[u8]) -> [u8; 32] {
        Keccak256::digest(data).into()
    }
    pub fn sha3_256(data: &[u8]) -> [u8; 32] {
        sha3::Sha3_256::digest(data).into()
    }
    // The node's own code, so the mock answers as the VM does.
    pub fn secp256k1_recover(digest: &[u8; 32], sig: &[u8; 65]) -> Option<[u8; 33]> {
        stele_types::Signature(*sig)
            .recover(&stele_types::Hash(*digest))
            .ok()
            .map(|k| k.0)
    }
    pub fn secp256k1_verify(digest: &[u8; 32], sig: &[u8; 65], key: &[u8; 33]) -> bool {
        stele_types::PublicKey(*key)
            .verify_ecdsa(&stele_types::Hash(*digest), &stele_types::Signature(*sig))
            .is_ok()
    }
    pub fn call(
        to: &[u8; 20],
        method: &str,
        args: &[u8],
        value: u128,
        _gas: u64,
    ) -> (u32, Vec<u8>) {
        let made = super::MadeCall {
            to: crate::Address(*to),
            method: method.to_string(),
            args: args.to_vec(),
            value,
        };
        let reply = super::CALLS.with(|c| {
            let mut c = c.borrow_mut();
            c.1.push(made.clone());
            c.0.get(&(made.to, made.method.clone()))
                .map(|answer| answer(&made))
        });
        match reply {
            None => (
                4,
                b"failed: no mock for this call (testing::mock_call), or run it on the VM (stele-testkit)".to_vec(),
            ),
            Some(super::Reply::Returns(out)) => {
                // The value moves only with a success, as on the VM.
                if value > 0 && !transfer(to, value) {
                    return (4, b"failed: the value is over the balance".to_vec());
                }
                (0, out)
            }
            Some(super::Reply::Reverts(out)) => (1, out),
            Some(super::Reply::Fails(code, out)) => (code.clamp(2, 4), out),
        }
    }
    pub fn deploy(_code: &[u8], _args: &[u8], _value: u128, _gas: u64) -> (u32, [u8; 20], Vec<u8>) {
        (
            4,
            [0; 20],
            b"failed: deploys need the VM (use stele-testkit)".to_vec(),
        )
    }
    pub fn upgrade(_code: &[u8], _args: &[u8], _gas: u64) -> (u32, Vec<u8>) {
        (
            4,
            b"failed: upgrades need the VM (use stele-testkit)".to_vec(),
        )
    }
}
