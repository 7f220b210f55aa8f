//! `cargo xtask tidy`: repository hygiene that rustc and clippy don't
//! check. Also run as a `#[test]`, so `cargo test` catches it.
//!
//! - every Rust file opens with a `//!` module doc (or, for generated
//!   files, the generated header, which is one);
//! - no trailing white space and no tabs in Rust sources;
//! - no file is committed with CRLF line endings;
//! - no hand-written Rust file is longer than [`MAX_LINES`] lines (split
//!   it along its jobs);
//! - no modules of a crate import each other, directly or around a
//!   circle, and a crate root that lists its layers keeps them (see
//!   [`crate::layers`]).

use std::path::{Path, PathBuf};

use crate::layers;

/// The directories whose Rust files are checked.
const ROOTS: &[&str] = &[
    "qapi-rt",
    "qapi-codegen",
    "qmp-types",
    "qmp-client",
    "qmp-cli",
    "examples",
    "xtask",
    "tests",
    "fuzz",
];

/// Lines a hand-written Rust file may have, at most.
pub const MAX_LINES: usize = 800;

/// Whether a file is generated (under a `generated` folder, or marked
/// `@generated` in its first lines).
fn generated(path: &Path, text: &str) -> bool {
    path.components().any(|c| c.as_os_str() == "generated")
        || text.lines().take(5).any(|l| l.contains("@generated"))
}

/// Skipped: build output and QEMU's vendored files.
fn skipped(path: &Path) -> bool {
    path.components().any(|c| {
        let c = c.as_os_str();
        c == "target" || c == "fixtures" || c == "corpus" || c == "artifacts"
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if skipped(&path) {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Problems found under `root`, one line each (`path: problem`).
pub fn check(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for dir in ROOTS {
        rust_files(&root.join(dir), &mut files);
    }
    let mut problems = Vec::new();
    // Each file read once: its checks here, the module graphs below.
    let mut texts: Vec<(PathBuf, String)> = Vec::new();
    for path in files {
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{shown}: cannot read: {e}"));
                continue;
            }
        };
        problems.extend(check_file(&shown, &text));
        let lines = text.lines().count();
        if lines > MAX_LINES && !generated(&path, &text) {
            problems.push(format!(
                "{shown}: {lines} lines, over {MAX_LINES}: split it along the jobs it does"
            ));
        }
        texts.push((path, text));
    }
    for dir in ROOTS {
        problems.extend(check_crates(root, &root.join(dir), &texts));
    }
    problems
}

/// The module graph of each crate under `dir` (a folder with `src/lib.rs`
/// or `src/main.rs`, and such folders below it), from the files `texts`
/// holds.
fn check_crates(root: &Path, dir: &Path, texts: &[(PathBuf, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let src = dir.join("src");
    if src.join("lib.rs").is_file() || src.join("main.rs").is_file() {
        let modules: Vec<layers::Module> = texts
            .iter()
            .filter_map(|(file, text)| {
                let path = layers::module_path(&src, file)?;
                let shown = file
                    .strip_prefix(root)
                    .unwrap_or(file)
                    .display()
                    .to_string();
                Some(layers::Module {
                    path,
                    shown,
                    text: text.clone(),
                })
            })
            .collect();
        let name = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
        problems.extend(layers::check_crate(&name, &modules));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut subdirs: Vec<_> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !skipped(p) && !p.ends_with("src"))
            .collect();
        subdirs.sort();
        for sub in subdirs {
            problems.extend(check_crates(root, &sub, texts));
        }
    }
    problems
}

/// Problems in one Rust file.
pub fn check_file(shown: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("#!["))
        .unwrap_or("");
    if !first.starts_with("//!") {
        problems.push(format!(
            "{shown}: missing module docs: start the file with `//! what it is for`"
        ));
    }
    if text.contains('\r') {
        problems.push(format!("{shown}: CRLF line endings; use LF"));
    }
    for (i, line) in text.lines().enumerate() {
        if line.ends_with(' ') || line.ends_with('\t') {
            problems.push(format!("{shown}:{}: trailing white space", i + 1));
        }
        if line.contains('\t') {
            problems.push(format!("{shown}:{}: tab; indent with spaces", i + 1));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_tidy() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let problems = check(&root);
        assert!(
            problems.is_empty(),
            "tidy found problems (fix them, then `cargo xtask tidy`):\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn flags_missing_docs_and_whitespace() {
        let p = check_file("a.rs", "fn main() {} \n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("missing module docs"));
        assert!(p[1].contains("a.rs:1: trailing white space"));
        assert!(check_file("b.rs", "#![no_main]\n//! Docs.\nfn f() {}\n").is_empty());
    }
}
