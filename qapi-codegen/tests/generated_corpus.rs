//! The slower, periodic half of the generator fuzzing (the fast half is
//! `fuzz/fuzz_targets/generate.rs`, which only parses the output): every
//! schema of a corpus that `check` accepts is generated into a module of
//! one crate, which must compile under `deny(warnings)`.
//!
//! The corpus: QEMU's schema test cases that are valid, the hostile
//! fixtures, the fuzz corpus when one was seeded or grown
//! (`fuzz/corpus/generate`), and schemas made here from tricky names
//! (keywords, prelude names, names that clash once cased).
//!
//! The whole corpus runs with `cargo test -p qapi-gen --test
//! generated_corpus -- --ignored` (about a minute), periodically; a fixed
//! sample of it (every eighth schema, in a fixed order from a fixed seed)
//! runs with every `cargo test`, so CI sees a generator change that breaks
//! it.

use std::path::{Path, PathBuf};
use std::process::Command;

use qapi_gen::rust::{Options, generate};
use qapi_gen::{MemLoader, Schema};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Names that have broken generators: keywords, prelude and runtime
/// names, names equal once cased or once `-`/`_` are folded.
const NAMES: &[&str] = &[
    "type",
    "self",
    "gen",
    "try",
    "mod",
    "match",
    "Self",
    "Option",
    "Result",
    "String",
    "Vec",
    "Box",
    "Some",
    "None",
    "Ok",
    "Err",
    "Unknown",
    "Malformed",
    "AnyEvent",
    "Event",
    "Command",
    "EventMeta",
    "COMMANDS",
    "EVENTS",
    "rt",
    "serde",
    "std",
    "core",
    "crate",
    "super",
    "a-b",
    "a_b",
    "ab",
    "x-1",
    "x1",
    "data",
    "new",
    "with-data",
    "properties",
    "branch",
];

/// xorshift: deterministic choices without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

fn camel(name: &str) -> String {
    let mut s = String::new();
    let mut up = true;
    for c in name.chars() {
        if c == '-' || c == '_' {
            up = true;
        } else if up {
            s.extend(c.to_uppercase());
            up = false;
        } else {
            s.push(c);
        }
    }
    s
}

/// A schema built from tricky names; `check` may refuse it.
fn tricky_schema(rng: &mut Rng) -> String {
    let mut s = String::from(
        "{ 'pragma': { 'member-name-exceptions': [ 'Ty0', 'Ty1', 'Ty2', 'Enum0', 'Uni0' ] } }\n",
    );
    let m = |rng: &mut Rng| rng.pick(NAMES).to_lowercase().replace('_', "-");
    // Three names, distinct as QAPI compares them (members may still clash
    // once made Rust names: that is the point).
    let three = |rng: &mut Rng| loop {
        let (a, b, c) = (m(rng), m(rng), m(rng));
        if a != b && b != c && a != c {
            return (a, b, c);
        }
    };
    let (a, b, c) = three(rng);
    s.push_str(&format!(
        "{{ 'enum': 'Enum0', 'data': [ '{a}', '{b}', '{c}' ] }}\n"
    ));
    for t in 0..3 {
        let (a, b, c) = three(rng);
        s.push_str(&format!(
            "{{ 'struct': 'Ty{t}', 'data': {{ '{a}': 'int', '*{b}': 'str', '{c}': 'Enum0' }} }}\n"
        ));
    }
    s.push_str(&format!(
        "{{ 'struct': 'UniBase', 'data': {{ 'kind': 'Enum0', '{}': 'int' }} }}\n",
        m(rng)
    ));
    s.push_str("{ 'union': 'Uni0', 'base': 'UniBase', 'discriminator': 'kind', 'data': {} }\n");
    s.push_str(&format!(
        "{{ 'alternate': 'Alt{}', 'data': {{ 's': 'str', 't': 'Ty0' }} }}\n",
        camel(rng.pick(NAMES))
    ));
    for _ in 0..2 {
        let (c, a, b) = three(rng);
        s.push_str(&format!(
            "{{ 'command': 'x-{c}', 'data': {{ '{a}': 'int', '*{b}': 'Ty1' }}, 'returns': 'Ty2' }}\n"
        ));
        s.push_str(&format!(
            "{{ 'event': 'EV_{}', 'data': {{ '{}': 'str' }} }}\n",
            c.to_uppercase().replace('-', "_"),
            m(rng)
        ));
    }
    s
}

