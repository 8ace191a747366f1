//! Turning cargo's module into the deployable one.

use stele_abi::{ABI_SECTION, REENTRANT_SECTION};
use wasm_encoder::{CustomSection, Module, RawSection};
use wasmparser::{Parser, Payload};

use crate::BuildError;

/// Keeps every non-custom section as is, drops custom sections except
/// `stele_reentrant`, appends the `stele_abi` section, and checks that no
/// reserved `__stele` export is left.
pub fn finalize(code: &[u8], abi_json: &[u8]) -> Result<Vec<u8>, BuildError> {
    let err = |e: wasmparser::BinaryReaderError| BuildError::Module(e.to_string());
    let mut module = Module::new();
    for payload in Parser::new(0).parse_all(code) {
        let payload = payload.map_err(err)?;
        match &payload {
            Payload::CustomSection(c) => {
                if c.name() == REENTRANT_SECTION {
                    module.section(&CustomSection {
                        name: c.name().into(),
                        data: c.data().into(),
                    });
                }
                continue;
            }
            Payload::ExportSection(exports) => {
                for e in exports.clone() {
                    let e = e.map_err(err)?;
                    if e.name.starts_with("__stele") {
                        return Err(BuildError::Module(format!(
                            "reserved export `{}` in the deployable module",
                            e.name
                        )));
                    }
                }
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            module.section(&RawSection {
                id,
                data: &code[range],
            });
        }
    }
    module.section(&CustomSection {
        name: ABI_SECTION.into(),
        data: abi_json.into(),
    });
    Ok(module.finish())
}
