//! README.md's Rust examples compile: each ```` ```rust ```` block, its
//! hidden lines (`# `) shown, is built as a program against this crate
//! and `qmp-types` (as rustdoc would build it; README's indented blocks
//! are shell commands, so the file can't be a doctest itself).

use std::path::Path;

/// The ```` ```rust ```` blocks of `text`, hidden lines shown.
fn rust_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.starts_with("```rust") => current = Some(String::new()),
            None => {}
            Some(_) if line.starts_with("```") => blocks.extend(current.take()),
            Some(b) => {
                let shown = line
                    .strip_prefix("# ")
                    .or_else(|| (line == "#").then_some(""))
                    .unwrap_or(line);
                b.push_str(shown);
                b.push('\n');
            }
        }
    }
    blocks
}

#[test]
fn readme_examples_compile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let blocks = rust_blocks(&readme);
    assert!(
        blocks.len() >= 4,
        "README's Rust examples: {}",
        blocks.len()
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme");
    std::fs::create_dir_all(&dir).expect("dir");
    let t = trybuild::TestCases::new();
    for (i, b) in blocks.iter().enumerate() {
        let file = dir.join(format!("readme_{i}.rs"));
        let program = format!("#![allow(unused)]\nfn main() {{\n{b}}}\n");
        std::fs::write(&file, program).expect("write");
        t.pass(&file);
    }
}
