//! Parse + check of each QEMU's `qapi/qapi-schema.json` with all its
//! includes, for every version `schema/manifest.txt` lists. Goal: under
//! 15 ms median per schema in release.
//!
//! Two variants: from the file system (what `qapi-codegen check` does),
//! and from memory (files preloaded, so only parsing and checking count).

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use qapi_gen::manifest::Manifest;
use qapi_gen::{DocRules, MemLoader, Schema};

fn bench(c: &mut Criterion) {
    let manifest = Manifest::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema"))
        .expect("schema/manifest.txt");
    for v in &manifest.versions {
        let dir = manifest.dir.join(v).join("qapi");
        let root = dir.join("qapi-schema.json");
        // 7.2's doc comments are read by the rules of QEMU before 9.1.
        let rules = if Schema::load(&root).is_ok() {
            DocRules::Qemu10
        } else {
            DocRules::Legacy
        };
        let mut mem = MemLoader::new();
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .expect("the schema folder is readable")
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
        let mut group = c.benchmark_group(format!("parse_check_{v}"));
        group.sample_size(50);
        group.bench_function("fs", |b| {
            b.iter(|| Schema::load_with_rules(&root, rules).expect("valid schema"))
        });
        group.bench_function("mem", |b| {
            b.iter(|| {
                Schema::load_with_options(&mem, "qapi/qapi-schema.json", rules)
                    .expect("valid schema")
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
