//! `cargo xtask regen`: generated code, written or (with `--check`)
//! compared with what is committed. Everything follows
//! `schema/manifest.txt`; no version is named here.
//!
//! Everything it writes sits under a `generated` folder:
//!
//! - `qmp-types/src/generated/qmp/` from the merged QMP schemas of every
//!   listed QEMU;
//! - `qmp-types/src/generated/qga/` from their merged guest agent schemas;
//! - `qmp-types/src/generated/versions.md`: what changed between each two
//!   listed versions (`qapi-gen diff`) and what the merge resolved;
//! - `tests/src/generated/qapi_test/` from QEMU's `qapi-schema-test.json`,
//!   the schema that exercises every construct.

use std::path::{Path, PathBuf};

use qapi_gen::Schema;
use qapi_gen::manifest::{Manifest, Part, load_any};
use qapi_gen::rust::api::Api;
use qapi_gen::rust::{Options, Protocol, SHAPES_FILE, Shapes, generate};

pub use crate::output::{Output, REGEN};

fn err(e: qapi_gen::Error) -> String {
    e.to_string()
}

/// What this project adds to the docs of some QEMU definitions: how
/// QEMU behaves, seen on real QEMU, where its schema doc is silent.
fn notes() -> Vec<(String, String)> {
    [
        (
            "MIGRATION",
            "QEMU sends this event only while the migration capability `events` is set \
             (`migrate-set-capabilities`); without it, a wait for it times out. \
             `qmp_client::Client::start_migration` and `start_incoming` set it for you.",
        ),
        (
            "MIGRATION_PASS",
            "Like `MIGRATION`, sent only while the migration capability `events` is set.",
        ),
        (
            "BlockInfo",
            "`qdev` is the device's QOM path (under `/machine/peripheral/ID/` for a device \
             given an `id`), not the `id` itself: match on the path, or on `device` (the \
             block backend's name) where there is one.",
        ),
        (
            "device_del",
            "Returning `{}` means the unplug was requested; `DEVICE_DELETED` says it is \
             done. Without a guest, QEMU removes USB devices itself, and devices on a \
             PCIe root port with native hotplug (`q35` with `-global \
             ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off`); a PCI device on ACPI \
             hotplug (the `pc` machine's `pci.0`, and `q35`'s root ports by default since \
             QEMU 6.1) waits for the guest and, without one, is never removed.",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Everything `regen` writes, and the API check.
pub fn outputs(root: &Path) -> Result<(Vec<Output>, crate::api::ApiCheck), String> {
    let manifest = Manifest::load(root.join("schema")).map_err(err)?;
    let list = manifest.versions.join(", ");
    // Each version once: the changelogs, then the merge.
    let qmp_each = manifest.load_each(Part::Qmp).map_err(err)?;
    let qga_each = manifest.load_each(Part::Qga).map_err(err)?;
    let diffs = (
        crate::versions::diffs(&qmp_each),
        crate::versions::diffs(&qga_each),
    );
    let qmp_opts = Options {
        runtime: "::qapi_rt".into(),
        schema_label: format!("the QMP schemas of QEMU {list} (`schema/manifest.txt`)"),
        regen_command: REGEN.into(),
        protocol: Protocol::Qmp,
        notes: notes(),
        shapes: committed_shapes(root, QMP_DIR)?,
    };
    let qga_opts = Options {
        runtime: "::qapi_rt".into(),
        schema_label: format!("the guest agent schemas of QEMU {list} (`schema/manifest.txt`)"),
        regen_command: REGEN.into(),
        protocol: Protocol::Qga,
        notes: notes(),
        shapes: committed_shapes(root, QGA_DIR)?,
    };
    let qapi = Schema::merge(qmp_each.clone()).map_err(err)?;
    let types = generate(&qapi, &qmp_opts).map_err(err)?;
    let qga = Schema::merge(qga_each.clone()).map_err(err)?;
    let qga_files = generate(&qga, &qga_opts).map_err(err)?;

    // The API check: fresh against committed, and each version step.
    let accepted = crate::api::Accepted::load(root)?;
    let mut since_committed = Vec::new();
    let mut steps = Vec::new();
    let qmp_out = Output {
        dir: QMP_DIR.into(),
        files: types,
        owns_dir: true,
    };
    let qga_out = Output {
        dir: QGA_DIR.into(),
        files: qga_files,
        owns_dir: true,
    };
    for (part, out, each, diffs, opts) in [
        ("QMP", &qmp_out, &qmp_each, &diffs.0, &qmp_opts),
        ("the guest agent", &qga_out, &qga_each, &diffs.1, &qga_opts),
    ] {
        let fresh = crate::api::api_of(&out.files)?;
        // Committed files equal to the fresh ones (the usual case) have
        // the same API.
        if !check(root, std::slice::from_ref(out)).is_empty() {
            let old = crate::api::committed(&root.join(&out.dir))?;
            since_committed.push((part, Api::changes(&old, &fresh)));
        }
        steps.push((part, crate::api::steps(each, diffs, &fresh, opts)?));
    }
    let check = crate::api::ApiCheck {
        accepted,
        since_committed,
        steps,
    };

    let test_schema = root.join("tests/fixtures/qapi-schema/qapi-schema-test.json");
    let test = load_any(&test_schema).map_err(err)?;
    let test_files = generate(
        &test,
        &Options {
            runtime: "::qapi_rt".into(),
            schema_label: "QEMU's `tests/qapi-schema/qapi-schema-test.json`".into(),
            regen_command: REGEN.into(),
            protocol: Protocol::Qmp,
            notes: Vec::new(),
            shapes: committed_shapes(root, TEST_DIR)?,
        },
    )
    .map_err(err)?;

    let evolution = crate::evolution::outputs(root)?;

    let versions = crate::versions::page(&manifest, (&diffs.0, &diffs.1), (&qapi, &qga), &check);

    let mut outputs = vec![
        qmp_out,
        qga_out,
        Output {
            dir: TEST_DIR.into(),
            files: test_files,
            owns_dir: true,
        },
        Output {
            dir: "qmp-types/src/generated".into(),
            files: vec![versions],
            owns_dir: false,
        },
    ];
    outputs.extend(evolution);
    Ok((outputs, check))
}

/// The boxing decisions committed with the bindings in `dir` (none
/// there: none made yet), which the next generation keeps.
fn committed_shapes(root: &Path, dir: &str) -> Result<Shapes, String> {
    Shapes::load(&root.join(dir).join(SHAPES_FILE)).map_err(|e| e.to_string())
}

/// Where the bindings of QEMU's test schema are written.
const TEST_DIR: &str = "tests/src/generated/qapi_test";
/// Where the QMP bindings are written.
const QMP_DIR: &str = "qmp-types/src/generated/qmp";
/// Where the guest agent bindings are written.
const QGA_DIR: &str = "qmp-types/src/generated/qga";

fn normalize(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// Writes the outputs; returns the files changed.
pub fn write(root: &Path, outputs: &[Output]) -> Result<Vec<PathBuf>, String> {
    let mut changed = Vec::new();
    for out in outputs {
        let dir = root.join(&out.dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if out.owns_dir {
            for stale in stale_files(&dir, out) {
                std::fs::remove_file(&stale).map_err(|e| format!("{}: {e}", stale.display()))?;
                changed.push(stale);
            }
        }
        for f in &out.files {
            let path = dir.join(&f.path);
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            if normalize(&old) != f.contents {
                std::fs::write(&path, &f.contents)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                changed.push(path);
            }
        }
    }
    Ok(changed)
}

fn stale_files(dir: &Path, out: &Output) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stale: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            !out.files.iter().any(|f| Some(&f.path) == name.as_ref())
        })
        .collect();
    stale.sort();
    stale
}

/// Files that differ from what would be generated (CRLF normalised).
pub fn check(root: &Path, outputs: &[Output]) -> Vec<PathBuf> {
    let mut stale = Vec::new();
    for out in outputs {
        let dir = root.join(&out.dir);
        if out.owns_dir {
            stale.extend(stale_files(&dir, out));
        }
        for f in &out.files {
            let path = dir.join(&f.path);
            match std::fs::read_to_string(&path) {
                Ok(old) if normalize(&old) == f.contents => {}
                _ => stale.push(path),
            }
        }
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_code_is_fresh() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let (outputs, api) = outputs(&root).expect("the vendored schemas generate");
        let breaks = api.unaccepted();
        assert!(
            breaks.is_empty(),
            "the Rust API breaks where `{}` does not accept it:\n{}",
            crate::api::ACCEPTED,
            breaks
                .iter()
                .map(|(w, c)| format!("  {w}: {}", c.to_markdown()))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let stale = check(&root, &outputs);
        assert!(
            stale.is_empty(),
            "generated code is stale; run `{REGEN}` and commit the result:\n{}",
            stale
                .iter()
                .map(|p| format!("  {}", p.strip_prefix(&root).unwrap_or(p).display()))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
