//! `schema/manifest.txt`: the QEMU releases whose schemas a generated
//! crate covers, and loading them into one merged model.
//!
//! The manifest lists one version per line, oldest first (`#` starts a
//! comment); each version's schemas sit in a folder named after it beside
//! the manifest (`7.2.0/qapi/qapi-schema.json`, `7.2.0/qga/..`,
//! `7.2.0/storage-daemon/qapi/..`).

use std::path::{Path, PathBuf};

use crate::{DocRules, Error, Result, Schema};

/// Which of a QEMU release's schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// `qapi/qapi-schema.json`: QMP of the system emulators.
    Qmp,
    /// `qga/qapi-schema.json`: the guest agent.
    Qga,
    /// `storage-daemon/qapi/qapi-schema.json`: `qemu-storage-daemon`'s QMP.
    StorageDaemon,
}

impl Part {
    /// The schema's path inside a version's folder.
    pub fn path(self) -> &'static str {
        match self {
            Part::Qmp => "qapi/qapi-schema.json",
            Part::Qga => "qga/qapi-schema.json",
            Part::StorageDaemon => "storage-daemon/qapi/qapi-schema.json",
        }
    }
}

/// The manifest: versions, oldest first, and where their schemas are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The folder holding the manifest and the versions' folders.
    pub dir: PathBuf,
    /// The versions, oldest first.
    pub versions: Vec<String>,
}

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.txt";

impl Manifest {
    /// Reads `dir/manifest.txt`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Manifest> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Manifest {
            path: path.clone(),
            message: format!("can't read it: {e}"),
        })?;
        Manifest::parse(dir, &text).map_err(|message| Error::Manifest { path, message })
    }

    /// Parses a manifest's text (versions of the form `X.Y.Z`, oldest
    /// first, each once).
    pub fn parse(dir: PathBuf, text: &str) -> std::result::Result<Manifest, String> {
        let mut versions: Vec<String> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some(v) = parse_version(line) else {
                return Err(format!("line {}: '{line}' is not a version (X.Y.Z)", i + 1));
            };
            if let Some(prev) = versions.last().and_then(|p| parse_version(p))
                && prev >= v
            {
                return Err(format!(
                    "line {}: {line} is not newer than the line before; list versions oldest first, each once",
                    i + 1
                ));
            }
            versions.push(line.to_string());
        }
        if versions.is_empty() {
            return Err("no version listed".into());
        }
        if versions.len() > 64 {
            return Err("more than 64 versions".into());
        }
        Ok(Manifest { dir, versions })
    }

    /// The newest version.
    pub fn newest(&self) -> &str {
        self.versions.last().map(String::as_str).unwrap_or("")
    }

    /// Where `version`'s `part` schema is.
    pub fn schema_path(&self, version: &str, part: Part) -> PathBuf {
        self.dir.join(version).join(part.path())
    }

    /// Loads `part` of every version: (version, schema), oldest first.
    pub fn load_each(&self, part: Part) -> Result<Vec<(String, Schema)>> {
        self.versions
            .iter()
            .map(|v| Ok((v.clone(), load_any(self.schema_path(v, part))?)))
            .collect()
    }

    /// Loads `part` of every version and merges them (see
    /// [`Schema::merge`]).
    pub fn load_merged(&self, part: Part) -> Result<Schema> {
        Schema::merge(self.load_each(part)?)
    }
}

/// Loads a schema by QEMU 10's doc-comment rules or, when those refuse
/// it, by the rules of QEMU before 9.1 (7.2's schema needs them).
pub fn load_any(path: impl AsRef<Path>) -> Result<Schema> {
    let path = path.as_ref();
    Schema::load(path)
        .or_else(|strict| Schema::load_with_rules(path, DocRules::Legacy).map_err(|_| strict))
}

/// `X.Y.Z` (or `X.Y`) as numbers.
pub fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    let c = match it.next() {
        Some(c) => c.parse().ok()?,
        None => 0,
    };
    if it.next().is_some() {
        return None;
    }
    Some((a, b, c))
}
