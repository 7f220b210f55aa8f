//! The hand-written runtime the generated code builds on: the
//! [`Command`] trait and its metadata, QEMU's event [`Timestamp`], the
//! macros that implement each generated type's wire format and builders
//! ([`qapi_struct!`], [`qapi_enum!`], [`qapi_builder!`],
//! [`qapi_newtype!`], [`qapi_union!`], [`qapi_command!`], [`qapi_event!`]),
//! and serde helpers for enums with unknown values,
//! unions and alternates.

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

mod macros;
mod unknown;
mod versions;

pub use unknown::{
    UnknownMember, collect_unknown_members, collecting, record_unknown, strict_enum_values,
};

pub use versions::{QemuVersion, Unavailable, check_available};

pub use crate::{
    qapi_any_event, qapi_builder, qapi_command, qapi_enum, qapi_event, qapi_newtype, qapi_struct,
    qapi_union,
};

/// Which protocol a command belongs to: [`Qmp`] (QEMU's monitor) or
/// [`Qga`] (the guest agent). A client takes only its own protocol's
/// commands, so sending a guest-agent command to QEMU's monitor (or the
/// reverse) does not compile.
pub trait Protocol {
    /// `"QMP"` or `"QGA"`.
    const NAME: &'static str;
}

/// QEMU's monitor protocol (`qapi/qapi-schema.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qmp {}

impl Protocol for Qmp {
    const NAME: &'static str = "QMP";
}

/// The guest agent's protocol (`qga/qapi-schema.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qga {}

impl Protocol for Qga {
    const NAME: &'static str = "QGA";
}

/// A command: its arguments (this type), wire name and reply type.
pub trait Command: Serialize {
    /// The protocol whose commands this is one of.
    type Protocol: Protocol;
    /// The command's name on the wire (`query-status`).
    const NAME: &'static str;
    /// What a successful reply's `return` decodes into; `()` where QEMU
    /// answers `{}`.
    type Returns: DeserializeOwned;
    /// The schema's metadata about the command.
    const META: CommandMeta;
}

/// What the schema says about a command. Generated code (also in other
/// crates, from a user's own schema) builds it with a struct literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandMeta {
    /// The name on the wire.
    pub name: &'static str,
    /// The QAPI name of its argument type (`BlockdevOptions`, or an
    /// implicit `q_obj_device_del-arg`), its shape in the generated
    /// `TYPES`; `None` when it takes no arguments.
    pub arg_type: Option<&'static str>,
    /// `allow-oob`: may be sent with `exec-oob`.
    pub allow_oob: bool,
    /// `allow-preconfig`: usable before machine initialisation.
    pub allow_preconfig: bool,
    /// `success-response`: false when QEMU sends no reply on success.
    pub success_response: bool,
    /// Marked `deprecated`.
    pub deprecated: bool,
    /// Marked `unstable`.
    pub unstable: bool,
    /// The schema's `Since:`.
    pub since: Option<&'static str>,
    /// The schema's `if` condition (the command exists only in QEMU built
    /// with it).
    pub condition: Option<&'static str>,
    /// All features (`deprecated`, `unstable`, others).
    pub features: &'static [&'static str],
    /// The QEMU versions, of those the bindings were generated from, that
    /// have the command (oldest first); empty when the bindings come from
    /// one schema without versions.
    pub versions: &'static [&'static str],
    /// Arguments that only some of [`CommandMeta::versions`] have: wire
    /// name and the versions that have it.
    pub partial_args: &'static [(&'static str, &'static [&'static str])],
}

/// What the schema says about an event. Generated code (also in other
/// crates, from a user's own schema) builds it with a struct literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta {
    /// The name on the wire.
    pub name: &'static str,
    /// Marked `deprecated` in the schema.
    pub deprecated: bool,
    /// Marked `unstable` in the schema.
    pub unstable: bool,
    /// The schema's `Since:`.
    pub since: Option<&'static str>,
    /// The schema's `if` condition (QEMU sends the event only when built
    /// with it).
    pub condition: Option<&'static str>,
    /// The QEMU versions, of those the bindings were generated from, that
    /// have the event (oldest first); empty when the bindings come from
    /// one schema without versions.
    pub versions: &'static [&'static str],
}

