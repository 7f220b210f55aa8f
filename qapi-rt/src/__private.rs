//! Helpers that only generated code calls (through the macros of this
//! crate and the alternates' spelled-out impls): serde plumbing for enums
//! with unknown values, unions, alternates, flattened members and struct
//! keys. Not part of the documented API: they may change with the
//! generator, which always comes with a matching runtime.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::unknown::{UnknownKind, UnknownMember, record};

mod keys;
mod member;
pub use crate::unknown::{collecting, lenient, record_unknown};
pub use keys::{Field, FieldSeed};
pub use member::{DecodeStruct, Decoding, Writer, anyopt, deserialize_struct, opt, req};

/// The error of a generated enum's `FromStr` for `value`.
pub fn parse_enum_error(
    type_name: &'static str,
    value: &str,
    expected: &'static [&'static str],
) -> crate::ParseEnumError {
    crate::ParseEnumError {
        type_name,
        value: value.to_string(),
        expected,
    }
}

// Generated code reaches serde through the runtime, so a crate of
// generated bindings depends on this crate alone.
pub use serde;
pub use serde_json;

/// Deserializes an enum from its wire string through `from_wire`. A
/// string that is none of `values` is kept (`Unknown`), unless the
/// caller decodes with [`strict_enum_values`](crate::strict_enum_values).
pub fn deserialize_enum<'de, D, T>(
    d: D,
    from_wire: fn(&str) -> T,
    values: &'static [&'static str],
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    enum_visit(d, from_wire, None, values, "")
}

/// [`deserialize_enum`] that, while a caller collects unknown members,
/// records a value the enum `type_name` does not know (`unknown` tells
/// the enum's `Unknown` variant: a test of the discriminant, so known
/// values cost nothing more).
pub fn deserialize_enum_named<'de, D, T>(
    d: D,
    from_wire: fn(&str) -> T,
    unknown: fn(&T) -> bool,
    values: &'static [&'static str],
    type_name: &'static str,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    enum_visit(d, from_wire, Some(unknown), values, type_name)
}

/// Both: `unknown` `None` tells unknown values by `values`.
fn enum_visit<'de, D, T>(
    d: D,
    from_wire: fn(&str) -> T,
    unknown: Option<fn(&T) -> bool>,
    values: &'static [&'static str],
    type_name: &'static str,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        from_wire: fn(&str) -> T,
        unknown: Option<fn(&T) -> bool>,
        values: &'static [&'static str],
        type_name: &'static str,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string (an enum value)")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            let v = (self.from_wire)(s);
            let unknown = match self.unknown {
                Some(f) => f(&v),
                None => !self.values.contains(&s),
            };
            if !unknown {
                return Ok(v);
            }
            if crate::unknown::strict() {
                return Err(E::unknown_variant(s, self.values));
            }
            if !self.type_name.is_empty() && collecting() {
                let value = Value::String(s.to_string());
                record(UnknownMember::new(
                    self.type_name,
                    s.to_string(),
                    value,
                    UnknownKind::EnumValue,
                ));
            }
            Ok(v)
        }
    }
    d.deserialize_str(V {
        from_wire,
        unknown,
        values,
        type_name,
    })
}

/// A JSON object's members.
pub type Members = Map<String, Value>;

/// An object's members, each kept as its JSON text, in the order met: a
/// union's (until its discriminator says which branch they are), or what
/// a struct hands to its flattened member. Cheaper than a
/// `serde_json::Value` tree: one string per member, whatever its depth.
#[derive(Debug, Default)]
pub struct Flat(Vec<(String, Box<RawValue>)>);

