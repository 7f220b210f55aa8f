//! The `generate` bench with mimalloc, the global allocator of the
//! `qapi-codegen` binary (feature `mimalloc`, on by default): generation
//! allocates a great deal (tokens, syn's tree, prettyplease's output), and
//! glibc's allocator is a third of its instructions.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "shared/generate_body.rs"]
mod body;

criterion::criterion_main!(body::benches);
