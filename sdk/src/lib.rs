//! The Stele contract SDK: macros, typed storage, context, events and cross-contract calls for wasm32 contracts.
