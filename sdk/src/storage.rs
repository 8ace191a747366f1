//! Typed, lazily loaded storage: every access reads or writes exactly the
//! keys it needs; nothing is deserialized up front.
//!
//! Layout: a `#[contract]` struct's field `name` owns the key prefix
//! `[len(name)] ++ name`. An [`Item`] lives at that prefix; a [`Map`] entry at
//! `prefix ++ key` with the key in [`StorageKey`]'s order-preserving encoding;
//! a [`Vector`] keeps its length at the prefix and element `i` at
//! `prefix ++ u32_be(i)`. Values are Borsh.

use alloc::string::String;
use alloc::vec::Vec;
use core::marker::PhantomData;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::{Address, env, sys};

/// A storage field of a `#[contract]` struct, placed at a key prefix.
pub trait StorageField {
    /// The field at `prefix` (made by the `#[contract]` macro from the field
    /// name).
    fn with_prefix(prefix: &'static [u8]) -> Self;
}

fn encode<T: BorshSerialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    if v.serialize(&mut out).is_err() {
        env::revert_msg("storage value encoding failed")
    }
    out
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> T {
    match T::try_from_slice(bytes) {
        Ok(v) => v,
        Err(_) => env::revert_msg("storage value does not decode as its type"),
    }
}

/// A single value.
#[derive(Debug)]
pub struct Item<T> {
    key: &'static [u8],
    _t: PhantomData<T>,
}

impl<T> StorageField for Item<T> {
    fn with_prefix(prefix: &'static [u8]) -> Self {
        Item {
            key: prefix,
            _t: PhantomData,
        }
    }
}

impl<T: BorshSerialize + BorshDeserialize> Item<T> {
    /// The value, if set.
    pub fn get(&self) -> Option<T> {
        sys::storage_get(self.key).map(|b| decode(&b))
    }

    /// The value, or `T::default()` if unset.
    pub fn get_or_default(&self) -> T
    where
        T: Default,
    {
        self.get().unwrap_or_default()
    }

    /// The value; reverts with `msg` if unset.
    pub fn get_or_revert(&self, msg: &str) -> T {
        match self.get() {
            Some(v) => v,
            None => env::revert_msg(msg),
        }
    }

    pub fn set(&self, value: &T) {
        sys::storage_write(self.key, &encode(value));
    }

    /// Removes the value; whether it was set.
    pub fn remove(&self) -> bool {
        sys::storage_remove(self.key)
    }

