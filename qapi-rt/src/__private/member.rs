//! What `qapi_struct!` does per member, as functions named by the
//! member's kind: `req`, `opt` and `anyopt` (the kinds the generator
//! writes in each `qapi_struct!` call).
//!
//! The macros call `$crate::__private::$kind::de(..)` instead of
//! dispatching on the kind with a helper macro per member, and the
//! decoder checks its required members with one pattern instead of a
//! branch per member: what the compiler checks per member of the
//! generated crate's thousands is what its build time grows with.

use serde::Serialize;
use serde::de::{self, Deserialize, DeserializeOwned, MapAccess};
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// What a struct's decoder carries from member to member: its name (for
/// what is reported), whether it decodes leniently, which required
/// members came, and the values of optional members their types could
/// not hold (kept in the struct's `extra`, or its flattened member, at
/// the end).
#[derive(Debug)]
pub struct Decoding {
    type_name: &'static str,
    lenient: bool,
    seen: u64,
    kept: Vec<(&'static str, Value)>,
}

impl Decoding {
    /// The state at the start of decoding a `type_name`.
    #[inline]
    pub fn new(type_name: &'static str) -> Self {
        Decoding {
            type_name,
            lenient: crate::unknown::lenient(),
            seen: 0,
            kept: Vec::new(),
        }
    }

    /// The struct's name.
    #[inline]
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Moves the values set aside into where the struct keeps them.
    #[inline]
    pub fn keep_into(&mut self, into: &mut dyn super::Keep) {
        // Nearly always nothing: no call, no `Drain`.
        if !self.kept.is_empty() {
            self.move_kept(into);
        }
    }

    #[cold]
    fn move_kept(&mut self, into: &mut dyn super::Keep) {
        for (k, v) in self.kept.drain(..) {
            into.keep(k.to_string(), v);
        }
    }

    /// The error for a required member that did not come: the first of
    /// `required` (a bit per member index of `names`) not seen.
    #[cold]
    pub fn missing<E: de::Error>(&self, names: &[&'static str], required: u64) -> E {
        let absent = required & !self.seen;
        match names.get(absent.trailing_zeros() as usize) {
            Some(name) if absent != 0 => E::missing_field(name),
            _ => E::custom(format_args!(
                "a required member of {} is missing",
                self.type_name
            )),
        }
    }
}

/// A struct's encoder: the map it writes, which members it wrote (so
/// that what its `extra` holds for them is not written again), and the
/// first error, after which it writes nothing (so that the generated
/// encoder needs no branch per member).
#[derive(Debug)]
pub struct Writer<M: SerializeMap> {
    map: M,
    /// A bit per member written, of the first 64.
    written: u64,
    /// The names of members written past the 64th (none has so many in
    /// QEMU's schemas; nothing is allocated until one does).
    written_more: Vec<&'static str>,
    error: Option<M::Error>,
}

impl<M: SerializeMap> Writer<M> {
    /// Starts the struct's map.
    #[inline]
    pub fn new<S: Serializer<SerializeMap = M>>(serializer: S) -> Result<Self, S::Error> {
        Ok(Writer {
            map: serializer.serialize_map(None)?,
            written: 0,
            written_more: Vec::new(),
            error: None,
        })
    }

