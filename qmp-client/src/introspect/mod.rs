//! The connected QEMU's own schema: its `query-qmp-schema` reply indexed
//! ([`Introspection`]), what it answers to capability questions
//! ([`Probe`], libvirt's query strings), and commands checked against it
//! before they are sent ([`Introspection::check_command`]).
//!
//! Why not the version number: distributions backport features under an
//! old version (a `9.1.0` build with a `10.0` argument), and a QEMU newer
//! than the bindings has what they don't know and lacks what they do.
//! The schema QEMU reports is what its input visitor accepts, so a check
//! against it refuses exactly what that QEMU would refuse.

pub(crate) mod cache;
mod probe;
mod raw;

use std::collections::HashMap;

use qmp_types::{JSONType, SchemaInfo, SchemaInfoBranch};
use serde_json::{Map, Value};

use crate::check::{self, Member, Shape, Shapes};

pub use crate::check::Refusal;
pub use probe::{Probe, ProbeError};

/// A type of the introspected schema.
#[derive(Debug, Clone)]
enum Ty {
    /// A built-in: its JSON type.
    Builtin(JSONType),
    /// An enum: its values, each with its features.
    Enum(Vec<(String, Vec<String>)>),
    /// An array of this element type.
    Array(String),
    /// An object: members, a union's discriminator and branches.
    Object {
        members: Vec<Field>,
        tag: Option<String>,
        variants: Vec<(String, String)>,
    },
    /// An alternate: its branch types.
    Alternate(Vec<String>),
}

