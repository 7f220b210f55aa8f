//! The values of QAPI's Python-flavoured JSON: strings, booleans, arrays
//! and objects (keys kept in source order).

/// A parsed schema value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `'text'`
    Str(String),
    /// `true` / `false`
    Bool(bool),
    /// `[ ... ]`
    List(Vec<Value>),
    /// `{ 'key': value, ... }`, keys unique, in source order.
    Dict(Dict),
}

/// An object: unique keys in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dict(pub Vec<(String, Value)>);

impl Dict {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The string value of `key`, if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The boolean value of `key`, if it is a boolean.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        match self.get(key) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Python's `repr()` of the value, as QEMU's test output prints
    /// conditions: `{'all': ['A', 'B']}`.
    pub fn python_repr(&self) -> String {
        let mut out = String::new();
        self.repr_into(&mut out);
        out
    }

    fn repr_into(&self, out: &mut String) {
        match self {
            Value::Str(s) => {
                out.push('\'');
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\'' => out.push_str("\\'"),
                        c => out.push(c),
                    }
                }
                out.push('\'');
            }
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.repr_into(out);
                }
                out.push(']');
            }
            Value::Dict(d) => {
                out.push('{');
                for (i, (k, v)) in d.0.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    Value::Str(k.clone()).repr_into(out);
                    out.push_str(": ");
                    v.repr_into(out);
                }
                out.push('}');
            }
        }
    }
}
