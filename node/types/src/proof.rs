//! Merkle proof verification for the state tree (`stele-state` builds the
//! proofs; this verifier needs no RocksDB, so clients can check reads).
