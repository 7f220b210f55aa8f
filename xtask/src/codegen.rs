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
use qapi_gen::rust::{GeneratedFile, Options, Protocol, generate};

/// The command that fixes stale output.
pub const REGEN: &str = "cargo xtask regen";

/// One output directory (or file) and what should be in it.
pub struct Output {
    /// Directory, relative to the workspace root.
    pub dir: PathBuf,
    /// Its files.
    pub files: Vec<GeneratedFile>,
    /// Whether the directory holds only generated `.rs` files (stale ones
    /// are deleted).
    pub owns_dir: bool,
}

fn err(e: qapi_gen::Error) -> String {
    e.to_string()
}

/// Everything `regen` writes.
pub fn outputs(root: &Path) -> Result<Vec<Output>, String> {
    let manifest = Manifest::load(root.join("schema")).map_err(err)?;
    let list = manifest.versions.join(", ");
    // Each version once: the changelogs, then the merge.
    let qmp_each = manifest.load_each(Part::Qmp).map_err(err)?;
    let qga_each = manifest.load_each(Part::Qga).map_err(err)?;
    let changes = (
        crate::versions::changes(&qmp_each),
        crate::versions::changes(&qga_each),
    );
    let qapi = Schema::merge(qmp_each).map_err(err)?;
    let types = generate(
        &qapi,
        &Options {
            runtime: "::qapi_rt".into(),
            schema_label: format!("the QMP schemas of QEMU {list} (`schema/manifest.txt`)"),
            regen_command: REGEN.into(),
            protocol: Protocol::Qmp,
        },
    )
    .map_err(err)?;

    let qga = Schema::merge(qga_each).map_err(err)?;
    let qga_files = generate(
        &qga,
        &Options {
            runtime: "::qapi_rt".into(),
            schema_label: format!("the guest agent schemas of QEMU {list} (`schema/manifest.txt`)"),
            regen_command: REGEN.into(),
            protocol: Protocol::Qga,
        },
    )
    .map_err(err)?;

    let test_schema = root.join("tests/fixtures/qapi-schema/qapi-schema-test.json");
    let test = load_any(&test_schema).map_err(err)?;
    let test_files = generate(
        &test,
        &Options {
            runtime: "::qapi_rt".into(),
            schema_label: "QEMU's `tests/qapi-schema/qapi-schema-test.json`".into(),
            regen_command: REGEN.into(),
            protocol: Protocol::Qmp,
        },
    )
    .map_err(err)?;

    let versions = crate::versions::page(&manifest, (&changes.0, &changes.1), &qapi, &qga);

    Ok(vec![
        Output {
            dir: "qmp-types/src/generated/qmp".into(),
            files: types,
            owns_dir: true,
        },
        Output {
            dir: "qmp-types/src/generated/qga".into(),
            files: qga_files,
            owns_dir: true,
        },
        Output {
            dir: "tests/src/generated/qapi_test".into(),
            files: test_files,
            owns_dir: true,
        },
        Output {
            dir: "qmp-types/src/generated".into(),
            files: vec![versions],
            owns_dir: false,
        },
    ])
}

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
        let outputs = outputs(&root).expect("the vendored schemas generate");
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
