//! `stele-node`: the Stele validator binary.

fn main() {}
