//! A command checked against one QEMU version's schema, as that QEMU's
//! QMP input visitor would check it, with its words: an unknown command,
//! a member missing, unexpected (unknown, or one this version lacks), of
//! the wrong JSON type, an integer out of range, an enum value this
//! version does not accept. Built on the bindings' tables: `TYPES` (every
//! type's shape), `COMMANDS` (each command's versions) and `PRESENCE`
//! (what only some versions have).

use std::collections::HashMap;
use std::sync::OnceLock;

use qmp_types::rt::{CommandMeta, TypeInfo};
use serde_json::{Map, Value};

type PresenceList = Vec<(&'static str, &'static [&'static str])>;

/// The index of a `PRESENCE` key's kind, by its separator.
fn kind(sep: u8) -> usize {
    match sep {
        b'.' => 0,
        b'=' => 1,
        _ => 2,
    }
}

/// One protocol's tables, indexed once.
pub(crate) struct Tables {
    pub(crate) versions: &'static [&'static str],
    commands: HashMap<&'static str, &'static CommandMeta>,
    types: HashMap<&'static str, &'static TypeInfo>,
    /// `PRESENCE` by owner, then by kind ([`kind`]): `Type` → `.` →
    /// `[(member, versions)]`.
    presence_by_owner: HashMap<&'static str, [PresenceList; 3]>,
    /// Commands that take any arguments beside their declared ones.
    open: &'static [&'static str],
}

impl Tables {
    fn new(
        versions: &'static [&'static str],
        commands: &'static [CommandMeta],
        types: &'static [(&'static str, TypeInfo)],
        presence: &'static [(&'static str, &'static [&'static str])],
        open: &'static [&'static str],
    ) -> Tables {
        let mut presence_by_owner: HashMap<_, [PresenceList; 3]> = HashMap::new();
        for (key, versions) in presence {
            // A type of its own (`Accelerator`) is looked up by name.
            if let Some(at) = key.find(['.', '=', '|']) {
                presence_by_owner.entry(&key[..at]).or_default()[kind(key.as_bytes()[at])]
                    .push((&key[at + 1..], versions));
            }
        }
        Tables {
            versions,
            commands: commands.iter().map(|c| (c.name, c)).collect(),
            types: types.iter().map(|(n, t)| (*n, t)).collect(),
            presence_by_owner,
            open,
        }
    }

    /// QEMU's monitor.
    pub(crate) fn qmp() -> &'static Tables {
        static T: OnceLock<Tables> = OnceLock::new();
        T.get_or_init(|| {
            Tables::new(
                qmp_types::VERSIONS,
                qmp_types::COMMANDS,
                qmp_types::TYPES,
                qmp_types::PRESENCE,
                qmp_types::OPEN_COMMANDS,
            )
        })
    }

    /// The guest agent.
    pub(crate) fn qga() -> &'static Tables {
        static T: OnceLock<Tables> = OnceLock::new();
        T.get_or_init(|| {
            Tables::new(
                qmp_types::qga::VERSIONS,
                qmp_types::qga::COMMANDS,
                qmp_types::qga::TYPES,
                qmp_types::qga::PRESENCE,
                qmp_types::qga::OPEN_COMMANDS,
            )
        })
    }

    /// The command `name`, if version `version` has it.
    pub(crate) fn command(&self, name: &str, version: &str) -> Option<&'static CommandMeta> {
        let c = *self.commands.get(name)?;
        (c.versions.is_empty() || c.versions.contains(&version)).then_some(c)
    }

    /// Whether `version` has `owner`, `sep`, `item` (`Type.member`,
    /// `Enum=value`, `Union|branch`): everything `PRESENCE` does not list
    /// is in every version.
    fn has(&self, owner: &str, sep: u8, item: &str, version: &str) -> bool {
        Presence::of(self, owner, sep).has(item, version)
    }
}

