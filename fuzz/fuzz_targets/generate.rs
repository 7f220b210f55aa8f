//! Fuzzes the generator: whatever the front end accepts must generate
//! Rust that parses (`syn::parse_file`, every file), with no bare carriage
//! return and no fence that would make schema text a doctest. The input
//! is split as for `parse_check`: a root schema, then after the first NUL
//! byte a file `inc.json` it may include. (Compiling under
//! `deny(warnings)` is the slower periodic test in
//! `qapi-codegen/tests/generated_corpus.rs`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use qapi_codegen::rust::{Options, generate};
use qapi_codegen::{MemLoader, Schema};

fuzz_target!(|data: &[u8]| {
    let (root, inc) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let mut loader = MemLoader::new();
    loader.insert("s.json", root.to_vec());
    loader.insert("inc.json", inc.to_vec());
    let Ok(schema) = Schema::load_with(&loader, "s.json") else {
        return;
    };
    let files = match generate(&schema, &Options::default()) {
        Ok(f) => f,
        Err(e) => panic!("check accepted a schema the generator refuses: {e}"),
    };
    for f in &files {
        if let Err(e) = syn::parse_file(&f.contents) {
            panic!("{} does not parse: {e}\n{}", f.path, f.contents);
        }
        assert!(!f.contents.contains('\r'), "{}: a bare CR", f.path);
        for line in f.contents.lines() {
            let doc = line.trim_start();
            if let Some(text) = doc.strip_prefix("///") {
                let t = text.trim_start();
                if t.starts_with("```") || t.starts_with("~~~") {
                    let lang = t.trim_start_matches(['`', '~']);
                    assert!(
                        lang.is_empty() || lang == "text",
                        "{}: a fence that is not text: {line}",
                        f.path
                    );
                }
            }
        }
    }
});
