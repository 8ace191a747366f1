//! Events with typed topics.
//!
//! An event's first topic is the Keccak-256 of its name (computed by the
//! `#[event]` macro at compile time). Each `#[topic]` field becomes one more
//! topic: its Borsh encoding zero-padded on the right when it is fixed-size
//! and at most 32 bytes (integers, `bool`, [`Address`], `[u8; 32]`), else
//! the Keccak-256 of the encoding (`String`, `Vec<u8>`). Those are the types
//! that implement [`Topic`]; other arrays are data fields. The other fields are
//! the data: their Borsh encoding in declaration order.

use alloc::string::String;
use alloc::vec::Vec;

use crate::abi::{AbiType, TypeRegistry};
use crate::{Address, sys};

/// An event type; derive it with `#[stele_sdk::event]`.
pub trait Event {
    /// Keccak-256 of the event name.
    const TOPIC: [u8; 32];
    /// All topics, [`Event::TOPIC`] first.
    fn topics(&self) -> Vec<[u8; 32]>;
    /// The data fields' Borsh encoding.
    fn data(&self) -> Vec<u8>;
    /// The event's ABI entry (JSON).
    fn abi(reg: &mut TypeRegistry) -> String;
}

/// Emits `event` from this contract.
pub fn emit<E: Event>(event: &E) {
    sys::emit_event(&event.topics(), &event.data());
}

/// A value usable as an event topic.
pub trait Topic: AbiType {
    fn topic(&self) -> [u8; 32];
}

fn padded(bytes: &[u8]) -> [u8; 32] {
    let mut t = [0u8; 32];
    t[..bytes.len()].copy_from_slice(bytes);
    t
}

macro_rules! num_topic {
    ($($t:ty),*) => {$(
        impl Topic for $t {
            fn topic(&self) -> [u8; 32] {
                padded(&self.to_le_bytes())
            }
        }
    )*};
}
num_topic!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

impl Topic for bool {
    fn topic(&self) -> [u8; 32] {
        padded(&[u8::from(*self)])
    }
}

impl Topic for Address {
    fn topic(&self) -> [u8; 32] {
        padded(&self.0)
    }
}

impl Topic for [u8; 32] {
    fn topic(&self) -> [u8; 32] {
        *self
    }
}

impl Topic for String {
    fn topic(&self) -> [u8; 32] {
        let mut enc = Vec::with_capacity(self.len() + 4);
        enc.extend_from_slice(&(self.len() as u32).to_le_bytes());
        enc.extend_from_slice(self.as_bytes());
        sys::keccak256(&enc)
    }
}

impl Topic for Vec<u8> {
    fn topic(&self) -> [u8; 32] {
        let mut enc = Vec::with_capacity(self.len() + 4);
        enc.extend_from_slice(&(self.len() as u32).to_le_bytes());
        enc.extend_from_slice(self);
        sys::keccak256(&enc)
    }
}
