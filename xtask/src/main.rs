//! Workspace automation: `cargo xtask <command>`.
//!
//! - `regen [--check]`: regenerate `qmp-types` (and the test crate's
//!   generated modules) from the schemas `schema/manifest.txt` lists;
//! - `tidy`: repository hygiene checks (also a test);
//! - `public-api [--check]`: the hand-written crates' public API, written
//!   to (or checked against) each one's `public-api.txt`;
//! - `test [ARGS...]`: install the QEMU binaries the tests need when they
//!   are missing, then run every test (README's test command).

mod api;
mod codegen;
mod evolution;
mod layers;
mod output;
mod public_api;
mod qemu111;
mod setup;
mod tidy;
mod versions;

use std::path::PathBuf;
use std::process::ExitCode;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

const USAGE: &str = "usage: cargo xtask <command>

commands:
  regen [--check]
           regenerate qmp-types from every QEMU schema schema/manifest.txt
           lists (merged into one versioned model) and write the versions
           pages; --check only reports stale files
  tidy     check module docs, white space and line endings
  public-api [--check]
           write the public API of qapi-rt, qmp-client and qapi-gen to
           their public-api.txt; --check only reports a stale file
  test [ARGS...]
           install what the tests need when it is missing (qemu-utils,
           qemu-system-x86 10.0.2 from bookworm-backports; as root or via
           sudo -n, else it prints the commands and stops), then run
           `cargo test --workspace --locked ARGS...`";

fn regen(args: &[String]) -> Result<ExitCode, String> {
    let mut check = false;
    for a in args {
        match a.as_str() {
            "--check" => check = true,
            other => return Err(format!("unknown argument '{other}'\n\n{USAGE}")),
        }
    }
    let root = workspace_root();
    let (outputs, api) = codegen::outputs(&root)?;
    for (part, changes) in &api.since_committed {
        print!("{}", api::report(part, changes, &api.accepted));
    }
    let breaks = api.unaccepted();
    for (place, c) in &breaks {
        eprintln!("break ({place}): {}", c.to_markdown());
    }
    if !breaks.is_empty() {
        eprintln!(
            "the Rust API breaks ({} items): keep the old shape (ARCHITECTURE.md, \"Stability rules\"), \
             or accept each break in {} as `KEY | REASON`",
            breaks.len(),
            api::ACCEPTED
        );
    }
    if check {
        let stale = codegen::check(&root, &outputs);
        for p in &stale {
            eprintln!("stale: {}", p.strip_prefix(&root).unwrap_or(p).display());
        }
        if stale.is_empty() && breaks.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        if !stale.is_empty() {
            eprintln!("run `{}` to update", codegen::REGEN);
        }
        return Ok(ExitCode::FAILURE);
    }
    if !breaks.is_empty() {
        eprintln!("nothing written");
        return Ok(ExitCode::FAILURE);
    }
    let changed = codegen::write(&root, &outputs)?;
    for p in &changed {
        println!("updated {}", p.strip_prefix(&root).unwrap_or(p).display());
    }
    if changed.is_empty() {
        println!("generated code is up to date");
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("regen") => regen(&args[1..]),
        Some("test") => setup::test(&args[1..], &workspace_root()),
        Some("public-api") => public_api::run(&args[1..], &workspace_root()),
        Some("tidy") => {
            let problems = tidy::check(&workspace_root());
            for p in &problems {
                eprintln!("{p}");
            }
            Ok(if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