/// An event's data type. `Any` is the enum over all events of its schema
/// (`AnyEvent`), which every event converts from.
pub trait Event: Sized + DeserializeOwned {
    /// The enum over every event of the schema this event belongs to.
    type Any;
    /// The event's name on the wire.
    const NAME: &'static str;
    /// Its metadata.
    const META: EventMeta;
    /// This event, if `event` is one.
    fn from_any(event: Self::Any) -> Option<Self>;
    /// This event, if `event` is one, by reference.
    fn from_any_ref(event: &Self::Any) -> Option<&Self>;
}

/// What a tool does with a command type found by name (the generated
/// `with_command`): decode its arguments from JSON, send it, encode its
/// reply as JSON, ... `visit` is called with the type. `P` is the
/// protocol of the bindings' commands ([`Qmp`] or [`Qga`]), so a visitor
/// can hand the command to that protocol's client.
pub trait CommandVisitor<P: Protocol> {
    /// What the visit gives back.
    type Output;
    /// Called with the command's type.
    fn visit<C>(self) -> Self::Output
    where
        C: Command<Protocol = P> + DeserializeOwned + Send + Sync + 'static,
        C::Returns: Serialize + Send + 'static;
}

/// What a tool does with an event type found by name (the generated
/// `with_event`).
pub trait EventVisitor {
    /// What the visit gives back.
    type Output;
    /// Called with the event's data type.
    fn visit<E>(self) -> Self::Output
    where
        E: Event + Serialize + Send + Sync + 'static;
}

/// One argument of a command (the generated `COMMAND_ARGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgInfo {
    /// Its name on the wire.
    pub name: &'static str,
    /// Its QAPI type (`str`, `int`, `BlockdevOptions`, `['str']` is
    /// `strList`).
    pub type_name: &'static str,
    /// Whether it may be left out (optional, or under an `if`).
    pub optional: bool,
    /// Its description from the schema (Markdown; empty where the schema
    /// has none).
    pub doc: &'static str,
}

/// The shape of a QAPI type (the generated `TYPES`), for tools that
/// complete or explain nested arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeInfo {
    /// A struct, or a union (with its discriminator and branches).
    Object {
        /// Its members, base first (a union's common members).
        members: &'static [ArgInfo],
        /// A union's discriminator member.
        tag: Option<&'static str>,
        /// A union's branches: discriminator value and the type whose
        /// members that value adds.
        branches: &'static [(&'static str, &'static str)],
    },
    /// An enum.
    Enum {
        /// Its values on the wire.
        values: &'static [&'static str],
    },
    /// An alternate: one of these types, told apart by JSON type.
    Alternate {
        /// The branches' types.
        branches: &'static [&'static str],
    },
    /// A list.
    Array {
        /// The element type.
        element: &'static str,
    },
}

/// When QEMU sent an event (`timestamp` of the event message).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, serde::Deserialize,
)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Microseconds within the second.
    pub microseconds: i64,
}

impl Timestamp {
    /// Microseconds since the Unix epoch.
    pub fn as_micros(&self) -> i128 {
        i128::from(self.seconds) * 1_000_000 + i128::from(self.microseconds)
    }

    /// As a `SystemTime` (`None` for QEMU's "no time" value, -1/-1, and
    /// for times before the epoch).
    pub fn to_system_time(&self) -> Option<std::time::SystemTime> {
        let micros = u64::try_from(self.as_micros()).ok()?;
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros))
    }
}