    pub fn exists(&self) -> bool {
        sys::storage_has(self.key)
    }
}

/// A key of a [`Map`], encoded so that byte order is the key's natural
/// order: unsigned integers big-endian, signed integers big-endian with the
/// sign bit flipped, `bool` one byte, addresses and byte arrays raw,
/// strings and byte vectors as a `u32` big-endian length then the bytes,
/// tuples as their parts in order (so a tuple key's first part is a prefix
/// for [`Map::iter_prefix`]).
pub trait StorageKey: Sized {
    fn write_key(&self, out: &mut Vec<u8>);
    /// Reads a key from the front of `bytes`, advancing it.
    fn read_key(bytes: &mut &[u8]) -> Option<Self>;
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Some(head)
}

macro_rules! uint_key {
    ($($t:ty),*) => {$(
        impl StorageKey for $t {
            fn write_key(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn read_key(bytes: &mut &[u8]) -> Option<Self> {
                const N: usize = core::mem::size_of::<$t>();
                let mut a = [0u8; N];
                a.copy_from_slice(take(bytes, N)?);
                Some(<$t>::from_be_bytes(a))
            }
        }
    )*};
}
uint_key!(u8, u16, u32, u64, u128);

macro_rules! int_key {
    ($($t:ty => $u:ty),*) => {$(
        impl StorageKey for $t {
            fn write_key(&self, out: &mut Vec<u8>) {
                ((*self as $u) ^ (1 << (<$u>::BITS - 1))).write_key(out);
            }
            fn read_key(bytes: &mut &[u8]) -> Option<Self> {
                Some((<$u>::read_key(bytes)? ^ (1 << (<$u>::BITS - 1))) as $t)
            }
        }
    )*};
}
int_key!(i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128);

impl StorageKey for bool {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn read_key(bytes: &mut &[u8]) -> Option<Self> {
        match take(bytes, 1)?[0] {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl StorageKey for Address {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn read_key(bytes: &mut &[u8]) -> Option<Self> {
        Some(Address(<[u8; 20]>::read_key(bytes)?))
    }
}

impl<const N: usize> StorageKey for [u8; N] {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn read_key(bytes: &mut &[u8]) -> Option<Self> {
        let mut a = [0u8; N];
        a.copy_from_slice(take(bytes, N)?);
        Some(a)
    }
}

impl StorageKey for Vec<u8> {
    fn write_key(&self, out: &mut Vec<u8>) {
        (self.len() as u32).write_key(out);
        out.extend_from_slice(self);
    }
    fn read_key(bytes: &mut &[u8]) -> Option<Self> {
        let n = u32::read_key(bytes)? as usize;
        Some(take(bytes, n)?.to_vec())
    }
}

impl StorageKey for String {
    fn write_key(&self, out: &mut Vec<u8>) {
        (self.len() as u32).write_key(out);
        out.extend_from_slice(self.as_bytes());
    }
    fn read_key(bytes: &mut &[u8]) -> Option<Self> {
        String::from_utf8(Vec::<u8>::read_key(bytes)?).ok()
    }
}

macro_rules! tuple_key {
    ($($n:tt $t:ident),*) => {
        impl<$($t: StorageKey),*> StorageKey for ($($t,)*) {
            fn write_key(&self, out: &mut Vec<u8>) {
                $(self.$n.write_key(out);)*
            }
            fn read_key(bytes: &mut &[u8]) -> Option<Self> {
                Some(($($t::read_key(bytes)?,)*))
            }
        }
    };
}
tuple_key!(0 A, 1 B);
tuple_key!(0 A, 1 B, 2 C);

/// A map from `K` to `V` with ordered iteration.
#[derive(Debug)]
pub struct Map<K, V> {
    prefix: &'static [u8],
    _t: PhantomData<(K, V)>,
}

impl<K, V> StorageField for Map<K, V> {
    fn with_prefix(prefix: &'static [u8]) -> Self {
        Map {
            prefix,
            _t: PhantomData,
        }
    }
}

impl<K: StorageKey, V: BorshSerialize + BorshDeserialize> Map<K, V> {
    fn key(&self, k: &K) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 32);
        out.extend_from_slice(self.prefix);
        k.write_key(&mut out);
        out
    }

    pub fn get(&self, k: &K) -> Option<V> {
        sys::storage_get(&self.key(k)).map(|b| decode(&b))
    }

    /// The value at `k`, or `V::default()`.
    pub fn get_or_default(&self, k: &K) -> V
    where
        V: Default,
    {
        self.get(k).unwrap_or_default()
    }

    pub fn set(&self, k: &K, v: &V) {
        sys::storage_write(&self.key(k), &encode(v));
    }

    /// Removes the entry; whether it existed.
    pub fn remove(&self, k: &K) -> bool {
        sys::storage_remove(&self.key(k))
    }

    pub fn contains(&self, k: &K) -> bool {
        sys::storage_has(&self.key(k))
    }

    /// All entries in key order.
    pub fn iter(&self) -> MapIter<K, V> {
        MapIter::new(self.prefix.to_vec(), self.prefix.len())
    }

    /// Entries whose key encoding starts with that of `p`, in key order;
    /// e.g. for `Map<(Address, u64), V>`, `iter_prefix(&owner)` gives one
    /// owner's entries.
    pub fn iter_prefix<P: StorageKey>(&self, p: &P) -> MapIter<K, V> {
        let mut prefix = self.prefix.to_vec();
        p.write_key(&mut prefix);
        MapIter::new(prefix, self.prefix.len())
    }
}

/// Iterator over a [`Map`]'s entries, one `storage_next` per entry.
#[derive(Debug)]
pub struct MapIter<K, V> {
    prefix: Vec<u8>,
    map_prefix_len: usize,
    cursor: Vec<u8>,
    done: bool,
    _t: PhantomData<(K, V)>,
}

/// Values up to this size come back from `storage_next` itself; longer ones
/// are read again at their exact size.
const ITER_VALUE_GUESS_BYTES: usize = 256;

impl<K, V> MapIter<K, V> {
    fn new(prefix: Vec<u8>, map_prefix_len: usize) -> Self {
        MapIter {
            prefix,
            map_prefix_len,
            cursor: Vec::new(),
            done: false,
            _t: PhantomData,
        }
    }
}

impl<K: StorageKey, V: BorshDeserialize> Iterator for MapIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        if self.done {
            return None;
        }
        let mut key = [0u8; sys::KEY_BYTES_MAX];
        let mut val = alloc::vec![0u8; ITER_VALUE_GUESS_BYTES];
        let Some((klen, vlen)) = sys::storage_next(&self.prefix, &self.cursor, &mut key, &mut val)
        else {
            self.done = true;
            return None;
        };
        let full_key = &key[..klen.min(sys::KEY_BYTES_MAX)];
        if vlen > val.len() {
            val = sys::storage_get(full_key).unwrap_or_default();
        }
        val.truncate(vlen);
        self.cursor.clear();
        self.cursor.extend_from_slice(full_key);
        let mut rest = full_key.get(self.map_prefix_len..).unwrap_or_default();
        let k = match K::read_key(&mut rest) {
            Some(k) if rest.is_empty() => k,
            _ => env::revert_msg("storage key does not decode as the map's key type"),
        };
        Some((k, decode(&val)))
    }
}

/// A growable array: length at the prefix, element `i` at
/// `prefix ++ u32_be(i)`.
#[derive(Debug)]
pub struct Vector<T> {
    prefix: &'static [u8],
    _t: PhantomData<T>,
}

impl<T> StorageField for Vector<T> {
    fn with_prefix(prefix: &'static [u8]) -> Self {
        Vector {
            prefix,
            _t: PhantomData,
        }
    }
}

impl<T: BorshSerialize + BorshDeserialize> Vector<T> {
    fn key(&self, i: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 4);
        out.extend_from_slice(self.prefix);
        out.extend_from_slice(&i.to_be_bytes());
        out
    }

