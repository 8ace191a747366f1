//! Typed async client for the Stele JSON-RPC API, with transaction signing and proof verification.