/// Every schema of the corpus that `check` accepts, by name.
fn corpus() -> Vec<(String, Schema)> {
    let mut out = Vec::new();
    let mut add = |name: String, loaded: Result<Schema, qapi_gen::Error>| {
        if let Ok(s) = loaded {
            out.push((name, s));
        }
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [
        root().join("tests/fixtures/qapi-schema"),
        root().join("fuzz/corpus/generate"),
    ] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            files.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    files.push(root().join("qapi-codegen/tests/hostile/all.json"));
    files.sort();
    for f in files {
        if f.extension().is_some_and(|e| e == "json") {
            add(f.display().to_string(), Schema::load(&f));
        } else if f.is_file() {
            // A fuzz corpus entry: root, NUL, included file.
            let Ok(data) = std::fs::read(&f) else {
                continue;
            };
            let (root_text, inc) = match data.iter().position(|&b| b == 0) {
                Some(i) => (&data[..i], &data[i + 1..]),
                None => (&data[..], &b""[..]),
            };
            let mut l = MemLoader::new();
            l.insert("s.json", root_text.to_vec());
            l.insert("inc.json", inc.to_vec());
            add(f.display().to_string(), Schema::load_with(&l, "s.json"));
        }
    }
    let mut rng = Rng(0x51CE_5EED_0BAD_CAFE);
    for i in 0..200 {
        let mut l = MemLoader::new();
        let text = tricky_schema(&mut rng);
        l.insert("s.json", text.clone());
        let r = Schema::load_with(&l, "s.json");
        if let (Err(e), true) = (&r, std::env::var_os("CORPUS_DEBUG").is_some()) {
            eprintln!("refused:\n{text}{e}\n");
        }
        add(format!("tricky #{i}"), r);
    }
    out
}

#[test]
#[ignore = "periodic: compiles a crate of every generated schema (about a minute)"]
fn every_schema_check_accepts_compiles_under_deny_warnings() {
    let corpus = corpus();
    assert!(corpus.len() > 50, "only {} schemas", corpus.len());
    compiles(&corpus, "all");
    let tricky = corpus
        .iter()
        .filter(|(n, _)| n.starts_with("tricky"))
        .count();
    eprintln!(
        "{} schemas generated and compiled ({tricky} of them made from tricky names)",
        corpus.len()
    );
    assert!(
        tricky > 20,
        "the tricky schemas are mostly refused: {tricky}"
    );
}

#[test]
fn a_fixed_sample_of_the_corpus_compiles_under_deny_warnings() {
    let sample: Vec<(String, Schema)> = corpus().into_iter().step_by(8).collect();
    assert!(sample.len() > 20, "only {} schemas", sample.len());
    assert!(
        sample.iter().any(|(n, _)| n.starts_with("tricky")),
        "the sample holds schemas made from tricky names"
    );
    compiles(&sample, "sample");
}

/// Generates every schema of `corpus` into a module of one crate and
/// checks that it compiles without a warning.
fn compiles(corpus: &[(String, Schema)], tag: &str) {
    let dir = std::env::temp_dir().join(format!("qapi-corpus-{tag}-{}", std::process::id()));
    let src = dir.join("corpus/src");
    let mut lib =
        String::from("//! Generated from a corpus of schemas for a test.\n#![deny(warnings)]\n");
    for (i, (name, schema)) in corpus.iter().enumerate() {
        let files = generate(
            schema,
            &Options {
                schema_label: format!("`{name}`"),
                ..Options::default()
            },
        )
        .unwrap_or_else(|e| panic!("{name}: check accepted it, generate refused: {e}"));
        let m = src.join(format!("s{i}"));
        std::fs::create_dir_all(&m).expect("mkdir");
        for f in &files {
            std::fs::write(m.join(&f.path), &f.contents).expect("write");
        }
        lib.push_str(&format!("/// `{name}`\n#[rustfmt::skip]\npub mod s{i};\n"));
    }
    std::fs::write(src.join("lib.rs"), lib).expect("write");
    std::fs::write(
        dir.join("corpus/Cargo.toml"),
        format!(
            "[package]\nname = \"corpus\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[dependencies]\n\
             qapi-rt = {{ path = {:?} }}\n",
            root().join("qapi-rt").display().to_string()
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"corpus\"]\n",
    )
    .expect("write");
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy lock");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["check", "--offline", "--quiet"])
        .current_dir(&dir)
        .env(
            "CARGO_TARGET_DIR",
            root().join(format!("target/generated-corpus-{tag}")),
        )
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} generated schemas do not compile:\n{stderr}",
        corpus.len()
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
