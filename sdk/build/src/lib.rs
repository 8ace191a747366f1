//! Reproducible builds of Stele contract crates for wasm32.
