//! The API check of `cargo xtask regen`: the public Rust API about to be
//! written against the committed one, and against the bindings of each
//! shorter prefix of `schema/manifest.txt` (what a user of the bindings
//! of QEMU A..N sees when N+1 is added). Breaks fail `regen` and
//! `regen --check` unless `schema/api-breaks.txt` accepts them, with a
//! reason.
//!
//! The API is read from the generated files by `qapi_gen::rust::api` (see
//! ARCHITECTURE.md for why not rustdoc JSON or cargo-semver-checks).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use qapi_gen::Schema;
use qapi_gen::diff::Diff;
use qapi_gen::rust::api::{Api, ApiChange, ChangeKind};
use qapi_gen::rust::{GeneratedFile, Options, generate_api};

/// The reviewed file of accepted breaks.
pub const ACCEPTED: &str = "schema/api-breaks.txt";

/// Breaks accepted in [`ACCEPTED`]: key → reason.
#[derive(Debug, Default)]
pub struct Accepted(BTreeMap<String, String>);

impl Accepted {
    /// Reads [`ACCEPTED`] (missing: nothing accepted). Each line: the
    /// item's key as the report prints it, ` | `, the reason; `#` starts
    /// a comment line. A line without a reason is an error.
    pub fn load(root: &Path) -> Result<Accepted, String> {
        let path = root.join(ACCEPTED);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Accepted::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Accepted::parse(&text).map_err(|e| format!("{ACCEPTED}: {e}"))
    }

    pub(crate) fn parse(text: &str) -> Result<Accepted, String> {
        let mut out = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(" | ") {
                Some((key, why)) if !why.trim().is_empty() => {
                    out.insert(key.trim().to_string(), why.trim().to_string());
                }
                _ => {
                    return Err(format!(
                        "line {}: `KEY | REASON` expected (a break is accepted with its reason)",
                        n + 1
                    ));
                }
            }
        }
        Ok(Accepted(out))
    }

    /// Whether the break of `key` is accepted.
    pub fn covers(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

/// What the API check found (see [`crate::api`]).
pub struct ApiCheck {
    /// Breaks accepted in `schema/api-breaks.txt`.
    pub accepted: Accepted,
    /// Per part (`QMP`, `the guest agent`): committed → fresh changes.
    pub since_committed: Vec<(&'static str, Vec<ApiChange>)>,
    /// Per part: each version step's changes.
    pub steps: Vec<(&'static str, Vec<Step>)>,
}

impl ApiCheck {
    /// Every break that is not accepted: (where, change).
    pub fn unaccepted(&self) -> Vec<(String, &ApiChange)> {
        let mut out = Vec::new();
        for (part, ch) in &self.since_committed {
            for c in unaccepted(ch, &self.accepted) {
                out.push((format!("{part}, committed → fresh"), c));
            }
        }
        for (part, steps) in &self.steps {
            for s in steps {
                let changes = s.changes.iter().map(|(c, _)| c);
                for c in unaccepted(changes, &self.accepted) {
                    out.push((format!("{part}, {}", s.title), c));
                }
            }
        }
        out
    }
}

/// The API changes of one version step of one part.
pub struct Step {
    /// `7.2.0 → 10.0.2`.
    pub title: String,
    /// What changed, broken first, each with its QAPI cause (if found).
    pub changes: Vec<(ApiChange, Vec<String>)>,
}

/// The API of generated files.
pub fn api_of(files: &[GeneratedFile]) -> Result<Api, String> {
    Api::of_files(files.iter().map(|f| (f.path.as_str(), f.contents.as_str())))
        .map_err(|e| e.to_string())
}

/// The API of the committed files in `dir` (none: empty).
pub fn committed(dir: &Path) -> Result<Api, String> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rs") {
                let text =
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                files.push((name.unwrap_or_default(), text));
            }
        }
    }
    Api::of_files(files.iter().map(|(p, t)| (p.as_str(), t.as_str()))).map_err(|e| e.to_string())
}

