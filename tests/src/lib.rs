//! Cluster fault-test harness and load generator for Stele: real
//! `stele-node` processes started from a generated testnet folder, with a
//! UDP relay per directed link that a test can cut, delay or drop.
