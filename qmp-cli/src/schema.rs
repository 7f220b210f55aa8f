//! `qmp schema diff` and `qmp conform`: qapi-gen's schema tools
//! (`qapi_gen::diff`, `qapi_gen::conform`), from the command line.

use std::path::{Path, PathBuf};

use qmp_client::Client;
use serde_json::Value;

use crate::error::{CliError, Result};

/// Where the schemas are: `--schema DIR`, `QMP_SCHEMA_DIR`, or this
/// workspace's `schema/` when `qmp` runs from a checkout.
#[derive(Debug, Clone, clap::Args)]
pub struct SchemaDir {
    /// The folder with `manifest.txt` and one folder per QEMU version
    /// (this workspace's `schema/`).
    #[arg(long = "schema", value_name = "DIR", env = "QMP_SCHEMA_DIR")]
    pub dir: Option<PathBuf>,
}

impl SchemaDir {
    /// The folder to use.
    pub fn resolve(&self) -> Result<PathBuf> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
        if built.join("manifest.txt").is_file() {
            return Ok(built);
        }
        Err(CliError::Usage(
            "where are the schemas? give --schema DIR (a folder with manifest.txt, as this project's schema/) or set QMP_SCHEMA_DIR".into(),
        ))
    }
}

/// `qmp schema diff OLD NEW`: each a `qapi-schema.json`, a folder with
/// one, or a version the manifest lists (`7.2.0`), compared as Markdown.
pub fn diff(dir: &SchemaDir, old: &str, new: &str) -> Result<()> {
    let path = |s: &str| -> Result<String> {
        let p = Path::new(s);
        if p.is_dir() && p.join("qapi-schema.json").is_file() {
            return Ok(p.join("qapi-schema.json").display().to_string());
        }
        if p.exists() {
            return Ok(s.to_string());
        }
        if qmp_types::rt::QemuVersion::parse(s).is_some() {
            let p = dir.resolve()?.join(s).join("qapi/qapi-schema.json");
            if p.exists() {
                return Ok(p.display().to_string());
            }
        }
        Err(CliError::Usage(format!(
            "{s}: no such schema file or folder, nor a version in the manifest"
        )))
    };
    let d = qapi_gen::diff::diff_paths(&path(old)?, &path(new)?).map_err(CliError::Io)?;
    print!("{}", d.to_markdown());
    Ok(())
}

/// `qmp conform`: the connected QEMU's `query-qmp-schema` against the
/// schemas the bindings were made from.
pub async fn conform(client: &Client, dir: &SchemaDir, storage_daemon: Option<bool>) -> Result<()> {
    let dir = dir.resolve()?;
    let intro = client
        .execute_raw("query-qmp-schema", Value::Object(Default::default()))
        .await?;
    // qemu-storage-daemon's schema has no machine commands.
    let qsd = storage_daemon.unwrap_or_else(|| !has_command(&intro, "system_reset"));
    let v = &client.greeting().version.qemu;
    let version = format!("{}.{}.{}", v.major, v.minor, v.micro);
    let r = qapi_gen::conform::conform_manifest(&dir, &intro, Some(&version), qsd)
        .map_err(CliError::Io)?;
    if let Some(n) = &r.note {
        eprintln!("note: {n}");
    }
    print!("{}", r.report);
    print!("{}", r.todo());
    let unexplained = r.report.unexplained().count();
    if unexplained > 0 {
        return Err(CliError::Nonconforming(format!(
            "{unexplained} differences the bindings don't explain"
        )));
    }
    Ok(())
}

fn has_command(intro: &Value, name: &str) -> bool {
    intro.as_array().is_some_and(|a| {
        a.iter()
            .any(|e| e["meta-type"] == "command" && e["name"] == name)
    })
}
