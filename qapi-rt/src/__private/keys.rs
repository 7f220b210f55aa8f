//! Finding a struct's member by its key, without allocating: each
//! struct's decoder hands [`FieldSeed`] a `match` on its members' names,
//! which the compiler turns into comparisons with constants, several
//! times faster than a table of names looked up by a scan or by a perfect
//! hash (measured on `query-named-block-nodes`; QEMU writes an object's
//! members in its hash table's order, not the schema's, so no guess of
//! the next key holds).

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

use crate::unknown::collecting;

/// A struct member's key, as [`FieldSeed`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The member at this index of the struct's members (as
    /// [`FieldSeed::find`] numbers them).
    Known(usize),
    /// Another key: kept when [`FieldSeed::keep_unknown`], else empty.
    Unknown(String),
}

/// Reads an object key and finds it among a struct's member names,
/// without allocating for a known one.
#[derive(Debug, Clone, Copy)]
pub struct FieldSeed<F> {
    /// The index of the member with this wire name.
    pub find: F,
    /// Whether an unknown key's text is wanted (a flattened member, or
    /// the struct's `extra`).
    pub keep_unknown: bool,
}

impl<'de, F: Fn(&str) -> Option<usize>> DeserializeSeed<'de> for FieldSeed<F> {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<F: Fn(&str) -> Option<usize>> Visitor<'_> for FieldSeed<F> {
    type Value = Field;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
        Ok(self.field_at((self.find)(key), || key.to_string()))
    }
    fn visit_string<E: de::Error>(self, key: String) -> Result<Field, E> {
        let known = (self.find)(&key);
        Ok(self.field_at(known, || key))
    }
}

impl<F> FieldSeed<F> {
    /// The key as a [`Field`]: its index, or (only if wanted) its text.
    fn field_at(&self, known: Option<usize>, owned: impl FnOnce() -> String) -> Field {
        match known {
            Some(i) => Field::Known(i),
            None if self.keep_unknown || collecting() => Field::Unknown(owned()),
            None => Field::Unknown(String::new()),
        }
    }
}
