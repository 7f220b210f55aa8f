//! Fuzzes the whole front end (parse, check, model dump) on arbitrary
//! bytes. The input is split at its first NUL byte into a root schema and
//! a second file, `inc.json`, that the root may include.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qapi_gen::{MemLoader, Schema};

fuzz_target!(|data: &[u8]| {
    let (root, inc) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let mut loader = MemLoader::new();
    loader.insert("s.json", root.to_vec());
    loader.insert("inc.json", inc.to_vec());
    match Schema::load_with(&loader, "s.json") {
        Ok(schema) => {
            let _ = qapi_gen::dump::dump(&schema);
        }
        Err(e) => {
            // Every error renders to a non-empty message.
            assert!(!e.to_string().is_empty());
        }
    }
});
