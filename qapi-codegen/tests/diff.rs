//! `qapi-codegen diff`: every section on small schemas, and the real
//! changelogs 7.2.0 → 10.0.2 → 10.2.2.

use std::process::Command;

use qapi_gen::diff::{Section, diff};
use qapi_gen::manifest::load_any;
use qapi_gen::{MemLoader, Schema};

fn load(text: &str) -> Schema {
    let mut mem = MemLoader::new();
    mem.insert("s.json", text);
    Schema::load_with(&mem, "s.json").unwrap_or_else(|e| panic!("{e}"))
}

fn lines(d: &qapi_gen::diff::Diff, s: Section) -> Vec<String> {
    d.section(s).map(|c| c.text.clone()).collect()
}

#[test]
fn every_kind_of_change_is_listed() {
    let old = load(
        "{ 'enum': 'Color', 'data': ['red', 'blue'] }
         { 'struct': 'Info', 'data': { 'a': 'int', 'gone': 'str', '*c': 'int', 'd': 'Color',
                                       'e': { 'type': 'int', 'if': 'CONFIG_E' } } }
         { 'struct': 'OldName', 'data': { 'x': 'int' } }
         { 'command': 'query-info', 'returns': 'Info' }
         { 'command': 'query-thing', 'returns': 'OldName' }
         { 'command': 'removed-cmd' }
         { 'event': 'OLD_EVENT' }
         { 'command': 'flagged', 'data': { 'arg': 'int' } }",
    );
    let new = load(
        "{ 'enum': 'Color', 'data': ['red', 'green'] }
         { 'struct': 'Info', 'data': { 'a': 'str', 'added': 'int', 'c': 'int', 'd': 'Color',
                                       'e': 'int' } }
         { 'struct': 'NewName', 'data': { 'x': 'int' } }
         { 'command': 'query-info', 'returns': 'Info' }
         { 'command': 'query-thing', 'returns': 'NewName' }
         { 'command': 'added-cmd' }
         { 'event': 'NEW_EVENT' }
         { 'command': 'flagged', 'data': { 'arg': 'int', '*more': 'bool' },
           'features': ['deprecated'] }",
    );
    let d = diff(&old, "1.0", &new, "2.0");
    assert_eq!(
        lines(&d, Section::Commands),
        ["Added command `added-cmd`", "Removed command `removed-cmd`"]
    );
    assert_eq!(
        lines(&d, Section::Events),
        ["Added event `NEW_EVENT`", "Removed event `OLD_EVENT`"]
    );
    assert_eq!(
        lines(&d, Section::Types),
        ["Renamed struct `OldName` → `NewName`"]
    );
    let members = lines(&d, Section::Members);
    for want in [
        "`Info`: added member `added` (required)",
        "`Info`: removed member `gone`",
        "`Color`: added value `green`",
        "`Color`: removed value `blue`",
        "command `flagged` arguments: added member `more` (optional)",
    ] {
        assert!(
            members.iter().any(|m| m == want),
            "{want} not in {members:?}"
        );
    }
    assert_eq!(
        lines(&d, Section::TypeChanges),
        ["`Info` member `a`: `int` → `str`"]
    );
    assert_eq!(
        lines(&d, Section::Optionality),
        ["`Info` member `c`: optional → required"]
    );
    assert_eq!(
        lines(&d, Section::Features),
        ["command `flagged`: now `deprecated`"]
    );
    assert_eq!(
        lines(&d, Section::Conditions),
        ["`Info` member `e`: `if` `CONFIG_E` → none"]
    );
    let md = d.to_markdown();
    assert!(
        md.starts_with("## QEMU 1.0 → 2.0\n\n### Commands (2)\n\n- Added command `added-cmd`\n"),
        "{md}"
    );
    // The same schema: nothing.
    assert_eq!(
        diff(&new, "2.0", &new, "2.0").to_markdown(),
        "## QEMU 2.0 → 2.0\n\nNo changes.\n"
    );
}

fn schema(v: &str) -> String {
    format!(
        "{}/../schema/{v}/qapi/qapi-schema.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn the_real_changelogs() {
    let (a, b, c) = (
        load_any(schema("7.2.0")).expect("7.2.0"),
        load_any(schema("10.0.2")).expect("10.0.2"),
        load_any(schema("10.2.2")).expect("10.2.2"),
    );
    let first = diff(&a, "7.2.0", &b, "10.0.2");
    let cmds = lines(&first, Section::Commands);
    assert!(
        cmds.contains(&"Added command `query-cryptodev`".to_string()),
        "{cmds:?}"
    );
    assert!(cmds.contains(&"Removed command `x-query-profile`".to_string()));
    assert!(
        lines(&first, Section::Members)
            .contains(&"`MachineInfo`: added member `acpi` (required)".to_string())
    );
    assert!(
        lines(&first, Section::Types)
            .contains(&"Renamed enum `QCryptoHashAlgorithm` → `QCryptoHashAlgo`".to_string())
    );
    let second = diff(&b, "10.0.2", &c, "10.2.2");
    assert!(
        lines(&second, Section::Commands)
            .contains(&"Removed command `x-query-opcount`".to_string())
    );
    assert!(
        lines(&second, Section::Types)
            .contains(&"Renamed struct `TargetInfo` → `QemuTargetInfo`".to_string())
    );
    assert!(
        lines(&second, Section::Members)
            .contains(&"`ChardevSocket`: removed member `reconnect`".to_string())
    );
    assert!(lines(&second, Section::Optionality).contains(
        &"`CpuModelExpansionInfo` member `deprecated-props`: required → optional".to_string()
    ));
    assert!(
        lines(&second, Section::Conditions)
            .contains(&"command `dump-skeys`: `if` `TARGET_S390X` → none".to_string())
    );
    assert!(!lines(&second, Section::Features).is_empty());
}

#[test]
fn the_command_line_prints_the_changelog() {
    let out = Command::new(env!("CARGO_BIN_EXE_qapi-gen"))
        .args(["diff", &schema("10.0.2"), &schema("10.2.2")])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("## QEMU 10.0.2 → 10.2.2\n"), "{text}");
    assert!(text.contains("- Removed command `x-query-opcount`\n"));
    let bad = Command::new(env!("CARGO_BIN_EXE_qapi-gen"))
        .args(["diff", &schema("10.0.2")])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2), "a missing NEW is a usage error");
}
