//! Each resolution the merge makes, on small schemas (one per version),
//! and the merge of the real schemas `schema/manifest.txt` lists.

use qapi_gen::manifest::{Manifest, Part};
use qapi_gen::rust::{Options, generate};
use qapi_gen::schema::{Key, NoteKind, Versioning};
use qapi_gen::{EntityKind, MemLoader, Schema};

fn load(text: &str) -> Schema {
    let mut mem = MemLoader::new();
    mem.insert("s.json", text);
    Schema::load_with(&mem, "s.json").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Merges versions "1.0.0", "2.0.0", ... (oldest first).
fn merge(texts: &[&str]) -> Schema {
    let list = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{}.0.0", i + 1), load(t)))
        .collect();
    Schema::merge(list).expect("merges")
}

fn v(s: &Schema) -> &Versioning {
    s.versioning.as_ref().expect("merged")
}

fn member<'s>(s: &'s Schema, ty: &str, name: &str) -> &'s qapi_gen::schema::Member {
    let id = s.lookup(ty).unwrap_or_else(|| panic!("no type {ty}"));
    let o = s.entity(id).as_object().expect("object");
    o.members
        .iter()
        .map(|&r| s.member(r))
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{ty} has no member {name}"))
}

fn notes(s: &Schema, kind: NoteKind) -> Vec<String> {
    v(s).notes
        .iter()
        .filter(|n| n.kind == kind)
        .map(|n| n.to_string())
        .collect()
}

/// The merged model generates Rust that parses.
fn generates(s: &Schema) -> String {
    let files = generate(s, &Options::default()).expect("generates");
    files.into_iter().map(|f| f.contents).collect()
}

#[test]
fn commands_events_and_values_are_the_union_with_their_versions() {
    let s = merge(&[
        "{ 'enum': 'Letter', 'data': ['a', 'old'] }
         { 'struct': 'Holder', 'data': { 'l': 'Letter' } }
         { 'command': 'gone', 'returns': 'Holder' }
         { 'event': 'OLD_EVENT' }
         { 'command': 'kept' }",
        "{ 'enum': 'Letter', 'data': ['a', 'new'] }
         { 'struct': 'Holder', 'data': { 'l': 'Letter' } }
         { 'command': 'added', 'returns': 'Holder' }
         { 'command': 'kept' }",
    ]);
    let vs = v(&s);
    assert_eq!(vs.labels, ["1.0.0", "2.0.0"]);
    assert_eq!(vs.names(vs.entity("gone")), ["1.0.0"]);
    assert_eq!(vs.names(vs.entity("OLD_EVENT")), ["1.0.0"]);
    assert_eq!(vs.names(vs.entity("added")), ["2.0.0"]);
    assert_eq!(vs.names(vs.entity("kept")), ["1.0.0", "2.0.0"]);
    assert_eq!(vs.names(vs.value("Letter", "old")), ["1.0.0"]);
    assert_eq!(vs.names(vs.value("Letter", "new")), ["2.0.0"]);
    assert_eq!(vs.names(vs.value("Letter", "a")), ["1.0.0", "2.0.0"]);
    let id = s.lookup("Letter").expect("Letter");
    let EntityKind::Enum { members, .. } = &s.entity(id).kind else {
        panic!("E is an enum")
    };
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a", "new", "old"]);
    let code = generates(&s);
    let flat: String = code.split_whitespace().collect();
    assert!(
        flat.contains("versions:[\"1.0.0\"]"),
        "versions in the metadata"
    );
    assert!(code.contains("Only in QEMU 1.0.0 of the supported 1.0.0, 2.0.0."));
    assert!(flat.contains("pubstaticVERSIONS:&[&str]=&[\"1.0.0\",\"2.0.0\"];"));
}

