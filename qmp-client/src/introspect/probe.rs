//! Capability questions: libvirt's query strings (`virQEMUQAPISchemaPathGet`),
//! answered from an [`Introspection`], and [`Probe`], a typed way to
//! write one.

use std::fmt;

use qmp_types::rt::TypeInfo;
use qmp_types::{Command, Event, Qmp};

use super::{Introspection, Ty};

/// A capability question about a QEMU's schema, as a path from a command
/// or an event: libvirt's query strings, built from the bindings' types.
///
/// Its text (`Display`, [`Probe::parse`]) is libvirt's syntax, so the
/// strings of `virQEMUCapsQMPSchemaQueries` work as they are:
///
/// | step | text | asks |
/// |---|---|---|
/// | start | `blockdev-add` | the command or event exists |
/// | [`Probe::args`] | `blockdev-add/arg-type` | its arguments (an event's data) |
/// | [`Probe::returns`] | `query-status/ret-type` | its reply |
/// | [`Probe::member`] | `.../name` | a member (arrays are looked through) |
/// | [`Probe::optional`] | `.../*name` | a member, which must be optional |
/// | [`Probe::branch`] | `.../+file` | a union's branch |
/// | [`Probe::value`] | `.../^io_uring` | an enum value (last, or before a feature) |
/// | [`Probe::json_type`] | `.../!string` | a built-in's JSON type (last) |
/// | [`Probe::feature`] | `.../$deprecated` | a feature of what the path reached (last) |
///
/// ```
/// use qmp_client::introspect::Probe;
/// use qmp_types::{BlockdevAdd, Migrate, QueryMigrationthreads};
///
/// let aio = Probe::args::<BlockdevAdd>().branch("file").member("aio").value("io_uring");
/// assert_eq!(aio.to_string(), "blockdev-add/arg-type/+file/aio/^io_uring");
/// let detach = Probe::args::<Migrate>().member("detach");
/// assert_eq!(detach.to_string(), "migrate/arg-type/detach");
/// // Paths are checked against the bindings' schema (some covered QEMU has it):
/// assert!(aio.in_bindings().is_ok());
/// assert!(Probe::args::<Migrate>().member("detatch").in_bindings().is_err());
/// assert_eq!(Probe::command::<QueryMigrationthreads>().to_string(), "query-migrationthreads");
/// ```
///
/// Ask a connected QEMU with [`crate::Client::probe`] (or
/// [`Introspection::probe`]).
///
/// libvirt's capability strings (`virQEMUCapsQMPSchemaQueries`) and
/// their typed equivalents; a unit test checks each path against the
/// bindings and asks real QEMU 10.0.2's and 11.1.3's introspections:
///
/// | libvirt | typed |
/// |---|---|
/// | `blockdev-add/arg-type/+file/aio/^io_uring` | `Probe::args::<BlockdevAdd>().branch("file").member("aio").value("io_uring")` |
/// | `screendump/arg-type/format/^png` | `Probe::args::<Screendump>().member("format").value("png")` |
/// | `chardev-add/arg-type/backend/+socket/data/reconnect-ms` | `Probe::args::<ChardevAdd>().member("backend").branch("socket").member("data").member("reconnect-ms")` |
/// | `set-action/arg-type/panic/^shutdown` | `Probe::args::<SetAction>().member("panic").value("shutdown")` |
/// | `query-display-options/ret-type/+egl-headless/rendernode` | `Probe::returns::<QueryDisplayOptions>().branch("egl-headless").member("rendernode")` |
/// | `device_add/$json-cli-hotplug` | `Probe::command::<DeviceAdd>().feature("json-cli-hotplug")` |
/// | `object-add/arg-type/+iothread/poll-weight` (11.1) | `Probe::args::<ObjectAdd>().branch("iothread").member("poll-weight")` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    start: String,
    /// The command's `arg-type`, `ret-type`, or neither.
    part: Option<&'static str>,
    /// The QAPI argument type in the bindings, for [`Probe::in_bindings`].
    bindings_arg_type: Option<&'static str>,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Member(String),
    Optional(String),
    Branch(String),
    Value(String),
    JsonType(String),
    Feature(String),
}

/// A query string that is not one ([`Probe::parse`], [`Introspection::query`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query `{query}`: {why}")]
pub struct ProbeError {
    query: String,
    why: String,
}

impl Probe {
    /// Command `C` itself (follow with [`Probe::feature`], or ask as it is).
    pub fn command<C: Command<Protocol = Qmp>>() -> Probe {
        Probe {
            start: C::NAME.to_string(),
            part: None,
            bindings_arg_type: C::META.arg_type,
            steps: Vec::new(),
        }
    }

