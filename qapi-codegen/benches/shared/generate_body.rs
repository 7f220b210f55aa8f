//! The body of the `generate` and `generate_mimalloc` benches: the
//! same measurements, run under each allocator.

use std::path::Path;

use criterion::{Criterion, criterion_group};
use qapi_gen::Schema;
use qapi_gen::manifest::{Manifest, Part};
use qapi_gen::rust::{Options, generate};

fn bench(c: &mut Criterion) {
    let schema_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    let root = schema_dir.join("10.0.2/qapi/qapi-schema.json");
    let schema = Schema::load(&root).expect("vendored schema is valid");
    let opts = Options {
        runtime: "crate::rt".into(),
        ..Options::default()
    };
    let mut group = c.benchmark_group("generate_10.0.2");
    group.sample_size(20);
    group.bench_function("generate", |b| {
        b.iter(|| generate(&schema, &opts).expect("generates"))
    });
    group.bench_function("load_and_generate", |b| {
        b.iter(|| {
            let s = Schema::load(&root).expect("valid");
            generate(&s, &opts).expect("generates")
        })
    });
    group.finish();

    // Every version the manifest lists: load each, merge, generate. Goal:
    // under 300 ms median.
    let manifest = Manifest::load(&schema_dir).expect("schema/manifest.txt");
    let mut group = c.benchmark_group("merged_all_versions");
    group.sample_size(10);
    group.bench_function("load_merge_generate", |b| {
        b.iter(|| {
            let merged = manifest.load_merged(Part::Qmp).expect("merges");
            generate(&merged, &opts).expect("generates")
        })
    });
    let merged = manifest.load_merged(Part::Qmp).expect("merges");
    group.bench_function("generate_merged", |b| {
        b.iter(|| generate(&merged, &opts).expect("generates"))
    });
    group.finish();
}

criterion_group!(benches, bench);
