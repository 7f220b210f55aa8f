//! Wire-format tests of the generated shapes against QEMU's JSON: each
//! shape serializes, deserializes and round-trips exactly; replies from a
//! newer QEMU (unknown enum values, union branches, members, events) still
//! decode.

use qmp_types::*;
use serde_json::{Value, json};

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    v: Value,
) -> T {
    let typed: T = serde_json::from_value(v.clone()).expect("decodes");
    assert_eq!(
        serde_json::to_value(&typed).expect("encodes"),
        v,
        "round trip"
    );
    typed
}

#[test]
fn struct_required_and_optional_members() {
    let cmd = BlockDirtyBitmapAdd::new("drive0", "bitmap0");
    assert_eq!(
        serde_json::to_value(&cmd).expect("encodes"),
        json!({"node": "drive0", "name": "bitmap0"}),
        "optional members are omitted when absent"
    );
    let cmd = cmd.with_persistent(true).with_granularity(65536u32);
    let v = json!({"node": "drive0", "name": "bitmap0", "persistent": true, "granularity": 65536});
    assert_eq!(serde_json::to_value(&cmd).expect("encodes"), v);
    let back: BlockDirtyBitmapAdd = roundtrip(v);
    assert_eq!(back.granularity, Some(65536u32));
}

#[test]
fn member_names_with_dashes_and_integer_types() {
    let v = json!({"device": "d", "snapshot-file": "/tmp/s.qcow2", "format": "qcow2", "mode": "absolute-paths"});
    let s: BlockdevSnapshotSync = roundtrip(v);
    assert_eq!(s.snapshot_file, "/tmp/s.qcow2");
    assert_eq!(s.mode, Some(NewImageMode::AbsolutePaths));
    // `uint32` is u32: out-of-range values are rejected.
    let err = serde_json::from_value::<BlockDirtyBitmapAdd>(
        json!({"node": "n", "name": "b", "granularity": -1}),
    );
    assert!(err.is_err(), "-1 must not decode into a uint32 member");
    let big = serde_json::from_value::<BlockDirtyBitmapAdd>(
        json!({"node": "n", "name": "b", "granularity": 4294967296u64}),
    );
    assert!(big.is_err(), "2^32 must not decode into a uint32 member");
}

#[test]
fn commands_know_their_name_and_reply() {
    assert_eq!(<QueryStatus as Command>::NAME, "query-status");
    assert_eq!(
        <BlockDirtyBitmapAdd as Command>::NAME,
        "block-dirty-bitmap-add"
    );
    assert_eq!(DeviceDel::META.since, Some("0.14"));
    let (del, recover) = std::hint::black_box((DeviceDel::META, MigrateRecover::META));
    assert!(!del.allow_oob);
    assert!(recover.allow_oob);
    // Commands without `returns` reply `()`; `{}` handling is the client's.
    let _: <DeviceDel as Command>::Returns = ();
    let status: <QueryStatus as Command>::Returns =
        roundtrip(json!({"running": true, "status": "running"}));
    assert_eq!(status.status, RunState::Running);
    // Every command is listed.
    assert!(COMMANDS.iter().any(|m| m.name == "blockdev-add"));
    // The union of QEMU 7.2.0's, 10.0.2's and 10.2.2's commands.
    assert_eq!(COMMANDS.len(), 247);
}

#[test]
fn deprecated_and_unstable_metadata() {
    let m = COMMANDS
        .iter()
        .find(|m| m.name == "x-debug-query-block-graph")
        .expect("listed");
    assert!(m.unstable);
    let dep = COMMANDS.iter().filter(|m| m.deprecated).count();
    assert!(dep >= 1, "10.0.2 has deprecated commands");
}

#[test]
fn enums_keep_unknown_values() {
    let s: RunState = roundtrip(json!("paused"));
    assert_eq!(s, RunState::Paused);
    assert_eq!(s.as_str(), "paused");
    let future: RunState = roundtrip(json!("hibernating-in-2030"));
    assert_eq!(future, RunState::Unknown("hibernating-in-2030".into()));
    assert!(serde_json::from_value::<RunState>(json!(3)).is_err());
}

