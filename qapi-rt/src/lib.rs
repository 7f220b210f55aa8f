//! The runtime that Rust code generated from a QAPI schema builds on:
//! the [`Command`] and [`Event`] traits with their metadata
//! ([`CommandMeta`], [`EventMeta`]), the [`Protocol`] markers ([`Qmp`],
//! [`Qga`]), QEMU's event [`Timestamp`], QAPI's `number` ([`Number`]: a
//! float that is `Eq` and `Hash`), the schema as data for tools
//! ([`MemberInfo`], [`TypeInfo`], [`CommandVisitor`], [`EventVisitor`]),
//! QEMU versions and whether a command exists in one ([`QemuVersion`],
//! [`check_available`]), members a newer QEMU sends that the bindings
//! don't know ([`collect_unknown_members`], kept in each struct's
//! [`Extra`]; [`decode_leniently`] for values a newer QEMU widened), decode-error paths
//! ([`path`]), and the macros that implement each generated type's wire
//! format and builders ([`qapi_struct!`], [`qapi_enum!`],
//! [`qapi_builder!`], [`qapi_newtype!`], [`qapi_union!`],
//! [`qapi_command!`], [`qapi_event!`], [`qapi_any_event!`]).
//!
//! It depends on no schema. `qmp-types` re-exports it as `qmp_types::rt`;
//! code that `qapi-gen` generates from a user's own schema depends on this
//! crate alone. Helpers that only generated code calls live in a hidden
//! module and are not part of the documented API.
//!
//! ```
//! use qapi_rt::QemuVersion;
//! assert!(QemuVersion::parse("10.0.2") > QemuVersion::parse("7.2"));
//! ```

use serde::{Serialize, de::DeserializeOwned};

mod extra;
mod macros;
mod number;
mod parse;
pub mod path;
mod unknown;
mod versions;

#[doc(hidden)]
pub mod __private;

pub use extra::Extra;
pub use number::Number;
pub use parse::ParseEnumError;
pub use unknown::{
    UnknownKind, UnknownMember, collect_unknown_members, decode_leniently, strict_enum_values,
};

pub use versions::{QemuVersion, Unavailable, check_available};

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
    /// The QAPI name of its reply type (`StatusInfo`, `BlockInfoList` for
    /// a list), its shape in the generated `TYPES`; `None` when it
    /// returns nothing (`{}`) or any JSON value.
    pub ret_type: Option<&'static str>,
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

/// One member of an object type: a command's argument (the generated
/// `COMMAND_ARGS`), or a struct's or union's member (the generated
/// `TYPES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberInfo {
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

/// The former name of [`MemberInfo`], which describes any object's
/// members, not only a command's arguments.
#[deprecated(note = "renamed to `MemberInfo`: it describes any object's members")]
pub type ArgInfo = MemberInfo;

/// The shape of a QAPI type (the generated `TYPES`), for tools that
/// complete or explain nested arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeInfo {
    /// A struct, or a union (with its discriminator and branches).
    Object {
        /// Its members, base first (a union's common members).
        members: &'static [MemberInfo],
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