#[test]
fn a_member_is_required_only_where_every_version_requires_it() {
    let s = merge(&[
        "{ 'struct': 'Thing', 'data': { 'both': 'int', 'opt-then-req': 'int', 'only-old': 'int' } }
         { 'command': 'q', 'returns': 'Thing' }",
        "{ 'struct': 'Thing', 'data': { 'both': 'int', '*opt-then-req': 'int', 'only-new': 'int' } }
         { 'command': 'q', 'returns': 'Thing' }",
    ]);
    assert!(!member(&s, "Thing", "both").optional);
    assert!(member(&s, "Thing", "opt-then-req").optional);
    assert!(member(&s, "Thing", "only-old").optional);
    assert!(member(&s, "Thing", "only-new").optional);
    let made = notes(&s, NoteKind::MadeOptional);
    assert!(
        made.iter()
            .any(|n| n.contains("'only-new'") && n.contains("only in 2.0.0")),
        "{made:?}"
    );
    assert!(made.iter().any(|n| n.contains("'only-old'")), "{made:?}");
}

#[test]
fn members_under_if_in_any_version_are_optional() {
    let s = merge(&[
        "{ 'struct': 'Thing', 'data': { 'x': { 'type': 'int', 'if': 'CONFIG_X' }, 'y': 'int' } }
         { 'command': 'q', 'returns': 'Thing' }",
        "{ 'struct': 'Thing', 'data': { 'x': 'int', 'y': 'int' } }
         { 'command': 'q', 'returns': 'Thing' }",
    ]);
    assert!(member(&s, "Thing", "x").optional, "conditional in 1.0.0");
    assert!(!member(&s, "Thing", "y").optional);
    let vs = v(&s);
    assert_eq!(
        vs.condition(&Key::member("Thing", "x"), 1),
        Some("CONFIG_X")
    );
    assert_eq!(vs.condition(&Key::member("Thing", "x"), 2), None);
    // One schema: the generated field is optional too.
    let one = load(
        "{ 'struct': 'Tag', 'data': { 'z': { 'type': 'int', 'if': 'CONFIG_Z' } } }
         { 'command': 'q', 'returns': 'Tag' }",
    );
    let code = generates(&one);
    assert!(code.contains("pub z: ::std::option::Option<i64>"), "{code}");
}

#[test]
fn renamed_types_merge_by_position_and_keep_an_alias() {
    let s = merge(&[
        "{ 'struct': 'OldInfo', 'data': { 'a': 'int' } }
         { 'command': 'query-info', 'returns': ['OldInfo'] }",
        "{ 'struct': 'NewInfo', 'data': { 'a': 'int', '*b': 'str' } }
         { 'command': 'query-info', 'returns': ['NewInfo'] }",
    ]);
    assert!(s.lookup("OldInfo").is_none(), "merged into NewInfo");
    assert!(s.lookup("OldInfoList").is_none(), "its array too");
    let vs = v(&s);
    assert_eq!(vs.aliases.len(), 1);
    assert_eq!(
        (vs.aliases[0].old.as_str(), vs.aliases[0].new.as_str()),
        ("OldInfo", "NewInfo")
    );
    assert!(notes(&s, NoteKind::Renamed)[0].contains("called 'OldInfo' in 1.0.0"));
    let code = generates(&s);
    assert!(code.contains("pub type OldInfo = NewInfo;"), "{code}");
    assert!(code.contains("#[deprecated("), "the alias is deprecated");
}