/// What `PRESENCE` lists of one owner and kind (`Type.`, `Enum=`,
/// `Union|`), looked up once per object checked: most owners have
/// nothing listed.
#[derive(Clone, Copy)]
struct Presence<'t>(&'t [(&'static str, &'static [&'static str])]);

impl<'t> Presence<'t> {
    fn of(tables: &'t Tables, owner: &str, sep: u8) -> Presence<'t> {
        Presence(
            tables
                .presence_by_owner
                .get(owner)
                .map_or(&[], |lists| lists[kind(sep)].as_slice()),
        )
    }

    fn has(self, item: &str, version: &str) -> bool {
        match self.0.iter().find(|(i, _)| *i == item) {
            Some((_, versions)) => versions.contains(&version),
            None => true,
        }
    }
}

/// Why QEMU refuses a command: its error class and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) class: &'static str,
    pub(crate) desc: String,
}

impl Refusal {
    fn generic(desc: String) -> Refusal {
        Refusal {
            class: "GenericError",
            desc,
        }
    }
}

/// Checks command `name` with `args` against `version`'s schema.
pub(crate) fn check_command(
    tables: &Tables,
    version: &str,
    name: &str,
    args: Option<&Map<String, Value>>,
) -> Result<&'static CommandMeta, Refusal> {
    let Some(meta) = tables.command(name, version) else {
        return Err(Refusal {
            class: "CommandNotFound",
            desc: format!("The command {name} has not been found"),
        });
    };
    let empty = Map::new();
    let args = args.unwrap_or(&empty);
    let walk = Walk {
        tables,
        version,
        open: tables.open.contains(&name),
    };
    match meta.arg_type {
        Some(ty) => walk
            .object(ty, args, &Path::Root)
            .map_err(Refusal::generic)?,
        None => {
            if let Some(k) = args.keys().next() {
                return Err(Refusal::generic(format!("Parameter '{k}' is unexpected")));
            }
        }
    }
    Ok(meta)
}

struct Walk<'t> {
    tables: &'t Tables,
    version: &'t str,
    /// The command takes undeclared arguments (at the top level).
    open: bool,
}

/// Where a value is, as QEMU names it in errors (`a.b[2].c`); written
/// out only for an error.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn is_root(&self) -> bool {
        matches!(self, Path::Root)
    }
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Member(Path::Root, name) => f.write_str(name),
            Path::Member(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn wrong_type(path: &Path<'_>, expected: &str) -> String {
    format!("Invalid parameter type for '{path}', expected: {expected}")
}

/// What JSON type a value of QAPI type `ty` has (`None`: any).
fn json_kind(tables: &Tables, ty: &str) -> Option<&'static str> {
    Some(match ty {
        "str" => "string",
        "number" => "number",
        "bool" => "boolean",
        "null" => "null",
        "any" => return None,
        t if int_range(t).is_some() => "integer",
        t => match tables.types.get(t) {
            Some(TypeInfo::Enum { .. }) => "string",
            Some(TypeInfo::Object { .. }) => "object",
            Some(TypeInfo::Array { .. }) => "array",
            _ => return None,
        },
    })
}

/// The range of QAPI integer type `ty`, and its C name for errors.
fn int_range(ty: &str) -> Option<(i128, i128, &'static str)> {
    Some(match ty {
        "int" | "int64" => (i64::MIN.into(), i64::MAX.into(), "int64_t"),
        "int8" => (i8::MIN.into(), i8::MAX.into(), "int8_t"),
        "int16" => (i16::MIN.into(), i16::MAX.into(), "int16_t"),
        "int32" => (i32::MIN.into(), i32::MAX.into(), "int32_t"),
        "uint8" => (0, u8::MAX.into(), "uint8_t"),
        "uint16" => (0, u16::MAX.into(), "uint16_t"),
        "uint32" => (0, u32::MAX.into(), "uint32_t"),
        "uint64" | "size" => (0, u64::MAX.into(), "uint64_t"),
        _ => return None,
    })
}

fn is_kind(v: &Value, kind: &str) -> bool {
    match kind {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => true,
    }
}

