//! Runnable examples of `qmp-client` and `qmp-types`, in `examples/`:
//! `cargo run -p qmp-examples --example NAME [SOCKET]`. A crate of its
//! own so that running one builds only what the examples use (no test
//! tooling). Nothing here is published.

pub mod disks;
pub mod vmm;
