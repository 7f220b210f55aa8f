//! [`Extra`]: the members of an object that its generated type does not
//! know, kept so that a value a newer QEMU sent re-encodes to the same
//! JSON.

use serde_json::{Map, Value};

/// Members a decoded object had that its type does not know (a newer
/// QEMU's), and members whose value the type cannot hold (a `null` where
/// the bindings expect a string, after a newer QEMU widened the type):
/// kept here, in the order met, and encoded again with the value, so
/// that nothing QEMU sent is lost. Empty (and allocation-free) for
/// everything the covered QEMU versions send.
///
/// Every generated struct has one, as its field `extra`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra(Option<Box<Map<String, Value>>>);

impl Extra {
    /// Whether nothing was kept.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }

    /// How many members were kept.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }

    /// A kept member's value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.as_ref()?.get(key)
    }

    /// The kept members.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().flat_map(|m| m.iter())
    }

    /// Keeps a member (replacing one of the same key).
    pub fn insert(&mut self, key: String, value: Value) {
        self.0.get_or_insert_with(Box::default).insert(key, value);
    }

    /// Removes a kept member, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let m = self.0.as_mut()?;
        let v = m.remove(key);
        if m.is_empty() {
            self.0 = None;
        }
        v
    }
}

impl std::hash::Hash for Extra {
    /// The keys, sorted (equal values have equal keys; values themselves
    /// are not hashable).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut keys: Vec<&String> = self.iter().map(|(k, _)| k).collect();
        keys.sort();
        keys.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_until_something_is_kept() {
        let mut e = Extra::default();
        assert!(e.is_empty());
        assert_eq!(std::mem::size_of::<Extra>(), std::mem::size_of::<usize>());
        e.insert("x".into(), Value::Null);
        assert_eq!((e.len(), e.get("x")), (1, Some(&Value::Null)));
        assert_eq!(e.remove("x"), Some(Value::Null));
        assert!(e.is_empty() && e == Extra::default());
    }
}
