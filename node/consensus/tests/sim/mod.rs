//! Deterministic simulation of a PBFT cluster: N replicas in one thread, a
//! seeded scheduler, virtual time, a faulty network, crashes and Byzantine
//! replicas (in the spirit of TigerBeetle's VOPR and FoundationDB's
//! simulator). Everything random comes from one seed, so a failing run
//! reproduces exactly from it.

#![allow(dead_code, unused_imports)]

pub mod rng;
pub mod scenario;
pub mod world;

pub use rng::Rng;
pub use scenario::{Scenario, run_seed};
pub use world::{Byzantine, Faults, Outcome, World};
