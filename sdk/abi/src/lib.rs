//! The Stele contract ABI: method, type and event descriptions, and Borsh
//! argument encoding from JSON values.
//!
//! A contract's ABI is JSON (UTF-8) in the Wasm custom section
//! [`ABI_SECTION`] (`stele_abi`), written by `stele-build`. Hosts (RPC,
//! client, CLI) read it with [`Abi::from_wasm`] and use it to turn JSON into
//! call input and output back into JSON:
//!
//! - a method's input is the Borsh encoding of its arguments as a tuple in
//!   declaration order ([`Abi::encode_args`]); its output is the Borsh
//!   encoding of its return value ([`Abi::decode_return`]);
//! - a revert payload starts with a tag byte: [`REVERT_MESSAGE`] (0) then a
//!   UTF-8 message, or [`REVERT_ERROR`] (1) then the Borsh encoding of the
//!   method's error type ([`Abi::decode_revert`]);
//! - an event's first topic is the Keccak-256 of its name; each further topic
//!   is the Borsh encoding of a topic field, zero-padded on the right to 32
//!   bytes, or the Keccak-256 of that encoding when it is longer than 32
//!   bytes; the event data is the Borsh encoding of the data fields as a
//!   tuple ([`Abi::decode_event`]).
//!
//! JSON forms: `u64`/`i64`/`u128`/`i128` are decimal strings (integer JSON
//! numbers are accepted on input), smaller integers are numbers, addresses
//! are `0x` hex (EIP-55 checksummed on output, checked on input when mixed
//! case), `bytes` and `[u8; N]` are `0x` hex, `Option` is `null` or the
//! value, tuples and tuple structs are arrays, structs are objects, enum
//! values are `"Variant"` (no fields) or `{"Variant": fields}`.
//! The full format is in `docs/contracts.md`.

mod error;
mod types;
mod value;
mod wasm;

pub use error::AbiError;
pub use types::{
    ABI_VERSION, Abi, Event, Field, Fields, Method, MethodKind, TypeDef, TypeRef, Variant,
};
pub use value::{DecodedEvent, Revert, event_topic};
pub use wasm::{ABI_SECTION, ABI_SECTION_BYTES_MAX, REENTRANT_SECTION, abi_section};

/// Revert payload tag: a UTF-8 message follows.
pub const REVERT_MESSAGE: u8 = 0;
/// Revert payload tag: the Borsh encoding of the method's error type follows.
pub const REVERT_ERROR: u8 = 1;

/// A failed call's output as text, without its ABI: the message of an SDK
/// revert ([`REVERT_MESSAGE`], the tag left out), a note for a typed error
/// ([`REVERT_ERROR`], decoded only by the method's ABI), the output itself
/// when it is UTF-8 (the executor's own failures, other contracts), else
/// its hex.
pub fn output_text(output: &[u8]) -> String {
    match output.split_first() {
        Some((&REVERT_MESSAGE, rest)) if std::str::from_utf8(rest).is_ok() => {
            String::from_utf8_lossy(rest).into_owned()
        }
        Some((&REVERT_ERROR, rest)) => format!(
            "the method's error type 0x{} (decode it with the contract's ABI)",
            hex_digits(rest)
        ),
        _ => match std::str::from_utf8(output) {
            Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
            _ => format!("0x{}", hex_digits(output)),
        },
    }
}

fn hex_digits(bytes: &[u8]) -> String {
    stele_types::hex::encode(bytes)
        .trim_start_matches("0x")
        .to_string()
}

#[cfg(test)]
mod output_text_tests {
    use super::*;

    #[test]
    fn failed_outputs_read_as_text_without_their_tag() {
        assert_eq!(
            output_text(b"\0method is not payable"),
            "method is not payable"
        );
        assert_eq!(
            output_text(&[REVERT_ERROR, 2, 0]),
            "the method's error type 0x0200 (decode it with the contract's ABI)"
        );
        assert_eq!(output_text(b"out of gas"), "out of gas");
        assert_eq!(output_text(&[0xff, 0xfe]), "0xfffe");
        assert_eq!(output_text(b"\0\xff"), "0x00ff");
        assert_eq!(output_text(b""), "");
    }
}
