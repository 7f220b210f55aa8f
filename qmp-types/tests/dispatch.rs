//! Name-based dispatch: from a wire name to the typed command or event
//! (`with_command`, `with_event`, `COMMAND_ARGS`), as a command line or a
//! bridge uses it.

use qmp_types::rt::{Command, CommandVisitor, EventVisitor, MemberInfo, Qmp, TypeInfo};
use qmp_types::{COMMAND_ARGS, COMMAND_DOCS, COMMANDS, EVENTS, Event, with_command, with_event};
use serde_json::{Value, json};

/// Decodes JSON arguments into the named command and encodes it back (what
/// would be sent), or says which member is wrong.
struct Decode(Value);

impl CommandVisitor<Qmp> for Decode {
    type Output = Result<(String, Value), String>;
    fn visit<C>(self) -> Self::Output
    where
        C: Command<Protocol = Qmp> + serde::de::DeserializeOwned + Send + Sync + 'static,
        C::Returns: serde::Serialize + Send + 'static,
    {
        let c: C = serde_path_to_error::deserialize(self.0)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
        Ok((
            C::NAME.to_string(),
            serde_json::to_value(&c).map_err(|e| e.to_string())?,
        ))
    }
}

/// Decodes a reply into the named command's reply type and back.
struct Reply(Value);

impl CommandVisitor<Qmp> for Reply {
    type Output = Result<Value, String>;
    fn visit<C>(self) -> Self::Output
    where
        C: Command<Protocol = Qmp> + serde::de::DeserializeOwned + Send + Sync + 'static,
        C::Returns: serde::Serialize + Send + 'static,
    {
        let r: C::Returns = serde_json::from_value(self.0).map_err(|e| e.to_string())?;
        serde_json::to_value(&r).map_err(|e| e.to_string())
    }
}

struct EventName;

impl EventVisitor for EventName {
    type Output = &'static str;
    fn visit<E>(self) -> Self::Output
    where
        E: Event + serde::Serialize + Send + Sync + 'static,
    {
        E::NAME
    }
}

#[test]
fn commands_by_name() {
    let (name, sent) = with_command("device_del", Decode(json!({"id": "tab0"})))
        .expect("known")
        .expect("valid arguments");
    assert_eq!((name.as_str(), sent), ("device_del", json!({"id": "tab0"})));
    // Bad arguments are caught before sending, with the member's path.
    let e = with_command(
        "blockdev-add",
        Decode(
            json!({"driver": "qcow2", "node-name": "n", "file": {"driver": "file", "filename": 5}}),
        ),
    )
    .expect("known")
    .expect_err("a number for a file name");
    assert!(e.contains("filename"), "{e}");
    let e = with_command("device_del", Decode(json!({})))
        .expect("known")
        .expect_err("missing id");
    assert!(e.contains("missing field `id`"), "{e}");
    assert!(with_command("no-such-command", Decode(json!({}))).is_none());
    // Replies come back as JSON through the typed reply.
    let r = with_command(
        "query-status",
        Reply(json!({"running": true, "status": "running"})),
    )
    .expect("known")
    .expect("decodes");
    assert_eq!(r, json!({"running": true, "status": "running"}));
    // Every command is reachable by name.
    for meta in COMMANDS {
        assert!(
            with_command(meta.name, Reply(Value::Null)).is_some(),
            "{}",
            meta.name
        );
    }
}

#[test]
fn events_by_name() {
    assert_eq!(with_event("STOP", EventName), Some("STOP"));
    assert_eq!(with_event("NOPE", EventName), None);
    for meta in EVENTS {
        assert_eq!(with_event(meta.name, EventName), Some(meta.name));
    }
}