    /// Command `C`'s arguments.
    pub fn args<C: Command<Protocol = Qmp>>() -> Probe {
        Probe {
            part: Some("arg-type"),
            ..Probe::command::<C>()
        }
    }

    /// Command `C`'s reply.
    pub fn returns<C: Command<Protocol = Qmp>>() -> Probe {
        Probe {
            part: Some("ret-type"),
            bindings_arg_type: None,
            ..Probe::command::<C>()
        }
    }

    /// Event `E`'s data.
    pub fn event<E: Event>() -> Probe {
        Probe {
            start: E::NAME.to_string(),
            part: Some("arg-type"),
            bindings_arg_type: None,
            steps: Vec::new(),
        }
    }

    fn step(mut self, s: Step) -> Probe {
        self.steps.push(s);
        self
    }

    /// A member (wire name) of the object reached so far.
    pub fn member(self, name: &str) -> Probe {
        self.step(Step::Member(name.into()))
    }

    /// An optional member (wire name) of the object reached so far.
    pub fn optional(self, name: &str) -> Probe {
        self.step(Step::Optional(name.into()))
    }

    /// A branch (discriminator value) of the union reached so far.
    pub fn branch(self, value: &str) -> Probe {
        self.step(Step::Branch(value.into()))
    }

    /// A value of the enum reached so far.
    pub fn value(self, value: &str) -> Probe {
        self.step(Step::Value(value.into()))
    }

    /// The JSON type (`string`, `int`, `number`, `boolean`, `null`,
    /// `value`) of the built-in type reached so far.
    pub fn json_type(self, json_type: &str) -> Probe {
        self.step(Step::JsonType(json_type.into()))
    }

    /// A feature (`deprecated`, `unstable`, ...) of what was reached so
    /// far: the command or event, a type, or an enum value.
    pub fn feature(self, name: &str) -> Probe {
        self.step(Step::Feature(name.into()))
    }

    /// Reads libvirt's query syntax (see the table above).
    pub fn parse(query: &str) -> Result<Probe, ProbeError> {
        let err = |why: &str| ProbeError {
            query: query.to_string(),
            why: why.to_string(),
        };
        let mut parts = query.split('/');
        let start = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err("empty"))?;
        let mut p = Probe {
            start: start.to_string(),
            part: None,
            bindings_arg_type: None,
            steps: Vec::new(),
        };
        let mut rest = parts.peekable();
        match rest.peek().copied() {
            Some("arg-type") => p.part = Some("arg-type"),
            Some("ret-type") => p.part = Some("ret-type"),
            _ => {}
        }
        if p.part.is_some() {
            rest.next();
        }
        for c in rest {
            let (m, name) = c.split_at(c.chars().next().map_or(0, char::len_utf8));
            let step = match m {
                "+" => Step::Branch(name.into()),
                "*" => Step::Optional(name.into()),
                "^" => Step::Value(name.into()),
                "!" => Step::JsonType(name.into()),
                "$" => Step::Feature(name.into()),
                " " => Step::Member(name.into()),
                "" => return Err(err("an empty component")),
                _ => Step::Member(c.into()),
            };
            p.steps.push(step);
        }
        Ok(p)
    }

    /// Checks the path against the bindings' schema (every covered QEMU
    /// merged): each member, branch and enum value exists in some covered
    /// version. For a command's arguments only; a reply's or an event's
    /// path is checked as far as its name.
    pub fn in_bindings(&self) -> Result<(), ProbeError> {
        let err = |why: String| ProbeError {
            query: self.to_string(),
            why,
        };
        let known = qmp_types::COMMANDS.iter().any(|c| c.name == self.start)
            || qmp_types::with_event(&self.start, NameOnly).is_some();
        if !known {
            return Err(err(format!(
                "the bindings have no command or event `{}`",
                self.start
            )));
        }
        if self.part != Some("arg-type") {
            return Ok(());
        }
        let types: std::collections::HashMap<&str, &TypeInfo> =
            qmp_types::TYPES.iter().map(|(n, t)| (*n, t)).collect();
        let mut cur = self.bindings_arg_type;
        for step in &self.steps {
            // Arrays are looked through, as libvirt does.
            while let Some(TypeInfo::Array { element }) = cur.and_then(|t| types.get(t)).copied() {
                cur = Some(element);
            }
            let info = cur.and_then(|t| types.get(t)).copied();
            cur = match (step, info) {
                (
                    Step::Member(n) | Step::Optional(n),
                    Some(TypeInfo::Object {
                        members,
                        tag,
                        branches,
                    }),
                ) => {
                    let direct = members.iter().find(|m| m.name == n);
                    let in_branch = || {
                        tag.and(branches.iter().find_map(|(_, b)| match types.get(b) {
                            Some(TypeInfo::Object { members, .. }) => {
                                members.iter().find(|m| m.name == n)
                            }
                            _ => None,
                        }))
                    };
                    match direct.or_else(in_branch) {
                        Some(m) => Some(m.type_name),
                        None => return Err(err(format!("no member `{n}`"))),
                    }
                }
                (Step::Branch(v), Some(TypeInfo::Object { branches, .. })) => {
                    match branches.iter().find(|(b, _)| b == v) {
                        Some((_, t)) => Some(*t),
                        None => return Err(err(format!("no branch `{v}`"))),
                    }
                }
                (Step::Value(v), Some(TypeInfo::Enum { values })) => {
                    if !values.contains(&v.as_str()) {
                        return Err(err(format!("no enum value `{v}`")));
                    }
                    None
                }
                (Step::Feature(_) | Step::JsonType(_), _) => None,
                (s, _) => return Err(err(format!("`{s}` does not apply there"))),
            };
        }
        Ok(())
    }
}

