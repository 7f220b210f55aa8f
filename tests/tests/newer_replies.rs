//! Replies and events of a QEMU newer than the bindings: part 3's
//! evolutions (`tests/fixtures/evolution`) applied to QEMU 10.2.2's
//! schema, the newest the bindings cover, and replies shaped by that
//! newer side decoded with `qmp_types`. What the bindings don't know is
//! kept and encodes to the same JSON; a member whose type the newer side
//! widened is reported with its type and key, and fails only where the
//! bindings' type cannot do without it (a required member).

use qmp_types::rt::{UnknownMember, collect_unknown_members, decode_leniently};
use qmp_types::*;
use serde_json::{Value, json};

/// `reply` decoded as `T` (collecting what the bindings don't know),
/// and encoded again.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
    reply: &Value,
) -> (Result<Value, String>, Vec<UnknownMember>) {
    let (r, found) = collect_unknown_members(|| serde_json::from_value::<T>(reply.clone()));
    (
        r.map_err(|e| e.to_string())
            .and_then(|t| serde_json::to_value(&t).map_err(|e| e.to_string())),
        found,
    )
}

fn keys(found: &[UnknownMember]) -> Vec<(&str, &str, bool)> {
    let mut k: Vec<_> = found
        .iter()
        .map(|m| (m.type_name, m.key.as_str(), m.mismatch.is_some()))
        .collect();
    k.sort();
    k
}

#[test]
fn members_added_to_a_struct_and_to_a_base_are_kept() {
    // `base_member_added` and a member added to a reply struct.
    let reply = json!({"running": true, "status": "running", "new-flag": {"x": [1, 2]}});
    let (out, found) = round_trip::<StatusInfo>(&reply);
    assert_eq!(out, Ok(reply));
    assert_eq!(keys(&found), [("StatusInfo", "new-flag", false)]);
    // A union's base gains a member: kept by the branch it is decoded with.
    let reply = json!({"cpu-index": 0, "qom-path": "/machine/unattached/device[0]",
        "thread-id": 7, "target": "x86_64", "props": {"core-id": 0}, "new-base": 1});
    let (out, _) = round_trip::<CpuInfoFast>(&reply);
    assert_eq!(out, Ok(reply));
}

#[test]
fn new_branches_enum_values_and_events_are_kept() {
    // `branch_added`: a union branch the bindings don't know.
    let reply = json!({"cpu-index": 0, "qom-path": "/p", "thread-id": 7,
        "target": "riscv128", "props": {}, "hart": 3});
    let (out, found) = round_trip::<CpuInfoFast>(&reply);
    assert_eq!(out, Ok(reply));
    // Reported as a branch, with its members as the value.
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, qmp_types::rt::UnknownKind::Branch);
    assert_eq!(found[0].key, "riscv128");
    assert_eq!(found[0].value, json!({"hart": 3}));
    // An enum value the bindings don't know: kept, and reported as one.
    let reply = json!({"running": false, "status": "hibernating"});
    let (out, found) = round_trip::<StatusInfo>(&reply);
    assert_eq!(out, Ok(reply.clone()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].kind, found[0].type_name, found[0].key.as_str()),
        (
            qmp_types::rt::UnknownKind::EnumValue,
            "RunState",
            "hibernating"
        )
    );
    let s: StatusInfo = serde_json::from_value(reply).expect("decodes");
    assert_eq!(s.status, RunState::Unknown("hibernating".into()));
    // An event the bindings don't know, and a known one with a new member.
    let line = br#"{"event": "VCPU_HOTPLUGGED", "data": {"id": 3}, "timestamp": {"seconds": 1, "microseconds": 2}}"#;
    let (_, ev) = qmp_client::parse_event(line).expect("an event");
    assert!(
        matches!(&ev, AnyEvent::Unknown { name, data } if name == "VCPU_HOTPLUGGED" && data == &json!({"id": 3})),
        "{ev:?}"
    );
    let line = br#"{"event": "STOP", "data": {"reason": "user"}, "timestamp": {"seconds": 1, "microseconds": 2}}"#;
    let (_, ev) = qmp_client::parse_event(line).expect("an event");
    assert!(!matches!(ev, AnyEvent::Malformed { .. }), "{ev:?}");
}

#[test]
fn a_member_widened_to_take_null_is_kept_and_reported() {
    // `str_to_alternate` on 10.2.2's MigrationParameters (QEMU 11.0 did
    // this to `tls-creds`): a null where the bindings expect a string.
    let reply = json!({"downtime-limit": 300, "tls-creds": null, "tls-authz": null});
    let (out, found) = round_trip::<MigrationParameters>(&reply);
    assert_eq!(out, Ok(reply));
    assert_eq!(
        keys(&found),
        [
            ("MigrationParameters", "tls-authz", true),
            ("MigrationParameters", "tls-creds", true)
        ]
    );
    // Set again by a program, the member's value wins over the kept null.
    let mut p: MigrationParameters =
        serde_json::from_value(json!({"tls-creds": null})).expect("decodes");
    p.tls_creds = Some("tls0".into());
    assert_eq!(
        serde_json::to_value(&p).expect("encodes"),
        json!({"tls-creds": "tls0"})
    );
}

#[test]
fn a_member_widened_to_another_json_type_is_kept_when_decoded_leniently() {
    // `str_to_alternate` with an object branch: a plain decode fails
    // (naming the member), a lenient one keeps it and reports it.
    let reply = json!({"downtime-limit": 300, "tls-hostname": {"name": "h", "port": 1}});
    let (out, _) = round_trip::<MigrationParameters>(&reply);
    let e = out.expect_err("a string was expected");
    assert!(e.contains("invalid type"), "{e}");
    let (out, found) = decode_leniently(|| round_trip::<MigrationParameters>(&reply));
    assert_eq!(out, Ok(reply));
    assert_eq!(
        keys(&found),
        [("MigrationParameters", "tls-hostname", true)]
    );
    assert!(
        found[0].to_string().contains("does not fit its type"),
        "{}",
        found[0]
    );
    // Inside a list, the same, for each element.
    let reply = json!([{"tls-hostname": 1}, {"tls-hostname": "h"}, {"tls-hostname": [2]}]);
    let (out, found) = decode_leniently(|| round_trip::<Vec<MigrationParameters>>(&reply));
    assert_eq!(out, Ok(reply));
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn a_required_member_the_type_cannot_hold_fails_with_its_path() {
    // `struct_to_union` / `removed` on a required member: the newer side
    // sends null where the bindings require a string. Nothing can hold
    // it; the error names the member.
    let reply = json!({"running": true, "status": null});
    let (out, _) = decode_leniently(|| round_trip::<StatusInfo>(&reply));
    let e = out.expect_err("status is required");
    assert!(e.contains("invalid type: null"), "{e}");
}