/// Deserializes an enum from its wire string through `from_wire`. A
/// string that is none of `values` is kept (`Unknown`), unless the
/// caller decodes with [`strict_enum_values`].
pub fn deserialize_enum<'de, D, T>(
    d: D,
    from_wire: fn(&str) -> T,
    values: &'static [&'static str],
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(fn(&str) -> T, &'static [&'static str]);
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string (an enum value)")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            if unknown::strict() && !self.1.contains(&s) {
                return Err(E::unknown_variant(s, self.1));
            }
            Ok((self.0)(s))
        }
    }
    d.deserialize_str(V(from_wire, values))
}

/// A JSON object's members.
pub type Members = Map<String, Value>;

/// A union's members without the discriminator, and the discriminator's
/// value if present (older QEMU sends some unions without it).
pub fn deserialize_branch_opt<'de, D>(
    d: D,
    tag: &str,
) -> Result<(Option<String>, Members), D::Error>
where
    D: Deserializer<'de>,
{
    let mut members = Map::<String, Value>::deserialize(d)?;
    match members.remove(tag) {
        Some(Value::String(t)) => Ok((Some(t), members)),
        Some(other) => Err(de::Error::custom(format_args!(
            "discriminator '{tag}' must be a string, got {other}"
        ))),
        None => Ok((None, members)),
    }
}

/// Writes a branch that came without its discriminator: its members only.
pub fn serialize_untagged<S: Serializer>(
    s: S,
    members: Result<Map<String, Value>, serde_json::Error>,
) -> Result<S::Ok, S::Error> {
    members.map_err(serde::ser::Error::custom)?.serialize(s)
}

/// A union's members without the discriminator: reads them as a map and
/// takes out the discriminator `tag`.
pub fn deserialize_branch<'de, D>(d: D, tag: &str) -> Result<(String, Map<String, Value>), D::Error>
where
    D: Deserializer<'de>,
{
    let mut members = Map::<String, Value>::deserialize(d)?;
    match members.remove(tag) {
        Some(Value::String(t)) => Ok((t, members)),
        Some(other) => Err(de::Error::custom(format_args!(
            "discriminator '{tag}' must be a string, got {other}"
        ))),
        None => Err(de::Error::custom(format_args!(
            "missing discriminator '{tag}'"
        ))),
    }
}

/// Writes a union branch: its members plus the discriminator.
pub fn serialize_branch<S: Serializer>(
    s: S,
    tag: &str,
    value: &str,
    members: Result<Map<String, Value>, serde_json::Error>,
) -> Result<S::Ok, S::Error> {
    let mut members = members.map_err(serde::ser::Error::custom)?;
    members.insert(tag.to_string(), Value::String(value.to_string()));
    members.serialize(s)
}

/// A branch's members from the union's map. An error names the bad
/// member's path inside the branch ([`PATH_PREFIX`]), which the decoder
/// of the whole value cannot see.
pub fn from_members<T: DeserializeOwned>(
    members: Map<String, Value>,
) -> Result<T, serde_json::Error> {
    decode_part(Value::Object(members))
}

/// Starts the message of an error inside a union's branch or a flattened
/// member: "member `a.b`: " then the decoder's message. Readers that track
/// the path of the enclosing value (the client's decode errors) append
/// `a.b` to theirs.
pub const PATH_PREFIX: &str = "member `";

/// Splits "member `a.b`: message" into its path and message.
pub fn split_path_message(msg: &str) -> Option<(&str, &str)> {
    let rest = msg.strip_prefix(PATH_PREFIX)?;
    let end = rest.find("`: ")?;
    Some((&rest[..end], &rest[end + 3..]))
}

/// `outer.deeper` for two decode paths (`.` is the root).
pub fn join_path(outer: &str, deeper: &str) -> String {
    if outer == "." {
        deeper.to_string()
    } else {
        format!("{outer}.{deeper}")
    }
}

/// The whole path and the message of a decode error: `outer` is the path
/// a path-tracking decoder saw, `inner` its message, which names the part
/// inside a union's branch or a flattened member when the error was
/// there ("member `a.b`: ...").
pub fn full_path_message(outer: &str, inner: &str) -> (String, String) {
    match split_path_message(inner) {
        Some((deeper, msg)) => (join_path(outer, deeper), msg.to_string()),
        None => (outer.to_string(), inner.to_string()),
    }
}

