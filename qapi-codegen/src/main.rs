//! The `qapi-gen` command line.

use std::path::PathBuf;
use std::process::ExitCode;

/// Generation allocates a great deal (tokens, syn's tree, prettyplease's
/// output); mimalloc makes `generate` about a fifth faster than glibc's
/// allocator (see BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: qapi-gen <command> SCHEMA [--legacy-docs] [args]

Doc comments are read by QEMU 10's rules; --legacy-docs reads them by the
rules of QEMU before 9.1 (for 7.2's schema: `Note:` and `Example:`
sections, text on unindented lines after a tag, ...).

commands:
  check SCHEMA   parse and check SCHEMA (and what it includes); exit 0 when
                 valid, 1 with QEMU's error message on stderr when not
  dump SCHEMA    check, then print the model as QEMU's test-qapi.py does
  stats SCHEMA   check, then print counts of definitions by kind
  merge DIR      load every version DIR/manifest.txt lists, merge them and
                 print each conflict the merge met and how it resolved it
  diff OLD NEW   print a Markdown changelog from schema OLD to schema NEW
                 (commands, events, types, members, enum values, types
                 changed, optional/required, features, `if`); a path
                 component that is a version (schema/7.2.0/...) labels it
  conform DIR (--socket PATH | --introspection FILE) [--version X.Y.Z]
              [--storage-daemon]
                 compare a running QEMU's query-qmp-schema (from its QMP
                 socket, or a file holding the reply's `return`) with the
                 merged model of DIR/manifest.txt, both ways; exit 1 when
                 a difference is unexplained (--storage-daemon: the
                 program is qemu-storage-daemon, whose schema has less)
  generate SCHEMA --out DIR [--runtime PATH] [--qga]
                 check, then write Rust (mod.rs and one file per module)
                 into DIR; the code uses the runtime at PATH (default
                 ::qmp_types::rt), so the crate including it depends on
                 qmp-types, serde and serde_json; --qga makes the commands
                 guest-agent commands (Command::Protocol = Qga)
";

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("qapi-gen: {msg}\n");
    eprint!("{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (Some(cmd), Some(path)) = (args.first(), args.get(1)) else {
        return usage_error("a command and a schema are required");
    };
    match cmd.as_str() {
        "merge" => return merge(path),
        "diff" => return diff(path, args.get(2)),
        "conform" => return conform(path, &args[2..]),
        _ => {}
    }
    let mut out = None;
    let mut runtime = "::qmp_types::rt".to_string();
    let mut protocol = qapi_gen::rust::Protocol::Qmp;
    let mut rules = qapi_gen::DocRules::Qemu10;
    let mut rest = args[2..].iter();
    while let Some(a) = rest.next() {
        match (cmd.as_str(), a.as_str()) {
            (_, "--legacy-docs") => rules = qapi_gen::DocRules::Legacy,
            ("generate", "--out") => out = rest.next().map(PathBuf::from),
            ("generate", "--qga") => protocol = qapi_gen::rust::Protocol::Qga,
            ("generate", "--runtime") => match rest.next() {
                Some(r) => runtime = r.clone(),
                None => return usage_error("--runtime needs a path"),
            },
            _ => return usage_error(&format!("unexpected argument '{a}'")),
        }
    }
    if !matches!(cmd.as_str(), "check" | "dump" | "stats" | "generate") {
        return usage_error(&format!("unknown command '{cmd}'"));
    }
    let schema = match qapi_gen::Schema::load_with_rules(path, rules) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    match cmd.as_str() {
        "dump" => print!("{}", qapi_gen::dump::dump(&schema)),
        "stats" => {
            let mut counts = std::collections::BTreeMap::new();
            for (_, e) in schema.iter().filter(|(_, e)| e.info.is_some()) {
                *counts.entry(e.meta()).or_insert(0usize) += 1;
            }
            for (meta, n) in counts {
                println!("{meta}: {n}");
            }
            println!("files: {}", schema.sources.files.len());
            println!("docs: {}", schema.docs.len());
        }
        "generate" => {
            let Some(out) = out else {
                return usage_error("generate needs --out DIR");
            };
            let opts = qapi_gen::rust::Options {
                runtime,
                schema_label: format!("`{path}`"),
                regen_command: format!("qapi-gen generate {path} --out {}", out.display()),
                protocol,
                notes: Vec::new(),
                // The decisions of the last generation into this folder.
                shapes: match qapi_gen::rust::Shapes::load(&out.join(qapi_gen::rust::SHAPES_FILE)) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("qapi-gen: {e}");
                        return ExitCode::from(1);
                    }
                },
            };
            let files = match qapi_gen::rust::generate(&schema, &opts) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            };
            if let Err(e) = std::fs::create_dir_all(&out) {
                eprintln!("qapi-gen: can't create {}: {e}", out.display());
                return ExitCode::from(1);
            }
            for f in &files {
                let p = out.join(&f.path);
                if let Err(e) = std::fs::write(&p, &f.contents) {
                    eprintln!("qapi-gen: can't write {}: {e}", p.display());
                    return ExitCode::from(1);
                }
            }
            println!("wrote {} files to {}", files.len(), out.display());
        }
        _ => println!("{path}: ok"),
    }
    ExitCode::SUCCESS
}