impl Flat {
    /// Keeps a member.
    pub fn push(&mut self, key: String, value: Box<RawValue>) {
        self.0.push((key, value));
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes member `key` out.
    fn take(&mut self, key: &str) -> Option<Box<RawValue>> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// The members as one JSON object's text.
    fn text(&self) -> String {
        let len = self
            .0
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum::<usize>();
        let mut out = String::with_capacity(len + 2);
        out.push('{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // A key came from JSON text, so it encodes.
            out.push_str(&serde_json::to_string(k).unwrap_or_else(|_| "\"\"".into()));
            out.push(':');
            out.push_str(v.get());
        }
        out.push('}');
        out
    }

    /// The members as values (for a branch kept as unknown).
    pub fn into_map(self) -> Map<String, Value> {
        self.0
            .into_iter()
            .map(|(k, v)| {
                let v = serde_json::from_str(v.get()).unwrap_or(Value::Null);
                (k, v)
            })
            .collect()
    }
}

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flat, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Flat;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Flat, A::Error> {
                let mut out = Flat(Vec::with_capacity(map.size_hint().unwrap_or(8)));
                while let Some(k) = map.next_key::<String>()? {
                    out.push(k, map.next_value()?);
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

impl Keep for Flat {
    fn keep(&mut self, key: String, value: Value) {
        if let Ok(raw) = serde_json::value::to_raw_value(&value) {
            self.push(key, raw);
        }
    }
}

/// A type a struct's flattened member can be: made from the members the
/// struct did not know, without going through JSON text again where it
/// can (a union's branch enum picks its branch from them).
///
/// Generic in its error (as serde's `Deserialize` is in its deserializer)
/// so that the bindings crate compiles no decoder of its own: each is
/// made where a program decodes, for the types it decodes.
pub trait FromFlat: Sized {
    /// Makes it from `members`.
    fn from_flat<E: de::Error>(members: Flat) -> Result<Self, E>;
}

impl FromFlat for Map<String, Value> {
    fn from_flat<E: de::Error>(members: Flat) -> Result<Self, E> {
        Ok(members.into_map())
    }
}

/// The discriminator `tag`'s value, taken out of `members`.
pub fn take_tag<E: de::Error>(members: &mut Flat, tag: &str) -> Result<Option<String>, E> {
    match members.take(tag) {
        None => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| {
                E::custom(format_args!(
                    "discriminator '{tag}' must be a string, got {}",
                    raw.get()
                ))
            }),
    }
}

/// Writes a branch that came without its discriminator: its members only.
pub fn serialize_untagged<S: Serializer>(
    s: S,
    members: Result<Map<String, Value>, serde_json::Error>,
) -> Result<S::Ok, S::Error> {
    members.map_err(serde::ser::Error::custom)?.serialize(s)
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
/// member's path inside the branch ([`PATH_PREFIX`](crate::path::PATH_PREFIX)), which the decoder
/// of the whole value cannot see.
pub fn from_members<T: DeserializeOwned, E: de::Error>(members: Flat) -> Result<T, E> {
    decode_part(&members.text()).map_err(E::custom)
}

/// Decodes `text`; on failure again, tracking the path of the member
/// that fails (so the common case pays nothing for it).
fn decode_part<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    if let Ok(t) = serde_json::from_str(text) {
        return Ok(t);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let (path, msg) =
            crate::path::full_path_message(&e.path().to_string(), &e.into_inner().to_string());
        if path == "." {
            return de::Error::custom(msg);
        }
        de::Error::custom(format_args!("{}{path}`: {msg}", crate::path::PATH_PREFIX))
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

/// Skips the value of a member a generated struct does not know (or,
/// while a caller collects them, records it: see
/// [`collect_unknown_members`](crate::collect_unknown_members)). One function instead of code in every
/// struct's decoder keeps the generated crate quick to compile.
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

/// Keeps the value of a member a struct with a flattened member does not
/// know for that member (and skips a repeated known one).
pub fn keep_flat<'de, A: de::MapAccess<'de>>(
    map: &mut A,
    field: Field,
    flat: &mut Flat,
) -> Result<(), A::Error> {
    match field {
        Field::Unknown(key) => flat.push(key, map.next_value()?),
        Field::Known(_) => {
            map.next_value::<de::IgnoredAny>()?;
        }
    }
    Ok(())
}

/// Where an object keeps members its type cannot hold: its
/// [`Extra`](crate::Extra), or (a struct with a flattened member) the
/// flattened member's keys, which the member then keeps.
pub trait Keep {
    /// Keeps `key`.
    fn keep(&mut self, key: String, value: Value);
}

impl Keep for crate::Extra {
    fn keep(&mut self, key: String, value: Value) {
        self.insert(key, value);
    }
}

/// A member's value, or `null` (which an optional member's type cannot
/// hold: its type does not take `null`).
enum Nullable<T> {
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Nullable<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value")
            }
            fn visit_none<E: de::Error>(self) -> Result<Nullable<T>, E> {
                Ok(Nullable::Null)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Nullable<T>, E> {
                Ok(Nullable::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Nullable<T>, D::Error> {
                T::deserialize(d).map(Nullable::Value)
            }
        }
        d.deserialize_option(V(std::marker::PhantomData))
    }
}

/// Decodes an optional member whose type does not take `null`: a
/// `null` (a newer QEMU widened the type) leaves it absent and is kept
/// (and reported while collecting); with `lenient` (see
/// [`decode_leniently`](crate::decode_leniently)) so is any value the
/// type cannot hold.
pub fn opt_member<'de, A: de::MapAccess<'de>, T: DeserializeOwned>(
    map: &mut A,
    type_name: &'static str,
    wire: &'static str,
    lenient: bool,
    keep: &mut Vec<(&'static str, Value)>,
) -> Result<Option<T>, A::Error> {
    let mismatch = |keep: &mut Vec<(&'static str, Value)>, value: Value, why: String| {
        if collecting() {
            record(UnknownMember {
                mismatch: Some(why),
                ..UnknownMember::new(
                    type_name,
                    wire.to_string(),
                    value.clone(),
                    UnknownKind::Member,
                )
            });
        }
        keep.push((wire, value));
    };
    if lenient {
        let value = map.next_value::<Value>()?;
        if value.is_null() {
            mismatch(keep, value, "null".into());
            return Ok(None);
        }
        return match T::deserialize(&value) {
            Ok(t) => Ok(Some(t)),
            Err(e) => {
                mismatch(keep, value, e.to_string());
                Ok(None)
            }
        };
    }
    match map.next_value::<Nullable<T>>()? {
        Nullable::Value(t) => Ok(Some(t)),
        Nullable::Null => {
            mismatch(keep, Value::Null, "null".into());
            Ok(None)
        }
    }
}

/// Records (while a caller collects) the members of a union branch kept
/// as unknown: a branch the bindings don't know, or a member-less one
/// that came with members.
pub fn record_unknown_all(type_name: &'static str, members: &Flat) {
    if collecting() {
        for (k, v) in &members.0 {
            let v = serde_json::from_str(v.get()).unwrap_or(Value::Null);
            record_unknown(type_name, k.clone(), v);
        }
    }
}

/// Records a union's branch the bindings don't know (its discriminator
/// value, its members as the value) while a caller collects.
pub fn record_unknown_branch(type_name: &'static str, tag: &str, members: &Flat) {
    if collecting() {
        let value = Value::Object(
            members
                .0
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        serde_json::from_str(v.get()).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        );
        record(UnknownMember::new(
            type_name,
            tag.to_string(),
            value,
            UnknownKind::Branch,
        ));
    }
}

/// Keeps the value of a member a generated struct does not know in its
/// [`Extra`](crate::Extra) (and records it while a caller collects).
pub fn keep_member<'de, A: de::MapAccess<'de>>(
    map: &mut A,
    type_name: &'static str,
    field: Field,
    extra: &mut crate::Extra,
) -> Result<(), A::Error> {
    match field {
        Field::Unknown(key) => {
            let value = map.next_value::<Value>()?;
            if collecting() {
                record_unknown(type_name, key.clone(), value.clone());
            }
            extra.insert(key, value);
        }
        Field::Known(_) => {
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
pub fn from_flat<T: FromFlat, E: de::Error>(rest: Flat) -> Result<T, E> {
    T::from_flat(rest)
}
