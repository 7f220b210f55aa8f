//! The evolution fixtures' programs (`tests/src/evolution.rs`) put the
//! same JSON on the wire against a version's bindings and against that
//! version merged with the next.

use tests::evolution::*;

/// One half of a case: what the program sends and reads.
type Program = fn() -> Vec<serde_json::Value>;

#[test]
fn evolution_programs_behave_the_same() {
    let cases: [(&str, Program, Program); 10] = [
        (
            "type_merged",
            type_merged::old::run,
            type_merged::merged::run,
        ),
        (
            "str_to_alternate",
            str_to_alternate::old::run,
            str_to_alternate::merged::run,
        ),
        (
            "struct_to_union",
            struct_to_union::old::run,
            struct_to_union::merged::run,
        ),
        ("removed", removed::old::run, removed::merged::run),
        (
            "optional_to_required",
            optional_to_required::old::run,
            optional_to_required::merged::run,
        ),
        (
            "branch_added",
            branch_added::old::run,
            branch_added::merged::run,
        ),
        (
            "base_member_added",
            base_member_added::old::run,
            base_member_added::merged::run,
        ),
        (
            "type_renamed",
            type_renamed::old::run,
            type_renamed::merged::run,
        ),
        ("boxed", boxed::old::run, boxed::merged::run),
        ("grew_large", grew_large::old::run, grew_large::merged::run),
    ];
    for (name, old, merged) in cases {
        let (a, b) = (old(), merged());
        for v in &a {
            assert!(
                !v.to_string().contains(" error"),
                "{name}: the program failed against n.json's bindings: {v}"
            );
        }
        assert_eq!(
            a, b,
            "{name}: the merged bindings put other JSON on the wire"
        );
    }
}

#[test]
fn the_programs_see_what_they_expect() {
    // Spot checks that the programs do what their docs say, so that
    // "the same" above is not two identical failures.
    let t = type_merged::merged::run();
    assert_eq!(t[0], "migrate-set-parameters");
    assert_eq!(
        t[1],
        serde_json::json!({ "downtime-limit": 300, "tls-creds": "tls0" })
    );
    assert_eq!(t[2], serde_json::json!({ "tls-creds": null }));
    let s = struct_to_union::merged::run();
    assert_eq!(s[0], 1);
    assert_eq!(s[1], serde_json::json!({ "a": 1, "b": "s" }));
    let r = removed::merged::run();
    assert_eq!(r[1], serde_json::json!({ "x": 5 }));
    assert_eq!(r[5], "legacy");
}