/// Each version step's API changes for one part: the bindings of the
/// first k versions against those of the first k+1. `each` holds every
/// version's schema (oldest first), `diffs` the schema changes of each
/// step (made already, for the versions page), `full` the API of all of
/// them (made already), `opts` how the part is generated.
pub fn steps(
    each: &[(String, Schema)],
    diffs: &[Diff],
    full: &Api,
    opts: &Options,
) -> Result<Vec<Step>, String> {
    let mut apis: Vec<Api> = Vec::new();
    for k in 1..each.len() {
        let m = Schema::merge(each[..k].to_vec()).map_err(|e| e.to_string())?;
        apis.push(generate_api(&m, opts).map_err(|e| e.to_string())?);
    }
    let mut out = Vec::new();
    for (k, d) in (1..each.len()).zip(diffs) {
        let old = &apis[k - 1];
        let new = apis.get(k).unwrap_or(full);
        let schema_changes: Vec<String> = d.changes.iter().map(|c| c.text.clone()).collect();
        let changes = Api::changes(old, new)
            .into_iter()
            .map(|c| {
                let cause = if c.kind == ChangeKind::Added {
                    Vec::new()
                } else {
                    causes(&c, old, new, &schema_changes)
                };
                (c, cause)
            })
            .collect();
        out.push(Step {
            title: format!("QEMU {} → {}", d.old, d.new),
            changes,
        });
    }
    Ok(out)
}

/// The schema changes (lines of `qapi-gen diff`) that name the QAPI
/// definition an API change belongs to; at most three.
fn causes(c: &ApiChange, old: &Api, new: &Api, schema: &[String]) -> Vec<String> {
    let rust = c.type_name();
    let qapi = new
        .qapi_names
        .get(rust)
        .or_else(|| old.qapi_names.get(rust))
        .map_or(rust, String::as_str);
    let needle = format!("`{qapi}`");
    schema
        .iter()
        .filter(|t| t.contains(&needle))
        .take(3)
        .cloned()
        .collect()
}

/// The breaks among `changes` that [`ACCEPTED`] does not accept.
pub fn unaccepted<'a>(
    changes: impl IntoIterator<Item = &'a ApiChange>,
    accepted: &Accepted,
) -> Vec<&'a ApiChange> {
    changes
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Broken && !accepted.covers(&c.key))
        .collect()
}

/// The report of committed → fresh changes of one part, as `regen`
/// prints it: counts, then every broken, deprecated and compatible item.
pub fn report(part: &str, changes: &[ApiChange], accepted: &Accepted) -> String {
    let mut out = String::new();
    if changes.is_empty() {
        return out;
    }
    let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
    let _ = writeln!(
        out,
        "Rust API of {part}: {} added, {} deprecated, {} compatible, {} broken",
        count(ChangeKind::Added),
        count(ChangeKind::Deprecated),
        count(ChangeKind::Compatible),
        count(ChangeKind::Broken),
    );
    for c in changes.iter().filter(|c| c.kind != ChangeKind::Added) {
        let mark = match (c.kind, accepted.covers(&c.key)) {
            (ChangeKind::Broken, true) => " (accepted)",
            _ => "",
        };
        let _ = writeln!(out, "  {}{mark}: {}", c.kind.word(), c.to_markdown());
    }
    out
}

/// The "Rust API" section of one version step on the versions page.
pub fn markdown(step: &Step, accepted: &Accepted) -> String {
    let mut out = String::new();
    let count = |k: ChangeKind| step.changes.iter().filter(|(c, _)| c.kind == k).count();
    let _ = write!(
        out,
        "### Rust API: {} added, {} deprecated, {} compatible, {} broken\n\n",
        count(ChangeKind::Added),
        count(ChangeKind::Deprecated),
        count(ChangeKind::Compatible),
        count(ChangeKind::Broken),
    );
    for kind in [
        ChangeKind::Broken,
        ChangeKind::Deprecated,
        ChangeKind::Compatible,
    ] {
        for (c, cause) in step.changes.iter().filter(|(c, _)| c.kind == kind) {
            let _ = write!(out, "- {}: {}", kind.word(), c.to_markdown());
            if kind == ChangeKind::Broken {
                match accepted.0.get(&c.key) {
                    Some(why) => {
                        let _ = write!(out, " (accepted: {why})");
                    }
                    None => out.push_str(" (**not accepted**)"),
                }
            }
            if !cause.is_empty() {
                let _ = write!(out, "; schema: {}", cause.join("; "));
            }
            out.push('\n');
        }
    }
    let added: Vec<&str> = step
        .changes
        .iter()
        .filter(|(c, _)| c.kind == ChangeKind::Added && !c.key.contains([':', '.', ' ']))
        .map(|(c, _)| c.key.as_str())
        .collect();
    if !added.is_empty() {
        let _ = writeln!(out, "- added types: {}", added.join(", "));
    }
    if out.ends_with("- ") || out.lines().count() > 2 {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acceptance_needs_a_reason() {
        assert!(Accepted::parse("X.y | QEMU 11 widened it\n# comment\n").is_ok());
        let e = Accepted::parse("X.y\n").expect_err("no reason");
        assert!(e.contains("line 1"), "{e}");
        assert!(Accepted::parse("X.y |  \n").is_err());
    }
}