/// Decodes `value`, tracking the path of the member that fails.
fn decode_part<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let (path, msg) = full_path_message(&e.path().to_string(), &e.into_inner().to_string());
        if path == "." {
            return de::Error::custom(msg);
        }
        de::Error::custom(format_args!("{PATH_PREFIX}{path}`: {msg}"))
    })
}

/// A branch's value as members (it is always a JSON object).
pub fn to_members<T: Serialize>(value: &T) -> Result<Map<String, Value>, serde_json::Error> {
    match serde_json::to_value(value)? {
        Value::Object(m) => Ok(m),
        other => Err(serde::ser::Error::custom(format_args!(
            "union branch must encode as an object, got {other}"
        ))),
    }
}

/// The error for a value that fits no branch of an alternate.
pub fn unexpected_alternate(v: &Value, expected: &str) -> serde_json::Error {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    de::Error::custom(format_args!("expected {expected}, got {kind}"))
}

/// A struct member's key, as [`FieldSeed`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The member at this index of [`FieldSeed::names`].
    Known(usize),
    /// Another key: kept when [`FieldSeed::keep_unknown`], else empty.
    Unknown(String),
}

/// Reads an object key and finds it among a struct's member names,
/// without allocating for a known one.
#[derive(Debug, Clone, Copy)]
pub struct FieldSeed {
    /// The members' wire names, in order.
    pub names: &'static [&'static str],
    /// Whether an unknown key's text is wanted (a flattened member).
    pub keep_unknown: bool,
}

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for FieldSeed {
    type Value = Field;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
        Ok(self.field(key, || key.to_string()))
    }
    fn visit_string<E: de::Error>(self, key: String) -> Result<Field, E> {
        let known = self.names.iter().position(|n| *n == key);
        Ok(self.field_at(known, || key))
    }
}

impl FieldSeed {
    fn field(&self, key: &str, owned: impl FnOnce() -> String) -> Field {
        self.field_at(self.names.iter().position(|n| *n == key), owned)
    }

    /// The key as a [`Field`]: its index, or (only if wanted) its text.
    fn field_at(&self, known: Option<usize>, owned: impl FnOnce() -> String) -> Field {
        match known {
            Some(i) => Field::Known(i),
            None if self.keep_unknown || collecting() => Field::Unknown(owned()),
            None => Field::Unknown(String::new()),
        }
    }
}

/// Skips the value of a member a generated struct does not know (or,
/// while a caller collects them, records it: see
/// [`collect_unknown_members`]). One function instead of code in every
/// struct's decoder keeps the generated crate quick to compile.
#[doc(hidden)]
pub fn skip_member<'de, A: de::MapAccess<'de>>(
    map: &mut A,
    type_name: &'static str,
    field: Field,
) -> Result<(), A::Error> {
    match field {
        Field::Unknown(key) if collecting() => {
            let value = map.next_value::<Value>()?;
            record_unknown(type_name, key, value);
        }
        _ => {
            map.next_value::<de::IgnoredAny>()?;
        }
    }
    Ok(())
}

/// Writes a flattened member's entries (a union's branch with its
/// discriminator, or a map of further arguments) into the struct's map.
pub fn serialize_flat<M: SerializeMap, T: Serialize>(
    map: &mut M,
    value: &T,
) -> Result<(), M::Error> {
    match serde_json::to_value(value).map_err(serde::ser::Error::custom)? {
        Value::Object(members) => {
            for (k, v) in &members {
                map.serialize_entry(k, v)?;
            }
            Ok(())
        }
        other => Err(serde::ser::Error::custom(format_args!(
            "a flattened member must encode as an object, got {other}"
        ))),
    }
}

/// Decodes a flattened member from the keys its struct did not know.
pub fn from_flat<T: DeserializeOwned>(rest: Map<String, Value>) -> Result<T, serde_json::Error> {
    decode_part(Value::Object(rest))
}