#[test]
fn a_changed_member_type_reads_every_form() {
    let s = merge(&[
        // 1.0: `kind` is a string, `w` a narrow struct, `n` an int,
        // `other` a string.
        "{ 'struct': 'Narrow', 'data': { 'a': 'int' } }
         { 'struct': 'Wide', 'data': { 'a': 'int', '*b': 'int' } }
         { 'struct': 'Thing', 'data': { 'kind': 'str', 'w': 'Wide', 'n': 'int', 'other': 'str' } }
         { 'command': 'q', 'returns': 'Thing' }",
        // 2.0: an enum, a narrower struct, uint64, an object.
        "{ 'enum': 'Kind', 'data': ['x'] }
         { 'struct': 'Narrow', 'data': { 'a': 'int' } }
         { 'struct': 'Wide', 'data': { 'a': 'int', '*b': 'int' } }
         { 'struct': 'Thing', 'data': { 'kind': 'Kind', 'w': 'Narrow', 'n': 'uint64', 'other': 'Narrow' } }
         { 'command': 'q', 'returns': 'Thing' }",
    ]);
    // An enum reads any string (unknown values are kept).
    assert_eq!(member(&s, "Thing", "kind").type_name, "Kind");
    // The older, wider struct reads the newer form: it is kept.
    assert_eq!(member(&s, "Thing", "w").type_name, "Wide");
    // Integers: the newer's range.
    assert_eq!(member(&s, "Thing", "n").type_name, "uint64");
    // A string and an object: nothing but `any` reads both.
    assert_eq!(member(&s, "Thing", "other").type_name, "any");
    let changed = notes(&s, NoteKind::TypeChanged);
    assert_eq!(changed.len(), 4, "{changed:?}");
    assert!(
        changed
            .iter()
            .any(|n| n.contains("'other'") && n.contains("so it is `any`"))
    );
    assert!(
        changed
            .iter()
            .any(|n| n.contains("'w'") && n.contains("so it is `Wide`"))
    );
    // Where the type was widened, for which versions.
    assert_eq!(v(&s).widened.get(&Key::member("Thing", "w")), Some(&2));
    generates(&s);
}

#[test]
fn shape_changes_are_reported_and_the_newer_kept() {
    let s = merge(&[
        "{ 'struct': 'Thing', 'data': { 'a': 'int', 'b': 'int' } }
         { 'command': 'q', 'returns': 'Thing' }",
        "{ 'struct': 'Base', 'data': { 'a': 'int' } }
         { 'struct': 'Thing', 'base': 'Base', 'data': { 'b': 'int' } }
         { 'command': 'q', 'data': { '*verbose': 'bool' }, 'returns': 'Thing' }",
    ]);
    let shape = notes(&s, NoteKind::ShapeChanged);
    assert!(
        shape.iter().any(|n| n.contains("base none in 1.0.0")),
        "{shape:?}"
    );
    assert!(
        shape
            .iter()
            .any(|n| n.contains("command 'q'") && n.contains("arguments none")),
        "{shape:?}"
    );
    // The member that moved to the base is still required (both have it).
    assert!(!member(&s, "Thing", "a").optional);
    generates(&s);
}

#[test]
fn union_branches_merge() {
    let s = merge(&[
        "{ 'enum': 'Tag', 'data': ['a', 'old'] }
         { 'struct': 'Alpha', 'data': { 'x': 'int' } }
         { 'union': 'Choice', 'base': { 't': 'Tag' }, 'discriminator': 't', 'data': { 'a': 'Alpha', 'old': 'Alpha' } }
         { 'command': 'q', 'returns': 'Choice' }",
        "{ 'enum': 'Tag', 'data': ['a', 'new'] }
         { 'struct': 'Alpha', 'data': { 'x': 'int' } }
         { 'union': 'Choice', 'base': { 't': 'Tag' }, 'discriminator': 't', 'data': { 'a': 'Alpha', 'new': 'Alpha' } }
         { 'command': 'q', 'returns': 'Choice' }",
    ]);
    let vs = v(&s);
    assert_eq!(vs.names(vs.variant("Choice", "old")), ["1.0.0"]);
    assert_eq!(vs.names(vs.variant("Choice", "new")), ["2.0.0"]);
    let code = generates(&s);
    assert!(code.contains("Old("), "the old branch is generated");
}

