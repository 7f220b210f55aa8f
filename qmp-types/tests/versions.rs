//! One crate for every covered QEMU: what the merged bindings say about
//! versions, and replies of QEMU 7.2 and 10.0 that used to fail (or lose
//! members) decoding into the 10.0.2-only types.

#![allow(deprecated, reason = "deprecated aliases and members are tested too")]

use qmp_types::rt::{QemuVersion, check_available, collect_unknown_members};
use qmp_types::*;
use serde_json::{Value, json};

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(v: Value) -> T {
    let t: T = serde_json::from_value(v.clone()).expect("decodes");
    assert_eq!(
        serde_json::to_value(&t).expect("encodes"),
        v,
        "re-encodes to the same JSON"
    );
    t
}

#[test]
fn the_manifest_versions_are_listed() {
    assert_eq!(VERSIONS, &["7.2.0", "10.0.2", "10.2.2"]);
}

#[test]
fn commands_and_events_know_their_versions() {
    // Removed by 10.0 (x-query-profile), added in 8.0 (query-cryptodev),
    // in every version (query-status).
    assert_eq!(XQueryProfile::META.versions, &["7.2.0"]);
    assert_eq!(QueryCryptodev::META.versions, &["10.0.2", "10.2.2"]);
    assert_eq!(QueryStatus::META.versions, VERSIONS);
    assert_eq!(<MemUnplugError as Event>::META.versions, &["7.2.0"]);
    // An argument only newer versions have.
    assert!(
        QueryMachines::META
            .partial_args
            .iter()
            .any(|(name, have)| *name == "compat-props" && !have.contains(&"7.2.0")),
        "{:?}",
        QueryMachines::META.partial_args
    );
}

#[test]
fn availability_follows_the_connected_version() {
    let v722 = QemuVersion::new(7, 2, 22);
    let v1002 = QemuVersion::new(10, 0, 2);
    let check =
        |have, since, at| check_available(|| "command `x`".into(), have, since, VERSIONS, at);
    let err = check(
        QueryCryptodev::META.versions,
        QueryCryptodev::META.since,
        v722,
    )
    .expect_err("7.2 has no query-cryptodev");
    assert_eq!(
        err.to_string(),
        "command `x` needs QEMU ≥ 8.0, connected to 7.2.22 (the bindings know it in QEMU 10.0.2, 10.2.2)"
    );
    assert!(check(XQueryProfile::META.versions, None, v1002).is_err());
    assert!(check(XQueryProfile::META.versions, None, v722).is_ok());
    assert!(check(QueryStatus::META.versions, QueryStatus::META.since, v722).is_ok());
}

#[test]
fn qemu_7_2_query_machines_decodes_without_acpi() {
    // From QEMU 7.2.22's reply: `acpi` came in 8.0.
    let m: MachineInfo = roundtrip(json!({
        "hotpluggable-cpus": true, "name": "pc-q35-7.2", "numa-mem-supported": false,
        "default-cpu-type": "qemu64-x86_64-cpu", "cpu-max": 288, "deprecated": false,
        "default-ram-id": "pc.ram"
    }));
    assert_eq!(m.acpi, None);
}

#[test]
fn required_members_under_if_are_optional() {
    // `deprecated-props` was required but only `if: TARGET_S390X` in
    // 10.0.2: an x86 QEMU never sends it.
    let r: CpuModelExpansionInfo = roundtrip(json!({"model": {"name": "max"}}));
    assert_eq!(r.deprecated_props, None);
}

#[test]
fn members_older_versions_send_are_kept() {
    // QEMU 7.x's `query-sgx-capabilities` has `section-size`, gone since.
    let r: SgxInfo = roundtrip(json!({
        "sgx": true, "sgx1": true, "sgx2": false, "flc": true,
        "sections": [{"node": 0, "size": 1024}], "section-size": 1024
    }));
    assert_eq!(r.section_size, Some(1024));
}

#[test]
fn renamed_types_keep_their_old_name_as_an_alias() {
    // `TargetInfo` (up to 10.0) is `QemuTargetInfo` (10.2).
    fn same(x: TargetInfo) -> QemuTargetInfo {
        x
    }
    let t: QemuTargetInfo = roundtrip(json!({"arch": "x86_64"}));
    let _ = same(t);
    let _: Option<StringWrapper> = None::<FdSocketAddressWrapper>;
}

#[test]
fn a_type_that_changed_reads_every_form() {
    // 7.2's vmdk `extents` were `ImageInfo`s, 10.0's `VmdkExtentInfo`s:
    // the merged type reads both.
    let v72 = json!({"filename": "a.vmdk", "format": "FLAT", "virtual-size": 1048576, "dirty-flag": false});
    let v10 = json!({"filename": "a.vmdk", "format": "FLAT", "virtual-size": 1048576, "cluster-size": 65536, "compressed": false});
    let _: ImageInfo = roundtrip(v72);
    let _: ImageInfo = roundtrip(v10);
}

#[test]
fn unknown_members_can_be_collected() {
    let (r, found) = collect_unknown_members(|| {
        serde_json::from_value::<StatusInfo>(json!({
            "running": true, "status": "running", "from-qemu-99": {"x": 1}
        }))
    });
    let r = r.expect("decodes");
    assert!(r.running);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].type_name, "StatusInfo");
    assert_eq!(found[0].key, "from-qemu-99");
    assert_eq!(found[0].value, json!({"x": 1}));
    // Without a collector they are skipped, as before.
    let _: StatusInfo =
        serde_json::from_value(json!({"running": true, "status": "running", "y": 1}))
            .expect("decodes");
}

