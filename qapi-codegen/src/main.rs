//! The `qapi-codegen` command line.

use std::process::ExitCode;

const USAGE: &str = "\
usage: qapi-codegen <command> [args]

commands:
  check SCHEMA   parse and check SCHEMA (and what it includes); exit 0 when
                 valid, 1 with QEMU's error message on stderr when not
  dump SCHEMA    check, then print the model as QEMU's test-qapi.py does
  stats SCHEMA   check, then print counts of definitions by kind
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, path) = match args.as_slice() {
        [cmd, path] => (cmd.as_str(), path.as_str()),
        [flag] if flag == "-h" || flag == "--help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !matches!(cmd, "check" | "dump" | "stats") {
        eprintln!("qapi-codegen: unknown command '{cmd}'\n");
        eprint!("{USAGE}");
        return ExitCode::from(2);
    }
    let schema = match qapi_codegen::Schema::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    match cmd {
        "dump" => print!("{}", qapi_codegen::dump::dump(&schema)),
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
        _ => println!("{path}: ok"),
    }
    ExitCode::SUCCESS
}