#[test]
fn the_real_schemas_merge() {
    let m = Manifest::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema")).expect("manifest");
    let s = m.load_merged(Part::Qmp).expect("merges");
    let vs = v(&s);
    assert_eq!(vs.labels, m.versions);
    // The renames QEMU made between 7.2 and 10.2.
    for (old, new) in [
        ("TargetInfo", "QemuTargetInfo"),
        ("QCryptoHashAlgorithm", "QCryptoHashAlgo"),
        ("SGXInfo", "SgxInfo"),
    ] {
        assert!(
            vs.aliases.iter().any(|a| a.old == old && a.new == new),
            "{old} -> {new} missing"
        );
    }
    assert!(member(&s, "MachineInfo", "acpi").optional);
    assert!(member(&s, "CpuModelExpansionInfo", "deprecated-props").optional);
    assert!(member(&s, "SgxInfo", "section-size").optional);
    // Every conflict is one of the kinds above, and none is left as `any`
    // in the real schemas.
    assert!(!vs.notes.is_empty());
    assert!(
        !vs.notes.iter().any(|n| n.text.contains("so it is `any`")),
        "{:?}",
        vs.notes
    );
    let qga = m.load_merged(Part::Qga).expect("guest agent merges");
    assert!(qga.lookup("guest-ping").is_some());
}

#[test]
fn a_struct_that_became_a_union_reads_the_untagged_older_form() {
    let s = merge(&[
        "{ 'struct': 'Info', 'data': { 'on': 'bool', 'policy': 'int' } }
         { 'command': 'q', 'returns': 'Info' }",
        "{ 'enum': 'Kind', 'data': ['plain', 'fancy'] }
         { 'struct': 'Plain', 'data': { 'policy': 'int' } }
         { 'struct': 'Fancy', 'data': { 'level': 'int' } }
         { 'union': 'Info', 'base': { 'on': 'bool', 'kind': 'Kind' }, 'discriminator': 'kind',
           'data': { 'plain': 'Plain', 'fancy': 'Fancy' } }
         { 'command': 'q', 'returns': 'Info' }",
    ]);
    // `policy` is the `plain` branch's, not a new base member.
    let id = s.lookup("Info").expect("Info");
    let o = s.entity(id).as_object().expect("object");
    assert!(!o.local_members.iter().any(|m| m.name == "policy"));
    let vs = v(&s);
    assert_eq!(vs.untagged.get("Info"), Some(&("plain".to_string(), 1)));
    assert_eq!(vs.names(vs.member("Plain", "policy")), ["1.0.0", "2.0.0"]);
    let shape = notes(&s, NoteKind::ShapeChanged);
    assert!(
        shape
            .iter()
            .any(|n| n.contains("decodes as branch `plain`, untagged")),
        "{shape:?}"
    );
    let flat: String = generates(&s).split_whitespace().collect();
    assert!(flat.contains("Untagged(Plain)"), "the untagged variant");
    assert!(
        flat.contains("untaggedUntagged=\"plain\""),
        "and its macro clause"
    );
}

#[test]
fn manifest_and_merge_errors_have_their_own_variants() {
    let dir = std::env::temp_dir().join(format!("qapi-gen-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // No manifest at all: the path and the OS's reason.
    let e = Manifest::load(&dir).expect_err("missing");
    assert!(
        matches!(&e, qapi_gen::Error::Manifest { path, .. } if path.ends_with("manifest.txt")),
        "{e:?}"
    );
    assert!(e.to_string().contains("can't read it"), "{e}");
    // A malformed one: what is wrong, not "code generation failed".
    std::fs::write(dir.join("manifest.txt"), "not-a-version\n").expect("write");
    let e = Manifest::load(&dir).expect_err("malformed");
    assert!(matches!(e, qapi_gen::Error::Manifest { .. }), "{e:?}");
    assert!(!e.to_string().contains("code generation failed"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
    // Nothing to merge.
    let e = Schema::merge(Vec::new()).expect_err("empty");
    assert!(matches!(e, qapi_gen::Error::Merge(_)), "{e:?}");
    assert!(e.to_string().contains("1 to 64 schemas"), "{e}");
}
