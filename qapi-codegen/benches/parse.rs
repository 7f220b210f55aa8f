//! Parse + check of QEMU 10.0.2's `qapi/qapi-schema.json` with all its
//! includes (the vendored `schema/`). Goal: under 15 ms median in release.
//!
//! Two variants: from the file system (what `qapi-codegen check` does),
//! and from memory (files preloaded, so only parsing and checking count).

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use qapi_codegen::{MemLoader, Schema};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/qapi")
}

fn bench(c: &mut Criterion) {
    let dir = schema_dir();
    let root = dir.join("qapi-schema.json");
    let mut mem = MemLoader::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("schema/qapi is readable")
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            mem.insert(
                &format!("qapi/{name}"),
                std::fs::read(e.path()).expect("schema file is readable"),
            );
        }
    }
    let mut group = c.benchmark_group("parse_check_10.0.2");
    group.sample_size(50);
    group.bench_function("fs", |b| {
        b.iter(|| Schema::load(&root).expect("vendored schema is valid"))
    });
    group.bench_function("mem", |b| {
        b.iter(|| {
            Schema::load_with(&mem, "qapi/qapi-schema.json").expect("vendored schema is valid")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
