//! Generating Rust for QEMU 10.0.2's whole `qapi/qapi-schema.json`
//! (schema already loaded; goal: under 100 ms median in release), and
//! load + generate together, with the system allocator. The bench
//! `generate_mimalloc` runs the same with the allocator of the
//! `qapi-codegen` binary.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

#[path = "shared/generate_body.rs"]
mod body;

criterion::criterion_main!(body::benches);
