//! Fuzzes the generator: whatever the front end accepts must generate
//! Rust that parses (`syn::parse_file`, every file), with no bare carriage
//! return and no fence that would make schema text a doctest. The input
//! is split as for `parse_check`: a root schema, then after the first NUL
//! byte a file `inc.json` it may include. (Compiling under
//! `deny(warnings)` is the slower periodic test in
//! `qapi-codegen/tests/generated_corpus.rs`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use qapi_gen::rust::{Options, generate};
use qapi_gen::{MemLoader, Schema};

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
        // Doc fences: every one that opens is `text`; inside one, a line
        // of fewer backticks is content, the same fence closes it.
        let mut open: Option<String> = None;
        for line in f.contents.lines() {
            let Some(text) = line.trim_start().strip_prefix("///") else {
                continue;
            };
            let t = text.trim_start();
            let ticks: String = t.chars().take_while(|&c| c == '`' || c == '~').collect();
            match &open {
                None if ticks.len() >= 3 => {
                    assert_eq!(
                        &t[ticks.len()..],
                        "text",
                        "{}: a fence that is not text: {line}",
                        f.path
                    );
                    open = Some(ticks);
                }
                Some(fence) if t == fence.as_str() => open = None,
                Some(fence) => assert!(
                    !(ticks.len() >= fence.len() && ticks.starts_with(fence.as_str())),
                    "{}: a line that closes the fence early: {line}",
                    f.path
                ),
                None => {}
            }
        }
        assert!(open.is_none(), "{}: a fence left open", f.path);
    }
});