    /// Keeps the first error.
    #[inline]
    fn check(&mut self, result: Result<(), M::Error>) {
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// Writes member `index`.
    #[inline]
    fn member<T: Serialize + ?Sized>(&mut self, index: u32, wire: &'static str, value: &T) {
        if self.error.is_none() {
            match 1u64.checked_shl(index) {
                Some(bit) => self.written |= bit,
                None => self.written_more.push(wire),
            }
            let result = self.map.serialize_entry(wire, value);
            self.check(result);
        }
    }

    /// Whether member `index`, named `name`, was written (as `member`
    /// marked it).
    fn wrote(&self, index: usize, name: &str) -> bool {
        match u32::try_from(index).ok().and_then(|i| 1u64.checked_shl(i)) {
            Some(bit) => self.written & bit != 0,
            None => self.written_more.contains(&name),
        }
    }

    /// Writes a flattened member's entries.
    #[inline]
    pub fn flat<T: Serialize>(&mut self, value: &T) {
        if self.error.is_none() {
            let result = super::serialize_flat(&mut self.map, value);
            self.check(result);
        }
    }

    /// Writes the kept members (`extra`), but those a member written
    /// holds.
    #[inline]
    pub fn extra(&mut self, extra: &crate::Extra, names: &[&str]) {
        if extra.is_empty() || self.error.is_some() {
            return;
        }
        for (k, v) in extra.iter() {
            let held = names
                .iter()
                .position(|n| n == k)
                .is_some_and(|i| self.wrote(i, k));
            if !held {
                let result = self.map.serialize_entry(k, v);
                self.check(result);
                if self.error.is_some() {
                    return;
                }
            }
        }
    }

    /// Ends the map, or gives the first error.
    #[inline]
    pub fn end(self) -> Result<M::Ok, M::Error> {
        match self.error {
            Some(e) => Err(e),
            None => self.map.end(),
        }
    }
}

/// A required member.
pub mod req {
    use super::*;

    /// Writes the member.
    #[inline]
    pub fn ser<M: SerializeMap, T: Serialize>(
        map: &mut Writer<M>,
        index: u32,
        wire: &'static str,
        value: &T,
    ) {
        map.member(index, wire, value);
    }

    /// Reads the member's value into `slot`.
    #[inline]
    pub fn de<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
        map: &mut A,
        state: &mut Decoding,
        index: u32,
        _: &'static str,
        slot: &mut Option<T>,
    ) -> Result<(), A::Error> {
        state.seen |= 1u64.checked_shl(index).unwrap_or(0);
        *slot = Some(map.next_value()?);
        Ok(())
    }

    /// The member's value once every key was read: `None` if it never
    /// came.
    #[inline]
    pub fn present<T>(value: Option<T>) -> Option<T> {
        value
    }
}

/// An optional member whose type does not take `null`.
pub mod opt {
    use super::*;

    /// Writes the member if it is set.
    #[inline]
    pub fn ser<M: SerializeMap, T: Serialize>(
        map: &mut Writer<M>,
        index: u32,
        wire: &'static str,
        value: &Option<T>,
    ) {
        if let Some(v) = value {
            map.member(index, wire, v);
        }
    }

    /// Reads the member's value into `slot`; a `null`, or (decoding
    /// leniently) a value its type cannot hold, leaves it absent and is
    /// kept.
    #[inline]
    pub fn de<'de, A: MapAccess<'de>, T: DeserializeOwned>(
        map: &mut A,
        state: &mut Decoding,
        _: u32,
        wire: &'static str,
        slot: &mut Option<T>,
    ) -> Result<(), A::Error> {
        *slot =
            super::super::opt_member(map, state.type_name, wire, state.lenient, &mut state.kept)?;
        Ok(())
    }

