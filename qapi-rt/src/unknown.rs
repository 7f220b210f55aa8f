//! Members the bindings do not know, or whose value their type cannot
//! hold (a QEMU newer than the bindings sends members they lack, and
//! widens types): a decoder keeps them in the object's
//! [`Extra`](crate::Extra), and a caller that collects them
//! ([`collect_unknown_members`]) gets each, to report it. Lenient mode
//! ([`decode_leniently`]) keeps an optional member's value that does not
//! fit instead of failing.
//!
//! Within the QEMU versions the bindings cover, every member is known and
//! fits, so nothing is kept; collecting costs nothing until a key is
//! unknown.

use std::cell::{Cell, RefCell};

use serde_json::Value;

/// A member a decoded object had that its type does not know, or whose
/// value its type cannot hold (kept in the object's
/// [`Extra`](crate::Extra) either way); or an enum value or a union
/// branch the bindings don't know (kept as the type's `Unknown`), as
/// [`UnknownMember::kind`] says.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UnknownMember {
    /// The Rust type that was decoded (`MachineInfo`; the enum, or the
    /// union's branch enum).
    pub type_name: &'static str,
    /// The member's key (the enum value, the branch's discriminator
    /// value).
    pub key: String,
    /// Its value.
    pub value: Value,
    /// `None`: the type has no such member. `Some`: it has, but the
    /// value does not fit its type (a newer QEMU widened it: `null`
    /// where a string was, or another JSON type under
    /// [`decode_leniently`]); the decoder's message.
    pub mismatch: Option<String>,
    /// A member, an enum value or a union branch.
    pub kind: UnknownKind,
}

/// What an [`UnknownMember`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownKind {
    /// A member of an object (its key).
    Member,
    /// A value of an enum.
    EnumValue,
    /// A branch of a union (its discriminator value; its members are the
    /// value).
    Branch,
}

impl UnknownMember {
    /// An unknown member, enum value or branch.
    pub fn new(
        type_name: &'static str,
        key: String,
        value: Value,
        kind: UnknownKind,
    ) -> UnknownMember {
        UnknownMember {
            type_name,
            key,
            value,
            mismatch: None,
            kind,
        }
    }
}

impl std::fmt::Display for UnknownMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            UnknownKind::Member => write!(f, "`{}` in {}", self.key, self.type_name)?,
            UnknownKind::EnumValue => write!(f, "value `{}` of {}", self.key, self.type_name)?,
            UnknownKind::Branch => write!(f, "branch `{}` of {}", self.key, self.type_name)?,
        }
        if let Some(m) = &self.mismatch {
            write!(f, " (does not fit its type: {m})")?;
        }
        Ok(())
    }
}

thread_local! {
    static SINK: RefCell<Option<Vec<UnknownMember>>> = const { RefCell::new(None) };
    static STRICT: Cell<bool> = const { Cell::new(false) };
    static LENIENT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `decode` (which decodes generated types on this thread) so that
/// an optional member whose value its type cannot hold (a newer QEMU
/// widened it: an object where a string was) does not fail the whole
/// value: the member is left absent, its value kept in the object's
/// [`Extra`](crate::Extra) (it re-encodes the same) and, while a caller
/// collects them, reported as an [`UnknownMember`] with the mismatch.
/// A required member that does not fit still fails, with its path.
/// Slower than a plain decode (optional members go through a
/// `serde_json::Value`): a client uses it only to retry a reply that
/// failed.
pub fn decode_leniently<R>(decode: impl FnOnce() -> R) -> R {
    /// Puts the outer mode back, also when `decode` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            LENIENT.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(LENIENT.with(|s| s.replace(true)));
    decode()
}

/// Whether optional members are decoded leniently on this thread.
pub fn lenient() -> bool {
    LENIENT.with(Cell::get)
}

/// Runs `decode` (which decodes generated types on this thread) with
/// enum values checked: a string that names none of an enum's values is
/// an error ("unknown variant `fulll`, expected one of ...") instead of
/// being kept as `Unknown`. For input a person typed (a command line's
/// arguments), where an unknown value is a mistake, not a newer QEMU.
pub fn strict_enum_values<R>(decode: impl FnOnce() -> R) -> R {
    /// Puts the outer mode back, also when `decode` panics, so a thread
    /// that goes on is never left in strict mode.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            STRICT.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(STRICT.with(|s| s.replace(true)));
    decode()
}

/// Whether enum values are checked on this thread.
pub(super) fn strict() -> bool {
    STRICT.with(Cell::get)
}

/// Runs `decode` (which decodes generated types on this thread) and
/// returns, beside its result, every member it met that the types do not
/// know, with its value. Nested calls collect separately.
pub fn collect_unknown_members<R>(decode: impl FnOnce() -> R) -> (R, Vec<UnknownMember>) {
    /// Puts the outer collector back, also when `decode` panics, so a
    /// thread that goes on never collects for a caller that is gone.
    struct Restore(Option<Option<Vec<UnknownMember>>>);
    impl Restore {
        fn finish(&mut self) -> Option<Vec<UnknownMember>> {
            let outer = self.0.take().unwrap_or_default();
            SINK.with(|s| std::mem::replace(&mut *s.borrow_mut(), outer))
        }
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            if self.0.is_some() {
                self.finish();
            }
        }
    }
    let mut restore = Restore(Some(SINK.with(|s| s.borrow_mut().replace(Vec::new()))));
    let r = decode();
    let found = restore.finish();
    (r, found.unwrap_or_default())
}

/// Whether a caller on this thread collects unknown members.
pub fn collecting() -> bool {
    SINK.with(|s| s.borrow().is_some())
}

/// Records an unknown member (generated decoders call this while
/// [`collecting`]).
pub fn record_unknown(type_name: &'static str, key: String, value: Value) {
    record(UnknownMember::new(
        type_name,
        key,
        value,
        UnknownKind::Member,
    ));
}

/// Records an unknown member or a mismatched one.
pub fn record(m: UnknownMember) {
    SINK.with(|s| {
        if let Some(v) = s.borrow_mut().as_mut() {
            v.push(m);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_decode_leaves_no_mode_behind() {
        let r = std::panic::catch_unwind(|| strict_enum_values(|| panic!("inside a decode")));
        assert!(r.is_err());
        assert!(!strict(), "strict mode outlived the panicking decode");
        let r = std::panic::catch_unwind(|| collect_unknown_members(|| panic!("inside a decode")));
        assert!(r.is_err());
        assert!(!collecting(), "collecting outlived the panicking decode");
    }

    #[test]
    fn nested_collections_are_separate() {
        let ((_, inner), outer) = collect_unknown_members(|| {
            record_unknown("A", "a".into(), Value::Null);
            let inner = collect_unknown_members(|| record_unknown("B", "b".into(), Value::Null));
            record_unknown("C", "c".into(), Value::Null);
            inner
        });
        assert_eq!(inner.iter().map(|m| m.type_name).collect::<Vec<_>>(), ["B"]);
        assert_eq!(
            outer.iter().map(|m| m.type_name).collect::<Vec<_>>(),
            ["A", "C"]
        );
    }
}