#[test]
fn argument_schemas_for_completion() {
    let args = |name: &str| -> &[MemberInfo] {
        COMMAND_ARGS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .expect("listed")
    };
    assert_eq!(COMMAND_ARGS.len(), COMMANDS.len());
    let del = args("device_del");
    assert_eq!(del.len(), 1);
    let MemberInfo {
        name,
        type_name,
        optional,
        doc,
    } = del[0];
    assert_eq!((name, type_name, optional), ("id", "str", false));
    assert!(doc.contains("device"), "the schema's description: {doc}");
    // Members of a named argument type carry that type's docs.
    let speed = args("blockdev-backup")
        .iter()
        .find(|a| a.name == "speed")
        .expect("speed");
    assert!(speed.doc.contains("bytes per second"), "{}", speed.doc);
    // The commands' own docs, for `help`.
    let help = COMMAND_DOCS
        .iter()
        .find(|(n, _)| *n == "device_del")
        .map(|(_, d)| *d)
        .expect("documented");
    assert!(help.contains("Remove a device"), "{help}");
    assert_eq!(COMMAND_DOCS.len(), COMMANDS.len());
    // Enum values by QAPI type name, for completing `sync=`.
    let sync = args("blockdev-backup")
        .iter()
        .find(|a| a.name == "sync")
        .expect("sync");
    // Types by QAPI name, for completing `sync=` and nested arguments.
    let ty = |name: &str| {
        qmp_types::TYPES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .expect("listed")
    };
    let TypeInfo::Enum { values } = ty(sync.type_name) else {
        panic!("MirrorSyncMode is an enum");
    };
    assert!(
        values.contains(&"full") && values.contains(&"incremental"),
        "{values:?}"
    );
    // A command's argument type, and a union's branches.
    let meta = COMMANDS
        .iter()
        .find(|m| m.name == "blockdev-add")
        .expect("listed");
    assert_eq!(meta.arg_type, Some("BlockdevOptions"));
    let TypeInfo::Object {
        members,
        tag,
        branches,
    } = ty("BlockdevOptions")
    else {
        panic!("a union");
    };
    assert_eq!(tag, Some("driver"));
    assert!(members.iter().any(|m| m.name == "node-name"));
    assert!(branches.contains(&("qcow2", "BlockdevOptionsQcow2")));
    let TypeInfo::Object { members, .. } = ty("BlockdevOptionsQcow2") else {
        panic!("a struct");
    };
    assert!(
        members
            .iter()
            .any(|m| m.name == "file" && m.type_name == "BlockdevRef")
    );
    assert!(matches!(ty("BlockdevRef"), TypeInfo::Alternate { .. }));
    assert!(matches!(ty("strList"), TypeInfo::Array { element: "str" }));
    let device_del = COMMANDS
        .iter()
        .find(|m| m.name == "device_del")
        .expect("listed");
    let implicit = device_del.arg_type.expect("has arguments");
    assert!(matches!(ty(implicit), TypeInfo::Object { members, .. } if members[0].name == "id"));
    let backup = args("blockdev-backup");
    assert!(
        backup
            .iter()
            .any(|a| a.name == "sync" && a.type_name == "MirrorSyncMode" && !a.optional)
    );
    assert!(backup.iter().any(|a| a.name == "speed" && a.optional));
    assert!(args("query-status").is_empty());
}

#[test]
fn strict_enum_values_refuse_what_lenient_decoding_keeps() {
    use qmp_types::MirrorSyncMode;
    use qmp_types::rt::strict_enum_values;
    // Replies from a newer QEMU: an unknown value is kept.
    let lenient: MirrorSyncMode = serde_json::from_value(json!("fulll")).expect("kept");
    assert_eq!(lenient, MirrorSyncMode::Unknown("fulll".into()));
    // Typed input: it is a mistake, named with the values there are.
    let strict = strict_enum_values(|| serde_json::from_value::<MirrorSyncMode>(json!("fulll")));
    let e = strict.expect_err("refused").to_string();
    assert!(
        e.contains("unknown variant `fulll`") && e.contains("`full`"),
        "{e}"
    );
    assert_eq!(
        strict_enum_values(|| serde_json::from_value::<MirrorSyncMode>(json!("full")))
            .expect("known"),
        MirrorSyncMode::Full
    );
    // The mode ends with the call.
    let after: MirrorSyncMode = serde_json::from_value(json!("x")).expect("lenient again");
    assert_eq!(after, MirrorSyncMode::Unknown("x".into()));
}