    /// The member once every key was read: always there (absent is a
    /// value).
    #[inline]
    pub fn present<T>(value: Option<T>) -> Option<Option<T>> {
        Some(value)
    }
}

/// An optional member whose type takes `null` (`any`): a `null` is its
/// value, so it is read as a required one is (the bit `req::de` sets
/// for it is never asked: only required members are in the mask) and
/// written as an optional one.
pub mod anyopt {
    pub use super::opt::{present, ser};
    pub use super::req::de;
}

/// A generated struct's decoder from a JSON object's members (what
/// `qapi_struct!` writes for each struct): one trait method per struct
/// instead of a visitor type of its own.
pub trait DecodeStruct: Sized {
    /// Reads the struct from `map`'s members.
    fn decode<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// Deserializes a generated struct (an object, nothing else).
#[inline]
pub fn deserialize_struct<'de, D: serde::Deserializer<'de>, T: DecodeStruct>(
    d: D,
) -> Result<T, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: DecodeStruct> de::Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let name = std::any::type_name::<T>();
            write!(
                f,
                "an object ({})",
                name.rsplit("::").next().unwrap_or(name)
            )
        }
        #[inline]
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::decode(map)
        }
    }
    d.deserialize_map(V(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `io::Write` that takes `room` bytes, then fails.
    struct Full {
        room: usize,
        got: Vec<u8>,
    }

    impl std::io::Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.got.len() + buf.len() > self.room {
                return Err(std::io::Error::other("disk full"));
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Writes `{"a": 1, "b": "two", "c": [3], kept extra}` through a
    /// `Writer` into `out`.
    fn write(out: &mut Full, extra: &crate::Extra) -> Result<(), serde_json::Error> {
        let mut ser = serde_json::Serializer::new(out);
        let mut w = Writer::new(&mut ser)?;
        req::ser(&mut w, 0, "a", &1);
        opt::ser(&mut w, 1, "b", &Some("two"));
        opt::ser(&mut w, 2, "none", &None::<u8>);
        req::ser(&mut w, 3, "c", &[3]);
        w.extra(extra, &["a", "b", "none", "c"]);
        w.end()
    }

    #[test]
    fn the_writer_writes_members_then_extra_but_what_a_member_holds() {
        let mut extra = crate::Extra::default();
        extra.insert("b".into(), "kept".into());
        extra.insert("none".into(), Value::Null);
        extra.insert("new".into(), 4.into());
        let mut out = Full {
            room: 1000,
            got: Vec::new(),
        };
        write(&mut out, &extra).expect("writes");
        assert_eq!(
            String::from_utf8_lossy(&out.got),
            r#"{"a":1,"b":"two","c":[3],"new":4,"none":null}"#
        );
    }

    #[test]
    fn members_past_the_64th_are_told_apart_too() {
        let names: Vec<&'static str> = (0..70)
            .map(|i| &*Box::leak(format!("m{i}").into_boxed_str()))
            .collect();
        let mut extra = crate::Extra::default();
        extra.insert("m66".into(), "kept".into());
        extra.insert("m67".into(), "kept".into());
        let mut out = Full {
            room: 1000,
            got: Vec::new(),
        };
        let mut ser = serde_json::Serializer::new(&mut out);
        let mut w = Writer::new(&mut ser).expect("starts");
        // m66 is written (the member wins over the kept value); m67 is
        // not (its kept value is written).
        req::ser(&mut w, 66, names[66], &1);
        w.extra(&extra, &names);
        w.end().expect("ends");
        assert_eq!(
            String::from_utf8_lossy(&out.got),
            r#"{"m66":1,"m67":"kept"}"#
        );
    }

    #[test]
    fn the_writer_stops_at_the_first_error_and_gives_it() {
        for room in 0..40 {
            let mut out = Full {
                room,
                got: Vec::new(),
            };
            let result = write(&mut out, &crate::Extra::default());
            let whole = r#"{"a":1,"b":"two","c":[3]}"#;
            if room >= whole.len() {
                assert!(result.is_ok(), "{room}");
            } else {
                let e = result.expect_err("no room");
                assert!(e.to_string().contains("disk full"), "{e}");
                // Nothing after the failed write: what was written is a
                // prefix of the whole.
                let got = String::from_utf8_lossy(&out.got);
                assert!(whole.starts_with(&*got), "{room}: {got}");
            }
        }
    }

    #[test]
    fn a_missing_required_member_is_named() {
        let names = ["a", "b", "c"];
        let mut state = Decoding::new("T");
        // `a` seen, `b` optional, `c` required and absent.
        state.seen |= 1;
        let e: serde_json::Error = state.missing(&names, 0b101);
        assert!(e.to_string().contains("missing field `c`"), "{e}");
        // A mask that names no absent member still gives an error.
        let e: serde_json::Error = state.missing(&names, 0b001);
        assert!(e.to_string().contains("required member of T"), "{e}");
    }
}