#[test]
fn a_union_older_qemu_sent_without_its_discriminator() {
    // QEMU 7.2's `query-sev` (SevInfo was a struct, before `sev-type`).
    let v72 = json!({"enabled": false, "api-major": 0, "api-minor": 0, "build-id": 0,
        "policy": 0, "state": "uninit", "handle": 0});
    let r: SevInfo = roundtrip(v72);
    assert!(matches!(r.branch, SevInfoBranch::Untagged(ref g) if g.policy == 0 && g.handle == 0));
    assert_eq!(r.branch.tag(), "sev");
    // 10.0's form, with it.
    let v10 = json!({"enabled": false, "api-major": 0, "api-minor": 0, "build-id": 0,
        "policy": 0, "state": "uninit", "handle": 0, "sev-type": "sev"});
    let r: SevInfo = roundtrip(v10);
    assert!(matches!(r.branch, SevInfoBranch::Sev(_)));
}

#[test]
fn decode_errors_inside_union_branches_name_the_member() {
    // The 2nd entry of a `query-qmp-schema` reply: an enum whose `values`
    // is a number.
    let reply = json!([
        {"name": "str", "meta-type": "builtin", "json-type": "string"},
        {"name": "1", "meta-type": "enum", "values": 5, "members": []}
    ]);
    let e = serde_json::from_value::<Vec<SchemaInfo>>(reply).expect_err("bad values");
    let msg = e.to_string();
    let (path, rest) =
        qmp_types::rt::path::split_path_message(&msg).unwrap_or_else(|| panic!("{msg}"));
    assert_eq!(path, "values", "{msg}");
    assert!(rest.starts_with("invalid type: integer `5`"), "{msg}");
    // Two levels: a union inside a union's branch.
    let bad = json!({"driver": "qcow2", "file": {"driver": "file", "filename": 7}});
    let e = serde_json::from_value::<BlockdevOptions>(bad).expect_err("bad filename");
    let msg = e.to_string();
    assert_eq!(
        qmp_types::rt::path::split_path_message(&msg).map(|p| p.0),
        Some("file.filename"),
        "{msg}"
    );
}

#[test]
fn types_without_floats_are_eq_and_hash() {
    fn eq_hash<T: Eq + std::hash::Hash>() {}
    eq_hash::<StatusInfo>();
    eq_hash::<QueryStatus>();
    eq_hash::<BlockdevOptions>(); // a union
    eq_hash::<BlockdevOptionsBranch>();
    eq_hash::<BlockdevRef>(); // an alternate
    eq_hash::<DeviceAdd>(); // free-form properties
    eq_hash::<RunState>();
    let mut set = std::collections::HashSet::new();
    set.insert(StatusInfo::new(true, RunState::Running));
    assert!(set.contains(&StatusInfo::new(true, RunState::Running)));
}

#[test]
fn blockdev_add_of_qcow2_over_a_file_in_three_lines() {
    let file = BlockdevOptions::file(BlockdevOptionsFile::new("disk.qcow2"));
    let qcow2 = BlockdevOptions::qcow2(BlockdevOptionsQcow2::new(file)).with_node_name("disk");
    let add = BlockdevAdd::new(qcow2);
    assert_eq!(
        serde_json::to_value(&add).expect("encodes"),
        json!({"driver": "qcow2", "node-name": "disk",
               "file": {"driver": "file", "filename": "disk.qcow2"}})
    );
    // A node name where a reference is expected; a branch's struct where
    // the union is expected (a type only one branch has).
    let over = BlockdevOptionsQcow2::new("disk");
    assert_eq!(*over.file, BlockdevRef::Reference("disk".into()));
    let q = BlockdevOptions::from(BlockdevOptionsQcow2::new("disk"));
    assert_eq!(q.branch.tag(), "qcow2");
    let r: BlockdevRef = BlockdevOptionsQcow2::new("disk").into();
    assert!(matches!(r, BlockdevRef::Definition(_)));
    // A type several branches share: their constructors say which.
    let n = BlockdevOptions::null_co(BlockdevOptionsNull::new());
    assert_eq!(n.branch.tag(), "null-co");
    let b = BlockdevOptionsBranch::host_device(BlockdevOptionsFile::new("/dev/sda"));
    assert_eq!(b.tag(), "host_device");
}

#[test]
fn paths_say_what_a_thing_is() {
    // `stop` the command and `STOP` the event, each under its kind.
    let _: qmp_types::commands::Stop = Stop::new();
    let e: qmp_types::events::Stop = serde_json::from_value(json!({})).expect("STOP");
    let _: StopEvent = e;
    let _: qmp_types::events::DeviceDeleted =
        serde_json::from_value(json!({"path": "/x"})).expect("DEVICE_DELETED");
    // Per QAPI module, and flat.
    let _ = qmp_types::block_core::BlockdevAdd::new(BlockdevOptions::file(
        BlockdevOptionsFile::new("f"),
    ));
    let _: qmp_types::commands::BlockdevAdd =
        BlockdevAdd::new(BlockdevOptions::null_co(BlockdevOptionsNull::new()));
}

#[test]
fn arguments_of_one_type_can_be_named() {
    // `BlockdevBackup::new(device, sync, target)`: two strings in a row.
    let by_name = BlockdevBackup::from(BlockdevBackupArgs {
        device: "src".into(),
        sync: MirrorSyncMode::Full,
        target: "tgt".into(),
    })
    .with_job_id("b0");
    let positional = BlockdevBackup::new("src", MirrorSyncMode::Full, "tgt").with_job_id("b0");
    assert_eq!(by_name, positional);
    let q = QomGet::from(QomGetArgs {
        path: "/machine".into(),
        property: "type".into(),
    });
    assert_eq!(
        serde_json::to_value(&q).expect("encodes"),
        json!({"path": "/machine", "property": "type"})
    );
}