impl Walk<'_> {
    /// An object of type `ty` (a struct or union).
    fn object(&self, ty: &str, map: &Map<String, Value>, path: &Path<'_>) -> Result<(), String> {
        let Some(TypeInfo::Object {
            members,
            tag,
            branches,
        }) = self.tables.types.get(ty).copied()
        else {
            return Ok(());
        };
        let mut known: Vec<&str> = Vec::new();
        self.members(ty, members, map, path, &mut known)?;
        if let Some(tag) = tag
            && let Some(value) = map.get(*tag).and_then(Value::as_str)
            && let Some((_, bty)) = branches.iter().find(|(v, _)| *v == value)
            && self.tables.has(ty, b'|', value, self.version)
            && let Some(TypeInfo::Object { members, .. }) = self.tables.types.get(bty).copied()
        {
            self.members(bty, members, map, path, &mut known)?;
        }
        if self.open && path.is_root() {
            return Ok(());
        }
        match map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!(
                "Parameter '{}' is unexpected",
                Path::Member(path, k)
            )),
            None => Ok(()),
        }
    }

    /// The members `owner` declares, in schema order (QEMU's order of
    /// checks): those of another version are left for "unexpected".
    fn members<'m>(
        &self,
        owner: &str,
        members: &'m [qmp_types::rt::MemberInfo],
        map: &Map<String, Value>,
        path: &Path<'_>,
        known: &mut Vec<&'m str>,
    ) -> Result<(), String> {
        let presence = Presence::of(self.tables, owner, b'.');
        for m in members {
            if !presence.has(m.name, self.version) {
                continue;
            }
            known.push(m.name);
            let p = Path::Member(path, m.name);
            match map.get(m.name) {
                Some(v) => self.value(m.type_name, v, &p)?,
                None if !m.optional => return Err(format!("Parameter '{p}' is missing")),
                None => {}
            }
        }
        Ok(())
    }

    /// A value of QAPI type `ty` at `path`.
    fn value(&self, ty: &str, v: &Value, path: &Path<'_>) -> Result<(), String> {
        if let Some((lo, hi, cname)) = int_range(ty) {
            let n = v
                .as_i64()
                .map(i128::from)
                .or_else(|| v.as_u64().map(i128::from));
            return match n {
                None => Err(wrong_type(path, "integer")),
                Some(n) if n < lo || n > hi => Err(format!("Parameter '{path}' expects {cname}")),
                Some(_) => Ok(()),
            };
        }
        match ty {
            "any" => return Ok(()),
            "str" | "number" | "bool" | "null" => {
                let kind = json_kind(self.tables, ty).unwrap_or("any");
                return if is_kind(v, kind) {
                    Ok(())
                } else {
                    Err(wrong_type(path, kind))
                };
            }
            _ => {}
        }
        match self.tables.types.get(ty).copied() {
            Some(TypeInfo::Enum { values }) => {
                let Some(s) = v.as_str() else {
                    return Err(wrong_type(path, "string"));
                };
                if values.contains(&s) && self.tables.has(ty, b'=', s, self.version) {
                    Ok(())
                } else {
                    Err(format!("Parameter '{path}' does not accept value '{s}'"))
                }
            }
            Some(TypeInfo::Object { .. }) => match v.as_object() {
                Some(map) => self.object(ty, map, path),
                None => Err(wrong_type(path, "object")),
            },
            Some(TypeInfo::Array { element }) => match v.as_array() {
                Some(items) => items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, item)| self.value(element, item, &Path::Index(path, i))),
                None => Err(wrong_type(path, "array")),
            },
            Some(TypeInfo::Alternate { branches }) => {
                let pick = branches.iter().find(|b| {
                    self.tables.has(ty, b'|', b, self.version)
                        && match json_kind(self.tables, b) {
                            None => true,
                            // A number branch takes integers too.
                            Some("number") => v.is_number(),
                            Some(kind) => is_kind(v, kind),
                        }
                });
                match pick {
                    Some(b) => self.value(b, v, path),
                    None => Err(wrong_type(path, ty)),
                }
            }
            // A type the tables don't describe: nothing to check.
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(version: &str, name: &str, args: Value) -> Result<(), String> {
        check_command(Tables::qmp(), version, name, args.as_object())
            .map(|_| ())
            .map_err(|r| format!("{}: {}", r.class, r.desc))
    }

    #[test]
    fn presence_by_owner_answers_as_the_table() {
        let t = Tables::qmp();
        let presence = qmp_types::PRESENCE;
        let by_text =
            |key: &str, version: &str| match presence.binary_search_by(|(k, _)| (*k).cmp(key)) {
                Ok(i) => presence[i].1.contains(&version),
                Err(_) => true,
            };
        let mut absent = 0;
        for (key, _) in presence {
            // A type of its own (`Accelerator`) is looked up by name.
            let Some(at) = key.find(['.', '=', '|']) else {
                continue;
            };
            let (owner, sep, item) = (&key[..at], key.as_bytes()[at], &key[at + 1..]);
            for version in t.versions {
                let found = t.has(owner, sep, item, version);
                assert_eq!(found, by_text(key, version), "{key} in {version}");
                absent += usize::from(!found);
                // Near misses: the same answer as the key written out.
                for (o, i) in [
                    (owner, &format!("{item}x")[..]),
                    (&format!("{owner}x")[..], item),
                    (owner, &item[..item.len() - 1]),
                    (&owner[..owner.len() - 1], item),
                ] {
                    let text = format!("{o}{}{i}", sep as char);
                    assert_eq!(t.has(o, sep, i, version), by_text(&text, version), "{text}");
                }
            }
        }
        assert!(
            absent > 100,
            "the tables list what some versions lack: {absent}"
        );
    }

    #[test]
    fn qemu_s_words_for_each_kind_of_mistake() {
        let v = "10.0.2";
        assert_eq!(check(v, "device_del", json!({"id": "x"})), Ok(()));
        // device_add takes a device's properties beside its own.
        assert_eq!(
            check(
                v,
                "device_add",
                json!({"driver": "virtio-blk-pci", "drive": "d0"})
            ),
            Ok(())
        );
        assert_eq!(
            check(v, "device_add", json!({"drive": "d0"})),
            Err("GenericError: Parameter 'driver' is missing".into())
        );
        assert_eq!(
            check(v, "no-such", json!({})),
            Err("CommandNotFound: The command no-such has not been found".into())
        );
        assert_eq!(
            check(v, "device_del", json!({})),
            Err("GenericError: Parameter 'id' is missing".into())
        );
        assert_eq!(
            check(v, "device_del", json!({"id": 1})),
            Err("GenericError: Invalid parameter type for 'id', expected: string".into())
        );
        assert_eq!(
            check(v, "query-status", json!({"foo": 1})),
            Err("GenericError: Parameter 'foo' is unexpected".into())
        );
        assert_eq!(
            check(
                v,
                "blockdev-add",
                json!({"driver": "no-such-driver", "node-name": "n"})
            ),
            Err("GenericError: Parameter 'driver' does not accept value 'no-such-driver'".into())
        );
        // Nested, through a union branch and an alternate.
        assert_eq!(
            check(
                v,
                "blockdev-add",
                json!({"driver": "qcow2", "node-name": "d", "file": {"driver": "file"}})
            ),
            Err("GenericError: Parameter 'file.filename' is missing".into())
        );
        assert_eq!(
            check(
                v,
                "blockdev-add",
                json!({"driver": "qcow2", "node-name": "d", "file": 7})
            ),
            Err("GenericError: Invalid parameter type for 'file', expected: BlockdevRef".into())
        );
        assert_eq!(
            check(
                v,
                "blockdev-add",
                json!({"driver": "qcow2", "node-name": "d", "file": "f0"})
            ),
            Ok(())
        );
        assert_eq!(
            check(
                v,
                "block-job-set-speed",
                json!({"device": "j", "speed": 1.5})
            ),
            Err("GenericError: Invalid parameter type for 'speed', expected: integer".into())
        );
    }

    #[test]
    fn what_a_version_lacks_is_refused_as_that_version_would() {
        // `snapshot-save` came in QEMU 6.0, so all three have it; the
        // `Accelerator` enum only 10.2.2.
        let only_newest = qmp_types::PRESENCE
            .iter()
            .find(|(k, v)| !k.contains(['.', '=', '|']) && *v == ["10.2.2"])
            .map(|(k, _)| *k);
        assert!(only_newest.is_some());
        // An argument only newer versions have: blockdev-mirror's
        // `target-is-zero` (10.1).
        let args = json!({"device": "a", "target": "b", "sync": "full", "target-is-zero": true});
        assert_eq!(check("10.2.2", "blockdev-mirror", args.clone()), Ok(()));
        assert_eq!(
            check("10.0.2", "blockdev-mirror", args),
            Err("GenericError: Parameter 'target-is-zero' is unexpected".into())
        );
        // A command only newer versions have.
        let newer: Vec<&str> = qmp_types::COMMANDS
            .iter()
            .filter(|c| !c.versions.is_empty() && !c.versions.contains(&"7.2.0"))
            .map(|c| c.name)
            .collect();
        let name = newer.first().expect("a command 7.2 lacks");
        assert!(check("7.2.0", name, json!({})).is_err_and(|e| e.starts_with("CommandNotFound")));
    }
}
