//! In-process Stele chain for contract tests: real Wasm, real gas, real Merkle state.
