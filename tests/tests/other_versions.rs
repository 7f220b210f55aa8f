//! Generating from one QEMU's schema alone (7.2.0's and 10.2.2's
//! `qapi/qapi-schema.json`, as `qapi-gen generate` does for a user's
//! schema) gives crates that compile (`cargo check`, under `#![deny(warnings)]`)
//! with the runtime crate `qapi-rt` as their only dependency. The crates are written to a temp
//! workspace; their build shares `target/other-versions` so reruns are
//! quick.

use std::path::{Path, PathBuf};
use std::process::Command;

use qapi_gen::manifest::load_any;
use qapi_gen::rust::{Options, generate};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn write_crate(dir: &Path, name: &str, schema: &Path) {
    // QEMU 7.2's doc comments predate the rules of 9.1 (load_any falls
    // back to them).
    let schema = load_any(schema).expect("schema loads");
    let files = generate(
        &schema,
        &Options {
            schema_label: format!("`{}`", schema.sources.path(0)),
            regen_command: "tests/tests/other_versions.rs".into(),
            ..Options::default()
        },
    )
    .expect("generates");
    let src = dir.join(name).join("src");
    std::fs::create_dir_all(src.join("generated")).expect("mkdir");
    for f in &files {
        std::fs::write(src.join("generated").join(&f.path), &f.contents).expect("write");
    }
    std::fs::write(
        src.join("lib.rs"),
        "//! Generated for a test.\n#![deny(warnings)]\n#[rustfmt::skip]\nmod generated;\npub use generated::*;\n",
    )
    .expect("write");
    let runtime = root().join("qapi-rt");
    std::fs::write(
        dir.join(name).join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[dependencies]\n\
             qapi-rt = {{ path = {:?} }}\n",
            runtime.display().to_string()
        ),
    )
    .expect("write");
}

#[test]
fn qemu_7_2_0_and_10_2_2_generate_crates_that_compile() {
    let dir = tests::TempDir::new("versions").expect("temp dir");
    let versions = [("qmp-7-2-0", "7.2.0"), ("qmp-10-2-2", "10.2.2")];
    for (name, v) in versions {
        write_crate(
            dir.path(),
            name,
            &root().join(format!("schema/{v}/qapi/qapi-schema.json")),
        );
    }
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"qmp-7-2-0\", \"qmp-10-2-2\"]\n",
    )
    .expect("write");
    // The workspace's lock file pins the same dependency versions, offline.
    std::fs::copy(root().join("Cargo.lock"), dir.path().join("Cargo.lock")).expect("copy lock");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["check", "--offline", "--workspace", "--quiet"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", root().join("target/other-versions"))
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "generated crates do not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