/// `merge DIR`: loads every version the manifest in DIR lists, merges
/// them and prints what the merge met.
fn merge(dir: &str) -> ExitCode {
    let merged = qapi_gen::manifest::Manifest::load(dir)
        .and_then(|m| m.load_merged(qapi_gen::manifest::Part::Qmp));
    match merged {
        Ok(s) => {
            if let Some(v) = &s.versioning {
                for n in &v.notes {
                    println!("{:?}: {n}", n.kind);
                }
                println!("merged {}: {} notes", v.labels.join(", "), v.notes.len());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// `diff OLD NEW`.
fn diff(old: &str, new: Option<&String>) -> ExitCode {
    let Some(new) = new else {
        return usage_error("diff needs two schemas: OLD NEW");
    };
    match qapi_gen::diff::diff_paths(old, new) {
        Ok(d) => {
            print!("{}", d.to_markdown());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// `conform DIR ...`.
fn conform(dir: &str, rest: &[String]) -> ExitCode {
    let (mut socket, mut file, mut version, mut qsd) = (None, None, None, false);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = it.next().cloned(),
            "--introspection" => file = it.next().cloned(),
            "--version" => version = it.next().cloned(),
            "--storage-daemon" => qsd = true,
            other => return usage_error(&format!("unexpected argument '{other}'")),
        }
    }
    let (server_version, intro) = match (socket, file) {
        (Some(s), None) => match qapi_gen::conform::introspect(std::path::Path::new(&s)) {
            Ok((v, i)) => (Some(v), i),
            Err(e) => {
                eprintln!("qapi-gen: {e}");
                return ExitCode::from(1);
            }
        },
        (None, Some(f)) => {
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("qapi-gen: {f}: {e}");
                    return ExitCode::from(1);
                }
            };
            match serde_json::from_str(&text) {
                Ok(v) => (None, v),
                Err(e) => {
                    eprintln!("qapi-gen: {f}: not JSON: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        _ => return usage_error("conform needs one of --socket PATH or --introspection FILE"),
    };
    let version = version.or(server_version);
    match qapi_gen::conform::conform_manifest(
        std::path::Path::new(dir),
        &intro,
        version.as_deref(),
        qsd,
    ) {
        Ok(r) => {
            if let Some(n) = &r.note {
                eprintln!("note: {n}");
            }
            print!("{}", r.report);
            print!("{}", r.todo());
            if r.report.unexplained().next().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("qapi-gen: {e}");
            ExitCode::from(1)
        }
    }
}
