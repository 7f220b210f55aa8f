//! QEMU's real schemas: every version `schema/manifest.txt` lists loads; for 10.0.2 the model's counts match counts taken from the
//! files by a separate, naive scan; and a live qemu-storage-daemon's
//! `query-qmp-schema` names only commands and events we parsed.

use qmp_client::launch::Launcher;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use qapi_gen::{DocRules, EntityKind, Schema};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

const SCHEMAS: [&str; 3] = [
    "qapi/qapi-schema.json",
    "qga/qapi-schema.json",
    "storage-daemon/qapi/qapi-schema.json",
];

#[test]
fn all_versions_load() {
    // 7.2 predates the doc rules of 9.1; the others are read by QEMU 10's.
    let manifest = qapi_gen::manifest::Manifest::load(root().join("schema")).expect("manifest");
    assert!(manifest.versions.len() >= 3, "{:?}", manifest.versions);
    let dirs: Vec<(PathBuf, DocRules)> = manifest
        .versions
        .iter()
        .map(|v| {
            let rules = if v.starts_with("7.") {
                DocRules::Legacy
            } else {
                DocRules::Qemu10
            };
            (root().join("schema").join(v), rules)
        })
        .collect();
    for (dir, rules) in &dirs {
        for s in SCHEMAS {
            let path = dir.join(s);
            let schema = Schema::load_with_rules(&path, *rules)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let commands = schema.iter().filter(|(_, e)| e.meta() == "command").count();
            assert!(
                commands > 20,
                "{}: only {commands} commands",
                path.display()
            );
        }
    }
}

/// Counts top-level definitions by a naive scan: follow `'include'`
/// strings, drop comments, and count `{ 'META':` openings. Shares no
/// code with the parser.
fn naive_counts(root_file: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut todo = vec![root_file.to_path_buf()];
    while let Some(file) = todo.pop() {
        let canon = std::fs::canonicalize(&file).expect("schema file exists");
        if !seen.insert(canon) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable");
        let mut code = String::new();
        for line in text.lines() {
            let mut in_str = false;
            for c in line.chars() {
                if c == '\'' {
                    in_str = !in_str;
                }
                if c == '#' && !in_str {
                    break;
                }
                code.push(c);
            }
            code.push('\n');
        }
        let squeezed: String = code.split_whitespace().collect::<Vec<_>>().join("");
        // Top-level objects only: a member may be called 'event' too.
        let mut depth = 0usize;
        let mut in_str = false;
        for (i, c) in squeezed.char_indices() {
            match c {
                '\'' => in_str = !in_str,
                '{' | '[' if !in_str => {
                    if depth == 0 && c == '{' {
                        let rest = &squeezed[i + 1..];
                        for meta in ["command", "event", "struct", "union", "enum", "alternate"] {
                            if rest.starts_with(&format!("'{meta}':")) {
                                *counts.entry(meta.to_string()).or_insert(0) += 1;
                            }
                        }
                    }
                    depth += 1;
                }
                '}' | ']' if !in_str => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        let mut rest = squeezed.as_str();
        while let Some(i) = rest.find("{'include':'") {
            rest = &rest[i + 12..];
            let end = rest.find('\'').expect("closing quote");
            todo.push(file.parent().expect("dir").join(&rest[..end]));
        }
    }
    counts
}

fn model_counts(schema: &Schema) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, e) in schema.iter() {
        let explicit =
            e.info.is_some() && !e.is_implicit() && !matches!(e.kind, EntityKind::Include { .. });
        if explicit {
            *counts.entry(e.meta().to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn counts_match_an_independent_scan_for_10_0_2() {
    for s in SCHEMAS {
        let path = root().join("schema/10.0.2").join(s);
        let schema = Schema::load(&path).expect("10.0.2 loads");
        let naive = naive_counts(&path);
        let model = model_counts(&schema);
        for (meta, n) in &naive {
            assert_eq!(
                model.get(meta).copied().unwrap_or(0),
                *n,
                "{s}: {meta} count"
            );
        }
        assert!(naive["command"] > 40, "{s}: scan found too few commands");
    }
    // The figures themselves, so that a change in either shows up.
    let schema = Schema::load(root().join("schema/10.0.2/qapi/qapi-schema.json")).expect("loads");
    let model = model_counts(&schema);
    assert_eq!(model["command"], 240);
    assert_eq!(model["event"], 56);
}

#[test]
fn live_storage_daemon_commands_and_events_are_in_the_schema() {
    let qsd = Launcher::storage_daemon()
        .start_blocking()
        .expect("start qemu-storage-daemon (package qemu-utils)");
    let (mut qmp, greeting) = tests::RawQmp::connect(qsd.socket()).expect("QMP connect");
    assert_eq!(
        greeting["QMP"]["version"]["qemu"]["major"], 10,
        "QEMU 10 expected"
    );
    let reply = qmp
        .execute("query-qmp-schema", serde_json::json!({}))
        .expect("reply");
    let infos = reply["return"].as_array().expect("SchemaInfo list");
    let mut live: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for info in infos {
        let meta = info["meta-type"].as_str().unwrap_or_default();
        if meta == "command" || meta == "event" {
            live.entry(meta)
                .or_default()
                .insert(info["name"].as_str().unwrap_or_default());
        }
    }
    let schema = Schema::load(root().join("schema/10.0.2/storage-daemon/qapi/qapi-schema.json"))
        .expect("storage-daemon schema loads");
    for (meta, names) in &live {
        assert!(names.len() > 5, "live daemon lists few {meta}s: {names:?}");
        for name in names {
            let id = schema.lookup(name);
            assert!(
                id.is_some_and(|id| schema.entity(id).meta() == *meta),
                "live {meta} '{name}' is not in the parsed storage-daemon schema"
            );
        }
    }
    assert!(live.contains_key("command") && live.contains_key("event"));
    let _ = qmp.execute("quit", serde_json::json!({}));
}
