//! Finding the ABI in a contract's Wasm.

use wasmparser::{Parser, Payload};

use crate::{Abi, AbiError};

/// Name of the custom section holding the ABI JSON.
pub const ABI_SECTION: &str = "stele_abi";
/// Name of the custom section that opts a contract into re-entry (see
/// `docs/vm.md`).
pub const REENTRANT_SECTION: &str = "stele_reentrant";
/// Largest ABI section read.
pub const ABI_SECTION_BYTES_MAX: usize = 256 * 1024;

impl Abi {
    /// Reads and validates the ABI from the `stele_abi` custom section of a
    /// contract's Wasm. Only section headers are parsed; the code is not
    /// validated.
    pub fn from_wasm(wasm: &[u8]) -> Result<Abi, AbiError> {
        Abi::from_json(abi_section(wasm)?.ok_or(AbiError::NoAbiSection)?)
    }
}

/// The ABI JSON as written in a contract's Wasm (its one `stele_abi` custom
/// section, at most [`ABI_SECTION_BYTES_MAX`]), not yet parsed; `None`
/// when the module has no such section. Only section headers are parsed;
/// the code is not validated.
pub fn abi_section(wasm: &[u8]) -> Result<Option<&[u8]>, AbiError> {
    let mut found: Option<&[u8]> = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| AbiError::InvalidWasm(e.to_string()))?;
        if let Payload::CustomSection(section) = payload
            && section.name() == ABI_SECTION
        {
            if found.is_some() {
                return Err(AbiError::DuplicateAbiSection);
            }
            let data = section.data();
            if data.len() > ABI_SECTION_BYTES_MAX {
                return Err(AbiError::AbiTooLarge {
                    len: data.len(),
                    max: ABI_SECTION_BYTES_MAX,
                });
            }
            found = Some(data);
        }
    }
    Ok(found)
}
