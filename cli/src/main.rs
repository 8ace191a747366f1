//! The stele command-line tool for contract authors: keys, build, deploy, call, devnet.
fn main() {}
