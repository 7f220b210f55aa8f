//! Replies from a few fields: a JSON value of a QAPI type completed with
//! plainly fake values for every required member the test left out, so a
//! test scripts only what its code reads (`Expect::reply_with`).
//!
//! The fakes are valid for the schema and easy to spot: a string is
//! `"fake-<member>"`, a number 0, a boolean `false`, an enum its first
//! value, a list empty, an object its own required members, a union the
//! first branch (unless the test named one), an alternate its first
//! branch.

use qmp_types::rt::{MemberInfo, TypeInfo};
use serde_json::{Map, Value, json};

use super::schema::Tables;

/// How deep the filler follows required members (QEMU's types nest a
/// handful of levels; a cycle of required members can't be built).
const MAX_DEPTH: usize = 32;

/// `given` completed into a value of QAPI type `ty` (`name`: the member
/// it is, for a fake string).
pub(crate) fn complete(tables: &Tables, ty: &str, given: Option<Value>, name: &str) -> Value {
    fill(tables, ty, given, name, 0)
}

fn fill(tables: &Tables, ty: &str, given: Option<Value>, name: &str, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return given.unwrap_or(Value::Null);
    }
    match tables.type_info(ty) {
        Some(TypeInfo::Object {
            members,
            tag,
            branches,
        }) => {
            let mut obj = match given {
                Some(Value::Object(m)) => m,
                // Not an object: the test's own value, as it gave it.
                Some(other) => return other,
                None => Map::new(),
            };
            // A union: the branch the test named, else the first.
            if let Some(tag) = tag
                && !obj.contains_key(tag)
                && let Some((value, _)) = branches.first()
            {
                obj.insert(tag.to_string(), json!(value));
            }
            // The base's members and the chosen branch's.
            let mut all: Vec<&MemberInfo> = members.iter().collect();
            if let Some(tag) = tag {
                let chosen = obj.get(tag).and_then(Value::as_str).unwrap_or_default();
                if let Some((_, branch)) = branches.iter().find(|(v, _)| *v == chosen)
                    && let Some(TypeInfo::Object { members, .. }) = tables.type_info(branch)
                {
                    all.extend(members);
                }
            }
            // A required member is always there (the test's value, filled
            // inside, or a fake); an optional one only when the test gave it.
            for m in all {
                let have = obj.remove(m.name);
                if have.is_some() || !m.optional {
                    let v = fill(tables, m.type_name, have, m.name, depth + 1);
                    obj.insert(m.name.to_string(), v);
                }
            }
            Value::Object(obj)
        }
        Some(TypeInfo::Array { element }) => match given {
            Some(Value::Array(items)) => Value::Array(
                items
                    .into_iter()
                    .map(|i| fill(tables, element, Some(i), name, depth + 1))
                    .collect(),
            ),
            Some(other) => other,
            None => json!([]),
        },
        Some(TypeInfo::Enum { values }) => {
            given.unwrap_or_else(|| values.first().map_or(Value::Null, |v| json!(v)))
        }
        Some(TypeInfo::Alternate { branches }) => match given {
            Some(v) => v,
            None => branches
                .first()
                .map_or(Value::Null, |b| fill(tables, b, None, name, depth + 1)),
        },
        _ => given.unwrap_or_else(|| builtin_fake(ty, name)),
    }
}

/// A plainly fake value of built-in type `ty` for member `name`.
fn builtin_fake(ty: &str, name: &str) -> Value {
    match ty {
        "str" => json!(format!("fake-{name}")),
        "bool" => json!(false),
        "number" => json!(0.0),
        "null" => Value::Null,
        "any" => json!({}),
        t if t.ends_with("List") => json!([]),
        // Every integer type.
        _ => json!(0),
    }
}
