//! Hostile but plausible schemas (`tests/hostile/`, and ones too large to
//! commit, made here): no schema makes the generator crash, hang, read
//! without bound, emit Rust that doesn't compile (or compiles with
//! warnings), or run its text as code.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qapi_gen::Schema;
use qapi_gen::parser::MAX_INCLUDE_DEPTH;
use qapi_gen::rust::{Options, generate};

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile")
}

fn temp(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let d = std::env::temp_dir().join(format!("qapi-hostile-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs `f` on a thread with a 2 MiB stack (a library user's, e.g. a
/// tokio blocking thread), failing if it takes longer than `limit`.
fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("thread");
    rx.recv_timeout(limit)
        .expect("finished in time, without a crash")
}

#[test]
fn include_chains_deeper_than_the_limit_are_an_error_not_a_stack_overflow() {
    let dir = temp("deep");
    let n = 9000;
    for i in 0..n {
        let body = if i + 1 < n {
            format!("{{ 'include': 'f{}.json' }}\n", i + 1)
        } else {
            "{ 'struct': 'Deep', 'data': { 'a': 'int' } }\n".to_string()
        };
        std::fs::write(dir.join(format!("f{i}.json")), body).expect("write");
    }
    let top = dir.join("f0.json");
    let e = bounded(Duration::from_secs(60), move || {
        Schema::load(&top).expect_err("too deep").to_string()
    });
    assert!(
        e.contains(&format!("includes nest more than {MAX_INCLUDE_DEPTH} deep")),
        "{e}"
    );
    // QEMU's location style: the chain of includes, then the line.
    assert!(
        e.starts_with("In file included from"),
        "{}",
        &e[..200.min(e.len())]
    );
    // Just under the limit is fine.
    let ok = dir.join(format!("f{}.json", n - MAX_INCLUDE_DEPTH));
    let s = bounded(Duration::from_secs(60), move || {
        Schema::load(&ok).map(|_| ())
    });
    assert!(s.is_ok(), "{s:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn devices_fifos_directories_and_huge_files_are_refused_with_a_reason() {
    // /dev/zero: endless; the committed schema includes it.
    let p = here().join("include-dev-zero.json");
    let e = bounded(Duration::from_secs(10), move || {
        Schema::load(&p).expect_err("refused").to_string()
    });
    assert!(
        e.contains("can't read include file '/dev/zero': not a regular file"),
        "{e}"
    );
    // A FIFO nobody writes to: reading would block forever.
    let dir = temp("fifo");
    let fifo = dir.join("fifo.json");
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    std::fs::write(dir.join("top.json"), "{ 'include': 'fifo.json' }\n").expect("write");
    let top = dir.join("top.json");
    let e = bounded(Duration::from_secs(10), move || {
        Schema::load(&top).expect_err("refused").to_string()
    });
    assert!(e.contains("not a regular file"), "{e}");
    // The top file itself, and a directory.
    let f = fifo.clone();
    let e = bounded(Duration::from_secs(10), move || {
        Schema::load(&f).expect_err("refused").to_string()
    });
    assert!(e.contains("not a regular file"), "{e}");
    let d = dir.clone();
    let e = bounded(Duration::from_secs(10), move || {
        Schema::load(&d).expect_err("refused").to_string()
    });
    assert!(e.contains("a directory"), "{e}");
    // Over the size limit: said, and nothing past the limit is read.
    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; 4096]).expect("write");
    let e = Schema::load_limited(&big, 1000)
        .expect_err("too big")
        .to_string();
    assert!(e.contains("4096 bytes, over the limit of 1000"), "{e}");
    assert!(e.contains("big.json"), "names the file: {e}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn generated(schema: &str) -> Vec<qapi_gen::rust::GeneratedFile> {
    let s = Schema::load(here().join(schema)).expect("check accepts it");
    generate(&s, &Options::default()).expect("generates")
}

#[test]
fn schema_code_fences_never_become_doctests() {
    let files = generated("doc-fence.json");
    let f = files
        .iter()
        .find(|f| f.path == "doc_fence.rs")
        .expect("module file");
    let mut fence: Option<String> = None;
    for line in f.contents.lines() {
        let doc = line
            .trim_start()
            .strip_prefix("///")
            .unwrap_or("")
            .trim_start();
        let ticks: String = doc.chars().take_while(|&c| c == '`' || c == '~').collect();
        match &fence {
            None if ticks.len() >= 3 => {
                let lang = &doc[ticks.len()..];
                assert_eq!(lang, "text", "a fence that is not text: {line}");
                fence = Some(ticks);
            }
            Some(open) if doc == open => fence = None,
            _ => {}
        }
    }
    assert!(fence.is_none(), "a fence left open");
    assert!(f.contents.contains("/// \\```"), "{}", f.contents);
    assert!(f.contents.contains("/// \\~~~"), "{}", f.contents);
}

#[test]
fn keyword_file_names_make_valid_module_names() {
    let files = generated("keywords.json");
    let m = files.iter().find(|f| f.path == "mod.rs").expect("mod.rs");
    let parsed = syn::parse_file(&m.contents).expect("mod.rs parses");
    let mods: Vec<String> = parsed
        .items
        .iter()
        .filter_map(|i| match i {
            // Module files of the schema (the inline `commands` and
            // `events` are paths; `tables` and `dispatch` are the
            // generator's own files).
            syn::Item::Mod(m)
                if m.content.is_none() && matches!(m.vis, syn::Visibility::Public(_)) =>
            {
                Some(m.ident.to_string())
            }
            _ => None,
        })
        .collect();
    let inline: Vec<String> = parsed
        .items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Mod(m) if m.content.is_some() => Some(m.ident.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(inline, ["commands", "events"]);
    // A schema module named like the generator's own files gets a `_`.
    assert!(
        files.iter().any(|f| f.path == "tables.rs")
            && files.iter().any(|f| f.path == "dispatch.rs")
    );
    let kws = std::fs::read_dir(here().join("keywords"))
        .expect("dir")
        .count();
    assert_eq!(mods.len(), kws + 1, "{mods:?}");
    for name in &mods {
        assert!(!name.starts_with("r#"), "a raw module name: {name}");
        assert!(
            files.iter().any(|f| f.path == format!("{name}.rs")),
            "no file for mod {name}"
        );
        syn::parse_str::<syn::Ident>(name).expect("a plain identifier");
    }
    assert!(
        mods.contains(&"rt_2".to_string()),
        "`rt` is the runtime's name"
    );
    for kw in [
        "type",
        "gen",
        "try",
        "fn",
        "mod",
        "self",
        "Self_upper",
        "crate",
    ] {
        let want = qapi_gen::rust::module_name(kw);
        assert!(mods.contains(&want), "{kw} -> {want} not in {mods:?}");
    }
}

#[test]
fn a_carriage_return_in_a_doc_line_is_normalised() {
    let files = generated("doc-cr.json");
    let f = files
        .iter()
        .find(|f| f.path == "doc_cr.rs")
        .expect("module file");
    assert!(!f.contents.contains('\r'), "a bare CR in the output");
    assert!(f.contents.contains("carriage return in the middle"));
    syn::parse_file(&f.contents).expect("parses");
}

/// Everything above in one crate: `cargo test --doc` under
/// `deny(warnings)` must build it without a warning and run none of the
/// schema's text (the marker file stays absent).
#[test]
fn everything_check_accepts_here_compiles_warning_free_and_runs_no_schema_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = temp("crate");
    let schema = Schema::load(here().join("all.json")).expect("check accepts it");
    let files = generate(
        &schema,
        &Options {
            schema_label: "qapi-codegen/tests/hostile/all.json".into(),
            ..Options::default()
        },
    )
    .expect("generates");
    let src = dir.join("hostile/src");
    std::fs::create_dir_all(src.join("generated")).expect("mkdir");
    for f in &files {
        std::fs::write(src.join("generated").join(&f.path), &f.contents).expect("write");
    }
    std::fs::write(
        src.join("lib.rs"),
        "//! Generated from hostile schemas for a test.\n#![deny(warnings)]\n#[rustfmt::skip]\nmod generated;\npub use generated::*;\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("hostile/Cargo.toml"),
        format!(
            "[package]\nname = \"hostile\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[dependencies]\n\
             qapi-rt = {{ path = {:?} }}\n",
            root.join("qapi-rt").display().to_string()
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"hostile\"]\n",
    )
    .expect("write");
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy lock");
    let marker = dir.join("pwned");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--doc", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", root.join("target/hostile"))
        .env("HOSTILE_MARKER", &marker)
        .env("RUSTDOCFLAGS", "-D warnings")
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the generated crate does not build:\n{stderr}\n{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(!marker.exists(), "schema text ran as a doctest");
    assert!(
        !stdout.contains("test result: ok. 1") && !stdout.contains("passed; 1"),
        "doctests ran: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wire_names_are_rustdoc_aliases() {
    let files = generated("lint-names.json");
    let f = files
        .iter()
        .find(|f| f.path == "lint_names.rs")
        .expect("module file");
    for (wire, rust) in [
        ("x-odd_command", "pub struct XOddCommand"),
        ("LINT_EVENT", "pub struct LintEvent"),
    ] {
        let alias = format!("#[doc(alias = \"{wire}\")]");
        let at = f
            .contents
            .find(&alias)
            .unwrap_or_else(|| panic!("no {alias}"));
        let item = f.contents[at..].find(rust).expect("the item");
        assert!(
            !f.contents[at..at + item].contains("\npub "),
            "{alias} is not on {rust}"
        );
    }
    // No alias where the Rust name is the wire name (rustdoc refuses it).
    assert!(!f.contents.contains("#[doc(alias = \"LintNames\")]"));
}