/// A caller's string must name a known value (`FromStr`); the wire keeps
/// any (`from_wire`, `Deserialize`).
#[test]
fn parsing_a_callers_string_fails_on_an_unknown_value() {
    assert_eq!(
        "io_uring".parse::<BlockdevAioOptions>(),
        Ok(BlockdevAioOptions::IoUring)
    );
    let e = "bogus"
        .parse::<BlockdevAioOptions>()
        .expect_err("no such value");
    assert_eq!(e.type_name, "BlockdevAioOptions");
    assert_eq!(e.value, "bogus");
    assert!(e.expected.contains(&"io_uring"));
    assert_eq!(
        e.to_string(),
        "`bogus` is not a BlockdevAioOptions value; expected one of: threads, native, io_uring"
    );
    assert_eq!(
        BlockdevAioOptions::from_wire("bogus"),
        BlockdevAioOptions::Unknown("bogus".into())
    );
}

#[test]
fn unknown_members_are_ignored() {
    let v = json!({"running": false, "status": "prelaunch", "added-in-11.0": [1, 2]});
    let s: StatusInfo = serde_json::from_value(v).expect("decodes");
    assert_eq!(s.status, RunState::Prelaunch);
}

#[test]
fn unions_with_base_members() {
    let v = json!({"driver": "null-co", "node-name": "n0", "size": 1048576, "read-zeroes": true});
    let o: BlockdevOptions = roundtrip(v);
    assert_eq!(o.node_name.as_deref(), Some("n0"));
    match &o.branch {
        BlockdevOptionsBranch::NullCo(b) => assert_eq!(b.size, Some(1048576)),
        other => panic!("wrong branch {other:?}"),
    }
    assert_eq!(o.branch.tag(), "null-co");
    // Built in code.
    let built = BlockdevOptions::new(BlockdevOptionsBranch::NullCo(
        BlockdevOptionsNull::new().with_size(4096i64),
    ))
    .with_node_name("n1");
    assert_eq!(
        serde_json::to_value(&built).expect("encodes"),
        json!({"driver": "null-co", "node-name": "n1", "size": 4096})
    );
}

#[test]
fn unions_keep_unknown_branches() {
    let v = json!({"driver": "teleport", "node-name": "n0", "distance": 42});
    let o: BlockdevOptions = roundtrip(v);
    match &o.branch {
        BlockdevOptionsBranch::Unknown { tag, members } => {
            assert_eq!(tag, "teleport");
            assert_eq!(members["distance"], 42);
        }
        other => panic!("wrong branch {other:?}"),
    }
    let bad = serde_json::from_value::<BlockdevOptions>(json!({"node-name": "n"}));
    assert!(
        bad.expect_err("no discriminator")
            .to_string()
            .contains("missing discriminator 'driver'")
    );
}

#[test]
fn alternates_by_json_type() {
    let r: BlockdevRef = roundtrip(json!("node0"));
    assert_eq!(r, BlockdevRef::Reference("node0".into()));
    let r: BlockdevRef = roundtrip(json!({"driver": "null-co"}));
    assert!(matches!(r, BlockdevRef::Definition(_)));
    let n: StrOrNull = roundtrip(json!(null));
    assert_eq!(n, StrOrNull::N);
    let e = serde_json::from_value::<BlockdevRef>(json!(1)).expect_err("no number branch");
    assert!(
        e.to_string()
            .contains("expected a value of alternate BlockdevRef, got a number"),
        "{e}"
    );
}

#[test]
fn events_decode_by_name() {
    let e = AnyEvent::deserialize_data(
        "SHUTDOWN",
        json!({"guest": false, "reason": "host-qmp-quit"}),
    )
    .expect("decodes");
    assert_eq!(e.name(), "SHUTDOWN");
    let s = Shutdown::from_any(e.clone()).expect("is SHUTDOWN");
    assert_eq!(s.reason, ShutdownCause::HostQmpQuit);
    assert!(StopEvent::from_any_ref(&e).is_none());
    assert_eq!(<DeviceDeleted as Event>::NAME, "DEVICE_DELETED");
    assert_eq!(<StopEvent as Event>::NAME, "STOP");
    let stop = AnyEvent::deserialize_data("STOP", json!({})).expect("decodes");
    assert!(matches!(stop, AnyEvent::StopEvent(_)));
    // A newer QEMU's event.
    let u =
        AnyEvent::deserialize_data("TIME_TRAVEL", json!({"when": "yesterday"})).expect("decodes");
    assert_eq!(
        u,
        AnyEvent::Unknown {
            name: "TIME_TRAVEL".into(),
            data: json!({"when": "yesterday"})
        }
    );
    // Data re-encodes.
    let mut out = Vec::new();
    e.serialize_data(&mut serde_json::Serializer::new(&mut out))
        .expect("encodes");
    assert_eq!(
        serde_json::from_slice::<Value>(&out).expect("json"),
        json!({"guest": false, "reason": "host-qmp-quit"})
    );
    assert!(EVENTS.iter().any(|m| m.name == "JOB_STATUS_CHANGE"));
    // The union of QEMU 7.2.0's, 10.0.2's and 10.2.2's events.
    assert_eq!(EVENTS.len(), 59);
}