/// A type of an [`Introspection`], as [`Introspection::type_view`] shows
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeView<'a> {
    /// A built-in: its JSON type (`string`, `int`, `number`, `boolean`,
    /// `null`, `value`).
    Builtin(&'a str),
    /// An enum's values.
    Enum(Vec<&'a str>),
    /// An array of this element type.
    Array(&'a str),
    /// A struct or union.
    Object {
        /// Its members: name, type, optional.
        members: Vec<(&'a str, &'a str, bool)>,
        /// A union's discriminator.
        tag: Option<&'a str>,
        /// A union's branches: discriminator value and type.
        branches: Vec<(&'a str, &'a str)>,
    },
    /// An alternate's branch types.
    Alternate(Vec<&'a str>),
}

/// A member of an object type.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    ty: String,
    optional: bool,
}

/// A command or an event of the introspected schema.
#[derive(Debug, Clone)]
struct Entry {
    arg_type: String,
    /// `None` for an event.
    ret_type: Option<String>,
    allow_oob: bool,
    features: Vec<String>,
}

/// A QEMU's schema as it reports it (`query-qmp-schema`), indexed for
/// the checks a client makes before sending and for capability
/// questions.
///
/// It describes what that QEMU's input visitor accepts: every command,
/// event, member (with its JSON type), enum value, union branch and
/// feature (`deprecated`, `unstable`, ...). Type names other than
/// commands' and events' are QEMU's opaque ones (`"142"`), so questions
/// start at a command or an event ([`Probe`], [`Introspection::query`]).
///
/// Get it from a client ([`crate::Client::schema`]), or build it from a
/// reply ([`Introspection::from_json`]), e.g. for a test double
/// ([`crate::testing::MockQemu::with_introspection`], feature `testing`).
#[derive(Debug, Clone)]
pub struct Introspection {
    commands: HashMap<String, Entry>,
    events: HashMap<String, Entry>,
    types: HashMap<String, (Ty, Vec<String>)>,
    /// The QEMU it came from, for messages (`QEMU 11.1.3`).
    label: String,
}

/// Why an introspection could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a query-qmp-schema reply: {0}")]
pub struct IntrospectionError(String);

/// Commands that take undeclared arguments beside their own (`'gen':
/// false`): QEMU's introspection does not say so; the bindings know.
fn is_open(command: &str) -> bool {
    qmp_types::OPEN_COMMANDS.contains(&command)
}

impl Introspection {
    /// Indexes a decoded `query-qmp-schema` reply; `label` names the QEMU
    /// it came from in messages (`QEMU 11.1.3 (connected)`).
    pub fn from_reply(reply: Vec<SchemaInfo>, label: impl Into<String>) -> Introspection {
        let mut commands = HashMap::new();
        let mut events = HashMap::new();
        let mut types = HashMap::new();
        for info in reply {
            let features = info.features.unwrap_or_default();
            let ty = match info.branch {
                SchemaInfoBranch::Command(c) => {
                    commands.insert(
                        info.name,
                        Entry {
                            arg_type: c.arg_type,
                            ret_type: Some(c.ret_type),
                            allow_oob: c.allow_oob.unwrap_or(false),
                            features,
                        },
                    );
                    continue;
                }
                SchemaInfoBranch::Event(e) => {
                    events.insert(
                        info.name,
                        Entry {
                            arg_type: e.arg_type,
                            ret_type: None,
                            allow_oob: false,
                            features,
                        },
                    );
                    continue;
                }
                SchemaInfoBranch::Builtin(b) => Ty::Builtin(b.json_type),
                // QEMU before 6.2 sends `values` alone.
                #[allow(deprecated)]
                SchemaInfoBranch::Enum(e) => Ty::Enum(if e.members.is_empty() {
                    e.values.into_iter().map(|v| (v, Vec::new())).collect()
                } else {
                    e.members
                        .into_iter()
                        .map(|m| (m.name, m.features.unwrap_or_default()))
                        .collect()
                }),
                SchemaInfoBranch::Array(a) => Ty::Array(a.element_type),
                SchemaInfoBranch::Object(o) => Ty::Object {
                    members: o
                        .members
                        .into_iter()
                        .map(|m| Field {
                            name: m.name,
                            ty: m.r#type,
                            optional: m.default.is_some(),
                        })
                        .collect(),
                    tag: o.tag,
                    variants: o
                        .variants
                        .unwrap_or_default()
                        .into_iter()
                        .map(|v| (v.case, v.r#type))
                        .collect(),
                },
                SchemaInfoBranch::Alternate(a) => {
                    Ty::Alternate(a.members.into_iter().map(|m| m.r#type).collect())
                }
                // A meta-type newer than the bindings: nothing to check.
                _ => continue,
            };
            types.insert(info.name, (ty, features));
        }
        Introspection {
            commands,
            events,
            types,
            label: label.into(),
        }
    }

    /// Reads a `query-qmp-schema` reply as JSON: the array itself, or a
    /// whole reply (`{"return": [...]}`). Only what the index needs is
    /// read (about 1 ms for QEMU 10's 236 KB, BENCHMARKS.md); other
    /// members are skipped.
    pub fn from_json(
        json: &[u8],
        label: impl Into<String>,
    ) -> Result<Introspection, IntrospectionError> {
        let list = raw::parse(json).map_err(IntrospectionError)?;
        if list.is_empty() {
            return Err(IntrospectionError("an empty schema".into()));
        }
        let (commands, events, types) = raw::index(list);
        Ok(Introspection {
            commands,
            events,
            types,
            label: label.into(),
        })
    }

    /// [`Introspection::from_json`] from a parsed value.
    pub fn from_value(
        value: Value,
        label: impl Into<String>,
    ) -> Result<Introspection, IntrospectionError> {
        let text = serde_json::to_vec(&value).map_err(|e| IntrospectionError(e.to_string()))?;
        Introspection::from_json(&text, label)
    }

    /// The QEMU this schema came from, as messages name it.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether the QEMU has command `name` (wire name).
    pub fn has_command(&self, name: &str) -> bool {
        self.commands.contains_key(name)
    }

    /// Whether the QEMU has event `name` (wire name).
    pub fn has_event(&self, name: &str) -> bool {
        self.events.contains_key(name)
    }

    /// Whether the QEMU has command `C`.
    pub fn has<C: qmp_types::Command<Protocol = qmp_types::Qmp>>(&self) -> bool {
        self.has_command(C::NAME)
    }

    /// Whether the QEMU has event `E`.
    pub fn has_event_type<E: qmp_types::Event>(&self) -> bool {
        self.has_event(E::NAME)
    }

    /// Whether command `name` may be sent out of band (`allow-oob`).
    pub fn allows_oob(&self, name: &str) -> bool {
        self.commands.get(name).is_some_and(|c| c.allow_oob)
    }

    /// The features of command or event `name` (`deprecated`, ...).
    pub fn features_of(&self, name: &str) -> Option<&[String]> {
        self.commands
            .get(name)
            .or_else(|| self.events.get(name))
            .map(|e| e.features.as_slice())
    }

    /// Every command's name, in no particular order.
    pub fn commands(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }

    /// Every event's name, in no particular order.
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.events.keys().map(String::as_str)
    }

    /// Answers a libvirt-style query string (`blockdev-add/arg-type/+file/aio/^io_uring`):
    /// see [`Probe`] for the syntax and a typed way to build one.
    pub fn query(&self, query: &str) -> Result<bool, ProbeError> {
        probe::run(self, query)
    }

    /// Whether the QEMU has what `probe` asks for.
    pub fn probe(&self, probe: &Probe) -> bool {
        probe::answer(self, probe)
    }

    /// Checks command `name` with `args` as this QEMU's input visitor
    /// would: `Err` says why it would refuse it (its words are the
    /// refusal's `Display`), `Err(None)` when it has no such command.
    pub fn check_command(
        &self,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<(), Option<Refusal>> {
        let Some(entry) = self.commands.get(name) else {
            return Err(None);
        };
        check::check_args(self, self.arg_type_of(entry), is_open(name), args).map_err(Some)
    }

    /// Command `name`'s argument type (`None`: no such command, or it
    /// takes no arguments), for [`Introspection::type_view`].
    pub fn arg_type(&self, name: &str) -> Option<&str> {
        self.arg_type_of(self.commands.get(name)?)
    }

    /// Every type's name (QEMU's opaque names; built-ins by their own).
    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// What type `name` is, for tools that walk it (completion).
    pub fn type_view(&self, name: &str) -> Option<TypeView<'_>> {
        Some(match self.ty(name)? {
            Ty::Builtin(j) => TypeView::Builtin(j.as_str()),
            Ty::Enum(values) => TypeView::Enum(values.iter().map(|(v, _)| v.as_str()).collect()),
            Ty::Array(e) => TypeView::Array(e),
            Ty::Object {
                members,
                tag,
                variants,
            } => TypeView::Object {
                members: members
                    .iter()
                    .map(|m| (m.name.as_str(), m.ty.as_str(), m.optional))
                    .collect(),
                tag: tag.as_deref(),
                branches: variants
                    .iter()
                    .map(|(c, t)| (c.as_str(), t.as_str()))
                    .collect(),
            },
            Ty::Alternate(b) => TypeView::Alternate(b.iter().map(String::as_str).collect()),
        })
    }

    /// A command's argument type, `None` when it takes none (QEMU reports
    /// an empty object type then).
    fn arg_type_of<'s>(&'s self, entry: &'s Entry) -> Option<&'s str> {
        match self.types.get(&entry.arg_type) {
            Some((
                Ty::Object {
                    members, variants, ..
                },
                _,
            )) if members.is_empty() && variants.is_empty() => None,
            _ => Some(entry.arg_type.as_str()),
        }
    }

    /// Whether a type reachable from command `source`'s reply (or event
    /// `source`'s data) has `key` as a member, an enum value or a union
    /// branch (`kind`): what a reply's or event's member, value or branch
    /// that the bindings don't know is, for this QEMU. `false`: this QEMU
    /// does not declare it there (a QEMU bug, or a corrupt message).
    pub fn reaches(&self, source: &str, kind: qmp_types::rt::UnknownKind, key: &str) -> bool {
        use qmp_types::rt::UnknownKind;
        let start = match (self.commands.get(source), self.events.get(source)) {
            (Some(c), _) => c.ret_type.as_deref(),
            (None, Some(e)) => Some(e.arg_type.as_str()),
            (None, None) => None,
        };
        let mut todo: Vec<&str> = start.into_iter().collect();
        let mut seen = std::collections::HashSet::new();
        while let Some(t) = todo.pop() {
            if !seen.insert(t) {
                continue;
            }
            match self.ty(t) {
                Some(Ty::Object {
                    members, variants, ..
                }) => {
                    let found = match kind {
                        UnknownKind::Branch => variants.iter().any(|(c, _)| c == key),
                        UnknownKind::EnumValue => false,
                        _ => members.iter().any(|m| m.name == key),
                    };
                    if found {
                        return true;
                    }
                    todo.extend(members.iter().map(|m| m.ty.as_str()));
                    todo.extend(variants.iter().map(|(_, t)| t.as_str()));
                }
                Some(Ty::Enum(values))
                    if kind == UnknownKind::EnumValue && values.iter().any(|(v, _)| v == key) =>
                {
                    return true;
                }
                Some(Ty::Array(e)) => todo.push(e),
                Some(Ty::Alternate(b)) => todo.extend(b.iter().map(String::as_str)),
                _ => {}
            }
        }
        false
    }

    fn ty(&self, name: &str) -> Option<&Ty> {
        self.types.get(name).map(|(t, _)| t)
    }
}

impl Shapes for Introspection {
    fn shape(&self, ty: &str) -> Shape<'_> {
        match self.ty(ty) {
            Some(Ty::Builtin(j)) => match j {
                JSONType::String => Shape::Scalar("string"),
                JSONType::Number => Shape::Scalar("number"),
                JSONType::Boolean => Shape::Scalar("boolean"),
                JSONType::Null => Shape::Scalar("null"),
                JSONType::Int => Shape::Int(i64::MIN.into(), u64::MAX.into(), "integer"),
                _ => Shape::Any,
            },
            Some(Ty::Enum(_)) => Shape::Enum,
            Some(Ty::Array(e)) => Shape::Array(e),
            Some(Ty::Object { .. }) => Shape::Object,
            Some(Ty::Alternate(_)) => Shape::Alternate,
            None => Shape::Any,
        }
    }

    fn enum_has(&self, ty: &str, value: &str) -> bool {
        matches!(self.ty(ty), Some(Ty::Enum(values)) if values.iter().any(|(v, _)| v == value))
    }

    fn members<'s>(
        &'s self,
        ty: &str,
        each: &mut dyn FnMut(Member<'s>) -> Result<(), Refusal>,
    ) -> Result<(), Refusal> {
        if let Some(Ty::Object { members, .. }) = self.ty(ty) {
            for m in members {
                each(Member {
                    name: &m.name,
                    ty: &m.ty,
                    optional: m.optional,
                })?;
            }
        }
        Ok(())
    }

    fn tag(&self, ty: &str) -> Option<&str> {
        match self.ty(ty) {
            Some(Ty::Object { tag, .. }) => tag.as_deref(),
            _ => None,
        }
    }

    fn branch(&self, ty: &str, value: &str) -> Option<&str> {
        match self.ty(ty) {
            Some(Ty::Object { variants, .. }) => variants
                .iter()
                .find(|(case, _)| case == value)
                .map(|(_, t)| t.as_str()),
            _ => None,
        }
    }

    fn alternatives(&self, ty: &str) -> Vec<&str> {
        match self.ty(ty) {
            Some(Ty::Alternate(b)) => b.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast reader and the generated types index a real schema alike.
    #[test]
    fn from_json_indexes_as_from_reply() {
        for f in ["system-10.0.2.json", "system-11.1.3.json"] {
            let path = format!(
                "{}/tests/fixtures/introspection/{f}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read(&path).expect("fixture");
            let fast = Introspection::from_json(&text, "x").expect("fast");
            let typed: Vec<SchemaInfo> = serde_json::from_slice(&text).expect("typed");
            let slow = Introspection::from_reply(typed, "x");
            fn sorted<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
                let mut v: Vec<&str> = it.collect();
                v.sort_unstable();
                v
            }
            assert_eq!(sorted(fast.commands()), sorted(slow.commands()));
            assert_eq!(sorted(fast.events()), sorted(slow.events()));
            let names = sorted(slow.type_names());
            assert_eq!(sorted(fast.type_names()), names);
            for n in names {
                assert_eq!(fast.type_view(n), slow.type_view(n), "{f}: {n}");
            }
            for c in slow.commands() {
                assert_eq!(fast.arg_type(c), slow.arg_type(c), "{c}");
                assert_eq!(fast.allows_oob(c), slow.allows_oob(c), "{c}");
                assert_eq!(fast.features_of(c), slow.features_of(c), "{c}");
            }
        }
        // A whole reply reads too; an empty one is refused.
        assert!(Introspection::from_json(br#"{"return": [{"name": "x", "meta-type": "command", "arg-type": "0", "ret-type": "1"}]}"#, "x").is_ok_and(|s| s.has_command("x")));
        assert!(Introspection::from_json(b"[]", "x").is_err());
        assert!(Introspection::from_json(b"{\"return\": 5}", "x").is_err());
    }
}
