//! A command checked against one QEMU version's schema, as that QEMU's
//! QMP input visitor would check it, with its words: an unknown command,
//! or what [`crate::check`] finds in its arguments (a member this version
//! lacks is unexpected). Built on the bindings' tables: `TYPES` (every
//! type's shape), `COMMANDS` (each command's versions) and `PRESENCE`
//! (what only some versions have).

use std::collections::HashMap;
use std::sync::OnceLock;

use qmp_types::rt::{CommandMeta, TypeInfo};
use serde_json::{Map, Value};

use crate::check::{Member, Refusal as CheckRefusal, Shape, Shapes, builtin, check_args};

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

    /// The shape of QAPI type `ty`, if the tables describe it.
    pub(crate) fn type_info(&self, ty: &str) -> Option<TypeInfo> {
        self.types.get(ty).copied().copied()
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
    let shapes = AtVersion { tables, version };
    check_args(
        &shapes,
        meta.arg_type,
        tables.open.contains(&name),
        args.unwrap_or(&empty),
    )
    .map_err(|r| Refusal {
        class: "GenericError",
        desc: r.to_string(),
    })?;
    Ok(meta)
}

/// The tables as one version has them.
struct AtVersion<'t> {
    tables: &'t Tables,
    version: &'t str,
}

impl AtVersion<'_> {
    fn info(&self, ty: &str) -> Option<TypeInfo> {
        self.tables.type_info(ty)
    }
}

impl Shapes for AtVersion<'_> {
    fn shape(&self, ty: &str) -> Shape<'_> {
        if let Some(s) = builtin(ty) {
            return s;
        }
        match self.info(ty) {
            Some(TypeInfo::Enum { .. }) => Shape::Enum,
            Some(TypeInfo::Object { .. }) => Shape::Object,
            Some(TypeInfo::Array { element }) => Shape::Array(element),
            Some(TypeInfo::Alternate { .. }) => Shape::Alternate,
            // A type the tables don't describe: nothing to check.
            _ => Shape::Any,
        }
    }

    fn enum_has(&self, ty: &str, value: &str) -> bool {
        matches!(self.info(ty), Some(TypeInfo::Enum { values }) if values.contains(&value))
            && self.tables.has(ty, b'=', value, self.version)
    }

    fn members<'s>(
        &'s self,
        ty: &str,
        each: &mut dyn FnMut(Member<'s>) -> Result<(), CheckRefusal>,
    ) -> Result<(), CheckRefusal> {
        let Some(TypeInfo::Object { members, .. }) = self.info(ty) else {
            return Ok(());
        };
        // Those of another version are left for "unexpected".
        let presence = Presence::of(self.tables, ty, b'.');
        for m in members {
            if presence.has(m.name, self.version) {
                each(Member {
                    name: m.name,
                    ty: m.type_name,
                    optional: m.optional,
                })?;
            }
        }
        Ok(())
    }

    fn tag(&self, ty: &str) -> Option<&str> {
        match self.info(ty) {
            Some(TypeInfo::Object { tag, .. }) => tag,
            _ => None,
        }
    }

    fn branch(&self, ty: &str, value: &str) -> Option<&str> {
        let Some(TypeInfo::Object { branches, .. }) = self.info(ty) else {
            return None;
        };
        let (_, bty) = branches.iter().find(|(v, _)| *v == value)?;
        self.tables
            .has(ty, b'|', value, self.version)
            .then_some(*bty)
    }

    fn alternatives(&self, ty: &str) -> Vec<&str> {
        match self.info(ty) {
            Some(TypeInfo::Alternate { branches }) => branches
                .iter()
                .copied()
                .filter(|b| self.tables.has(ty, b'|', b, self.version))
                .collect(),
            _ => Vec::new(),
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