#[test]
fn timestamps() {
    let t: Timestamp =
        serde_json::from_value(json!({"seconds": 1795545909, "microseconds": 123456}))
            .expect("decodes");
    assert_eq!(t.as_micros(), 1_795_545_909_123_456);
    assert!(t.to_system_time().is_some());
    let none = Timestamp {
        seconds: -1,
        microseconds: -1,
    };
    assert!(none.to_system_time().is_none());
}

#[test]
fn transaction_actions() {
    let a = BlockDirtyBitmapAdd::new("drive0", "b0").into_action();
    assert_eq!(
        serde_json::to_value(&a).expect("encodes"),
        json!({"type": "block-dirty-bitmap-add", "data": {"node": "drive0", "name": "b0"}})
    );
    let r = BlockDirtyBitmapRemove(BlockDirtyBitmap::new("drive0", "b0")).into_action();
    assert_eq!(
        serde_json::to_value(&r).expect("encodes"),
        json!({"type": "block-dirty-bitmap-remove", "data": {"node": "drive0", "name": "b0"}})
    );
    let abort = Abort::new().into_action();
    assert_eq!(
        serde_json::to_value(&abort).expect("encodes"),
        json!({"type": "abort", "data": {}})
    );
    let t = Transaction::new(vec![a, r, abort]).with_properties(
        TransactionProperties::new().with_completion_mode(ActionCompletionMode::Grouped),
    );
    let v = serde_json::to_value(&t).expect("encodes");
    assert_eq!(v["properties"], json!({"completion-mode": "grouped"}));
    let _: Transaction = roundtrip(v);
}

#[test]
fn device_add_takes_free_form_properties() {
    let mut d = DeviceAdd::new("usb-tablet")
        .with_id("tab1")
        .with_bus("xhci.0");
    d.properties.insert("serial".into(), json!("42"));
    let v = json!({"driver": "usb-tablet", "id": "tab1", "bus": "xhci.0", "serial": "42"});
    assert_eq!(serde_json::to_value(&d).expect("encodes"), v);
    let back: DeviceAdd = serde_json::from_value(v).expect("decodes");
    assert_eq!(back.bus.as_deref(), Some("xhci.0"));
    assert_eq!(back.properties["serial"], "42");
}

#[test]
fn boxed_commands_wrap_their_type() {
    let add = BlockdevAdd(
        BlockdevOptions::new(BlockdevOptionsBranch::NullCo(BlockdevOptionsNull::new()))
            .with_node_name("n"),
    );
    assert_eq!(<BlockdevAdd as Command>::NAME, "blockdev-add");
    assert_eq!(
        serde_json::to_value(&add).expect("encodes"),
        json!({"driver": "null-co", "node-name": "n"})
    );
}

#[test]
fn transactions_reject_other_commands() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