    pub fn len(&self) -> u32 {
        sys::storage_get(self.prefix)
            .map(|b| decode(&b))
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: u32) -> Option<T> {
        if i >= self.len() {
            return None;
        }
        sys::storage_get(&self.key(i)).map(|b| decode(&b))
    }

    /// Replaces element `i`; reverts if out of range.
    pub fn set(&self, i: u32, v: &T) {
        if i >= self.len() {
            env::revert_msg("vector index out of range")
        }
        sys::storage_write(&self.key(i), &encode(v));
    }

    pub fn push(&self, v: &T) {
        let n = self.len();
        let Some(next) = n.checked_add(1) else {
            env::revert_msg("vector is full")
        };
        sys::storage_write(&self.key(n), &encode(v));
        sys::storage_write(self.prefix, &encode(&next));
    }

    pub fn pop(&self) -> Option<T> {
        let n = self.len().checked_sub(1)?;
        let key = self.key(n);
        let v = sys::storage_get(&key).map(|b| decode(&b));
        sys::storage_remove(&key);
        sys::storage_write(self.prefix, &encode(&n));
        v
    }

    /// Elements in index order.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        // One length read, then one read per element.
        (0..self.len()).filter_map(move |i| sys::storage_get(&self.key(i)).map(|b| decode(&b)))
    }
}