/// An event visitor that only says the name is known.
struct NameOnly;

impl qmp_types::rt::EventVisitor for NameOnly {
    type Output = ();
    fn visit<E>(self)
    where
        E: Event + serde::Serialize + Send + Sync + 'static,
    {
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, n) = match self {
            Step::Member(n) => {
                // A name that starts with a symbol is written after a space.
                let sym = n.chars().next().is_some_and(|c| !c.is_ascii_alphabetic());
                return if sym {
                    write!(f, " {n}")
                } else {
                    f.write_str(n)
                };
            }
            Step::Optional(n) => ('*', n),
            Step::Branch(n) => ('+', n),
            Step::Value(n) => ('^', n),
            Step::JsonType(n) => ('!', n),
            Step::Feature(n) => ('$', n),
        };
        write!(f, "{m}{n}")
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.start)?;
        if let Some(p) = self.part {
            write!(f, "/{p}")?;
        }
        for s in &self.steps {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

/// Where a query has got to.
#[derive(Clone, Copy)]
enum At<'s> {
    Entry(&'s super::Entry),
    Type(&'s str),
}

/// Answers `query` (libvirt's syntax) from `schema`.
pub(super) fn run(schema: &Introspection, query: &str) -> Result<bool, ProbeError> {
    Ok(answer(schema, &Probe::parse(query)?))
}

/// Whether `schema` has what `p` asks.
pub(super) fn answer(schema: &Introspection, p: &Probe) -> bool {
    let Some(entry) = schema
        .commands
        .get(&p.start)
        .or_else(|| schema.events.get(&p.start))
    else {
        return false;
    };
    let at = match p.part {
        Some("arg-type") => At::Type(&entry.arg_type),
        Some(_) => match &entry.ret_type {
            Some(t) => At::Type(t),
            None => return false,
        },
        None => At::Entry(entry),
    };
    walk(schema, at, &p.steps, 0)
}

/// Whether `steps` lead somewhere from `at` (libvirt's traversal).
fn walk(schema: &Introspection, at: At<'_>, steps: &[Step], depth: usize) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return match at {
            At::Entry(_) => true,
            At::Type(t) => schema.types.contains_key(t),
        };
    };
    if depth > 1000 {
        return false;
    }
    let has = |features: &[String], f: &str| rest.is_empty() && features.iter().any(|x| x == f);
    let ty = match at {
        At::Entry(e) => return matches!(step, Step::Feature(f) if has(&e.features, f)),
        At::Type(t) => t,
    };
    let Some((ty, features)) = schema.types.get(ty) else {
        return false;
    };
    match (ty, step) {
        (Ty::Array(e), _) => walk(schema, At::Type(e), steps, depth + 1),
        (Ty::Alternate(branches), _) => branches
            .iter()
            .any(|b| walk(schema, At::Type(b), steps, depth + 1)),
        (_, Step::Feature(f)) => has(features, f),
        (Ty::Object { members, .. }, Step::Member(n) | Step::Optional(n)) => {
            members.iter().any(|m| {
                m.name == *n
                    && (m.optional || !matches!(step, Step::Optional(_)))
                    && walk(schema, At::Type(&m.ty), rest, depth + 1)
            })
        }
        (Ty::Object { variants, .. }, Step::Branch(v)) => variants
            .iter()
            .any(|(c, t)| c == v && walk(schema, At::Type(t), rest, depth + 1)),
        (Ty::Enum(values), Step::Value(v)) => {
            let Some((_, vf)) = values.iter().find(|(x, _)| x == v) else {
                return false;
            };
            match rest {
                [] => true,
                [Step::Feature(f)] => vf.iter().any(|x| x == f),
                _ => false,
            }
        }
        (Ty::Builtin(j), Step::JsonType(want)) => rest.is_empty() && j.as_str() == want,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmp_types::*;

    /// The doc's table: libvirt's strings, built typed, found in the
    /// bindings, and answered by real QEMUs' introspections.
    #[test]
    fn libvirt_s_queries_typed() {
        let probes = [
            (
                Probe::args::<BlockdevAdd>()
                    .branch("file")
                    .member("aio")
                    .value("io_uring"),
                "blockdev-add/arg-type/+file/aio/^io_uring",
                [true, true],
            ),
            (
                Probe::args::<Screendump>().member("format").value("png"),
                "screendump/arg-type/format/^png",
                [true, true],
            ),
            (
                Probe::args::<ChardevAdd>()
                    .member("backend")
                    .branch("socket")
                    .member("data")
                    .member("reconnect-ms"),
                "chardev-add/arg-type/backend/+socket/data/reconnect-ms",
                [true, true],
            ),
            (
                Probe::args::<SetAction>().member("panic").value("shutdown"),
                "set-action/arg-type/panic/^shutdown",
                [true, true],
            ),
            (
                Probe::returns::<QueryDisplayOptions>()
                    .branch("egl-headless")
                    .member("rendernode"),
                "query-display-options/ret-type/+egl-headless/rendernode",
                [true, true],
            ),
            (
                Probe::command::<DeviceAdd>().feature("json-cli-hotplug"),
                "device_add/$json-cli-hotplug",
                [true, true],
            ),
            (
                Probe::args::<ObjectAdd>()
                    .branch("iothread")
                    .member("poll-weight"),
                "object-add/arg-type/+iothread/poll-weight",
                [false, true],
            ),
        ];
        let schema = |f: &str| {
            let path = format!(
                "{}/tests/fixtures/introspection/{f}",
                env!("CARGO_MANIFEST_DIR")
            );
            Introspection::from_json(&std::fs::read(path).expect("fixture"), f).expect("schema")
        };
        let qemus = [schema("system-10.0.2.json"), schema("system-11.1.3.json")];
        for (p, text, has) in probes {
            assert_eq!(p.to_string(), text);
            let bound = p.in_bindings();
            // 11.1's own addition is not in the bindings.
            assert_eq!(bound.is_ok(), has[0], "{text}: {bound:?}");
            for (q, want) in qemus.iter().zip(has) {
                assert_eq!(q.probe(&p), want, "{text} in {}", q.label());
                assert_eq!(q.query(text), Ok(want), "{text} in {}", q.label());
            }
        }
        // Wrong turns answer `false`, not an error.
        let q = &qemus[0];
        assert_eq!(
            q.query("blockdev-add/arg-type/+file/aio/^no-such"),
            Ok(false)
        );
        assert_eq!(q.query("no-such-command"), Ok(false));
        assert_eq!(q.query("query-status/ret-type/status/^running"), Ok(true));
        assert_eq!(q.query("query-status/arg-type/x"), Ok(false));
        assert_eq!(q.query("nbd-server-start/arg-type/*tls-creds"), Ok(true));
        assert_eq!(
            q.query("nbd-server-start/arg-type/*addr"),
            Ok(false),
            "required"
        );
        assert_eq!(q.query("query-cpus-fast/$deprecated"), Ok(false));
        assert!(q.query("").is_err());
    }

    #[test]
    fn parse_and_display_round_trip() {
        for q in [
            "blockdev-add/arg-type/+file/aio/^io_uring",
            "query-display-options/ret-type/+egl-headless/rendernode",
            "migrate-set-parameters/arg-type/*block-bitmap-mapping/bitmaps/transform",
            "object-add/arg-type/+memory-backend-file/$unstable",
            "nbd-server-start/arg-type/tls-creds/!string",
            "blockdev-add/arg-type/+file/aio/^io_uring/$deprecated",
            "query-migrationthreads",
        ] {
            assert_eq!(Probe::parse(q).map(|p| p.to_string()), Ok(q.to_string()));
        }
        assert!(Probe::parse("").is_err());
        assert!(Probe::parse("a//b").is_err());
    }
}