#[test]
fn structs_decode_from_text_readers_and_values_alike() {
    let text = r#"{"node": "drive0", "name": "b0", "persistent": true}"#;
    let from_str: BlockDirtyBitmapAdd = serde_json::from_str(text).expect("from text");
    let from_reader: BlockDirtyBitmapAdd =
        serde_json::from_reader(text.as_bytes()).expect("from a reader (keys not borrowed)");
    let from_value: BlockDirtyBitmapAdd =
        serde_json::from_value(serde_json::from_str(text).expect("json")).expect("from a value");
    assert_eq!(from_str, from_reader);
    assert_eq!(from_str, from_value);
    assert_eq!(from_str.persistent, Some(true));
    // A key with an escape can't be borrowed from the input: still known.
    let escaped: BlockDirtyBitmapAdd =
        serde_json::from_str(r#"{"\u006eode": "drive0", "name": "b0"}"#).expect("escaped key");
    assert_eq!(escaped.node, "drive0");
    // A repeated key: the last one counts (as in serde_json's maps).
    let twice: BlockDirtyBitmapAdd =
        serde_json::from_str(r#"{"node": "a", "name": "b0", "node": "b"}"#).expect("repeated");
    assert_eq!(twice.node, "b");
}

#[test]
fn struct_decoding_errors_name_what_is_wrong() {
    let missing = serde_json::from_value::<BlockDirtyBitmapAdd>(json!({"node": "d"}))
        .expect_err("name is required");
    assert!(
        missing.to_string().contains("missing field `name`"),
        "{missing}"
    );
    let shape = serde_json::from_value::<BlockDirtyBitmapAdd>(json!("drive0"))
        .expect_err("a string is not an object");
    assert!(
        shape
            .to_string()
            .contains("an object (BlockDirtyBitmapAdd)"),
        "{shape}"
    );
    let member = serde_json::from_value::<BlockDirtyBitmapAdd>(
        json!({"node": "d", "name": "b", "granularity": "big"}),
    )
    .expect_err("granularity is an integer");
    assert!(member.to_string().contains("invalid type"), "{member}");
}

#[test]
fn null_is_a_value_only_for_optional_any_members() {
    // `ObjectPropertyInfo.default-value` is an optional `any`.
    let info: ObjectPropertyInfo =
        roundtrip(json!({"name": "p", "type": "int", "default-value": null}));
    assert_eq!(info.default_value, Some(Value::Null));
    let absent: ObjectPropertyInfo = roundtrip(json!({"name": "p", "type": "int"}));
    assert_eq!(absent.default_value, None);
    // Any other optional member: null means absent.
    let cmd: BlockDirtyBitmapAdd =
        serde_json::from_value(json!({"node": "d", "name": "b", "persistent": null}))
            .expect("decodes");
    assert_eq!(cmd.persistent, None);
}

#[test]
fn enums_parse_and_borrow_as_str() {
    let s: RunState = "running".parse().expect("a known value");
    assert_eq!(s, RunState::Running);
    assert_eq!(s.as_ref(), "running");
    assert!("from-a-later-qemu".parse::<RunState>().is_err());
    let odd = RunState::from_wire("from-a-later-qemu");
    assert_eq!(odd, RunState::Unknown("from-a-later-qemu".into()));
    assert_eq!(odd.as_ref(), "from-a-later-qemu");
    fn takes_str(s: impl AsRef<str>) -> usize {
        s.as_ref().len()
    }
    assert_eq!(takes_str(JobStatus::Concluded), "concluded".len());
}

/// Integer members take their own type in `new` and the setters, so a
/// plain literal (an `i32` under `impl Into<u64>`) compiles.
#[test]
fn integer_members_take_plain_literals() {
    let p = MigrateSetParameters::new()
        .with_max_bandwidth(1 << 20)
        .with_downtime_limit(300);
    let v = serde_json::to_value(&p).expect("encodes");
    assert_eq!(v["max-bandwidth"], json!(1_048_576));
    assert_eq!(v["downtime-limit"], json!(300));
    let s = BlockJobSetSpeed::new("job0", 32 << 20);
    assert_eq!(
        serde_json::to_value(&s).expect("encodes"),
        json!({"device": "job0", "speed": 33_554_432})
    );
}

#[test]
fn large_branches_and_optional_members_are_boxed_and_read_the_same() {
    // A qcow2 image as QEMU 10.2 describes it: the qcow2 branch and
    // `limits` are boxed (boxing.rs), the wire format is unchanged.
    let v = json!({
        "filename": "/tmp/a.qcow2", "format": "qcow2", "virtual-size": 1048576,
        "actual-size": 200704, "cluster-size": 65536, "dirty-flag": false,
        "format-specific": {"type": "qcow2", "data": {
            "compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false,
            "refcount-bits": 16, "corrupt": false, "extended-l2": false}},
        "limits": {"request-alignment": 1, "max-iov": 1024,
            "min-mem-alignment": 512, "opt-mem-alignment": 4096}
    });
    let info: ImageInfo = roundtrip(v.clone());
    let Some(ImageInfoSpecific::Qcow2(q)) = &info.format_specific else {
        panic!("the qcow2 branch: {:?}", info.format_specific)
    };
    // Fields read through the box as before.
    assert_eq!(q.data.refcount_bits, 16);
    assert_eq!(info.limits.as_ref().map(|l| l.max_iov), Some(1024));
    // Built from the unboxed values, through `From`, the branch
    // constructor and the setter.
    let qcow2 = ImageInfoSpecificQCow2::new("1.1", 16, Qcow2CompressionType::Zlib)
        .with_lazy_refcounts(false)
        .with_corrupt(false)
        .with_extended_l2(false);
    let built = ImageInfo::new("/tmp/a.qcow2", "qcow2", 1048576)
        .with_actual_size(200704)
        .with_cluster_size(65536)
        .with_dirty_flag(false)
        .with_format_specific(ImageInfoSpecific::qcow2(
            ImageInfoSpecificQCow2Wrapper::new(qcow2.clone()),
        ))
        .with_limits(BlockLimitsInfo::new(1, 1024, 512, 4096));
    assert_eq!(serde_json::to_value(&built).expect("encodes"), v);
    assert_eq!(
        ImageInfoSpecific::from(ImageInfoSpecificQCow2Wrapper::new(qcow2)),
        *info.format_specific.as_ref().expect("present")
    );
}

#[test]
fn reply_types_stay_small() {
    // What a decode moves around (a `Vec` growing, values returned): the
    // sizes with the large branches and optional members boxed. Measured
    // on x86_64; a generator change that inlines them again fails here.
    use std::mem::size_of;
    assert!(
        size_of::<ImageInfoSpecific>() <= 96,
        "{}",
        size_of::<ImageInfoSpecific>()
    );
    assert!(size_of::<ImageInfo>() <= 304, "{}", size_of::<ImageInfo>());
    assert!(
        size_of::<BlockDeviceInfo>() <= 800,
        "{}",
        size_of::<BlockDeviceInfo>()
    );
    assert!(size_of::<BlockInfo>() <= 128, "{}", size_of::<BlockInfo>());
    assert!(
        size_of::<SchemaInfo>() <= 136,
        "{}",
        size_of::<SchemaInfo>()
    );
    // Every event is decoded into it: 264 bytes with VNC_INITIALIZED's
    // data inline.
    assert!(size_of::<AnyEvent>() <= 128, "{}", size_of::<AnyEvent>());
}

#[test]
fn a_large_event_is_boxed_in_any_event_and_reads_the_same() {
    let data = json!({
        "server": {"host": "127.0.0.1", "service": "5900", "family": "ipv4",
            "websocket": false, "auth": "none"},
        "client": {"host": "127.0.0.1", "service": "50012", "family": "ipv4",
            "websocket": false}
    });
    let any = AnyEvent::deserialize_data("VNC_INITIALIZED", &data).expect("decodes");
    let AnyEvent::VncInitialized(boxed) = &any else {
        panic!("VNC_INITIALIZED: {any:?}")
    };
    assert_eq!(boxed.server.service, "5900");
    let by_ref = VncInitialized::from_any_ref(&any).expect("the event");
    assert_eq!(by_ref.client.service, "50012");
    let mut back = Vec::new();
    any.serialize_data(&mut serde_json::Serializer::new(&mut back))
        .expect("encodes");
    assert_eq!(serde_json::from_slice::<Value>(&back).expect("JSON"), data);
    let event = VncInitialized::from_any(any.clone()).expect("the event");
    assert_eq!(AnyEvent::from(event), any);
    // A small event is held inline, and converts the same way.
    let any =
        AnyEvent::deserialize_data("DEVICE_DELETED", &json!({"path": "/p"})).expect("decodes");
    let deleted = DeviceDeleted::from_any(any.clone()).expect("the event");
    assert_eq!(deleted.path, "/p");
    assert_eq!(AnyEvent::from(deleted), any);
    assert_eq!(VncInitialized::from_any(any), None);
}

/// A caller's `Option` goes into the builder chain as it is: `maybe_x`
/// sets the member or leaves it absent (issue 38, 2).
#[test]
fn maybe_setters_take_a_callers_option() {
    let id: Option<&str> = Some("bk");
    let speed: Option<i64> = None;
    let b = BlockdevBackup::new("src", MirrorSyncMode::Full, "dst")
        .maybe_job_id(id)
        .maybe_speed(speed)
        .maybe_on_target_error(Some(BlockdevOnError::Enospc));
    assert_eq!(b.job_id.as_deref(), Some("bk"));
    assert_eq!(b.speed, None);
    assert_eq!(b.on_target_error, Some(BlockdevOnError::Enospc));
    let cleared: Option<String> = None;
    assert_eq!(b.maybe_job_id(cleared).job_id, None);
}
