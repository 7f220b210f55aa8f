//! The generated types against live QEMU 10.0.2 and Debian 12's QEMU 7.2
//! (`qemu-storage-daemon` and `qemu-system-x86_64` of each, on private
//! sockets): every argument-less `query-*` command each binary offers is
//! executed, its reply decoded into the generated type and encoded again,
//! and the result must equal the reply (no error, no lost member). Then
//! typed commands are sent and their replies checked.

use qmp_client::launch::{Flavor, Launcher};
use qmp_types::*;
use serde_json::{Value, json};
use tests::{
    RawQmp, Which, launcher,
    live_queries::{decode_reply, queries},
};

/// Numbers compared by value (`0` and `0.0` are the same number to QEMU).
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

/// Where two values first differ, as a JSON path.
fn first_diff(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => return Some(format!("{path}.{k}: missing in ours (QEMU: {v})")),
                    Some(w) => {
                        if let Some(d) = first_diff(v, w, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}.{k}: only in ours"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_diff(v, w, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: QEMU {a}, ours {b}")),
    }
}

fn offered_commands(q: &mut RawQmp) -> Vec<String> {
    let reply = q
        .execute("query-qmp-schema", json!({}))
        .expect("query-qmp-schema");
    let mut names: Vec<String> = reply["return"]
        .as_array()
        .expect("schema is a list")
        .iter()
        .filter(|e| e["meta-type"] == "command")
        .filter_map(|e| e["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

/// Runs every argument-less query; returns (decoded, errors from QEMU).
fn decode_all(q: &mut RawQmp) -> (Vec<String>, Vec<String>) {
    let mut decoded = Vec::new();
    let mut qemu_errors = Vec::new();
    let mut failures = Vec::new();
    let queries = queries();
    for name in offered_commands(q) {
        if !queries.contains(&name.as_str()) {
            continue;
        }
        let reply = q.execute(&name, json!({})).expect("reply");
        let Some(ret) = reply.get("return").cloned() else {
            qemu_errors.push(format!("{name}: {}", reply["error"]["class"]));
            continue;
        };
        match decode_reply(&name, ret.clone()) {
            None => failures.push(format!("{name}: listed but not decodable")),
            Some(Err(e)) => failures.push(format!("{name}: does not decode: {e}")),
            Some(Ok(again)) => {
                if let Some(d) = first_diff(&normalize(&ret), &normalize(&again), "") {
                    failures.push(format!("{name}: lost or changed member: {d}"));
                } else {
                    decoded.push(name);
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} replies did not round-trip:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (decoded, qemu_errors)
}

#[test]
fn storage_daemon_queries_decode() {
    storage_daemon_queries(Which::Installed);
}

#[test]
fn storage_daemon_queries_decode_on_qemu_7_2() {
    storage_daemon_queries(Which::Qemu72);
}

fn storage_daemon_queries(which: Which) {
    let qsd = launcher(which, Flavor::StorageDaemon)
        .start_blocking()
        .expect("start qemu-storage-daemon");
    let (mut q, greeting) = RawQmp::connect(qsd.socket()).expect("connect");
    let v = &greeting["QMP"]["version"]["qemu"];
    assert_eq!(
        (v["major"].as_i64(), v["minor"].as_i64()),
        (Some(which.series().0), Some(which.series().1))
    );
    // Something to report on: a node, a bitmap, an export.
    let add = BlockdevAdd::new(
        BlockdevOptions::null_co(BlockdevOptionsNull::new().with_size(1i64 << 20))
            .with_node_name("null0"),
    );
    let r = q
        .execute(
            BlockdevAdd::NAME,
            serde_json::to_value(&add).expect("encodes"),
        )
        .expect("reply");
    assert_eq!(r["return"], json!({}), "{r}");
    let (decoded, errors) = decode_all(&mut q);
    eprintln!(
        "decoded {}: {decoded:?}\nQEMU errors: {errors:?}",
        decoded.len()
    );
    for must in [
        "query-named-block-nodes",
        "query-qmp-schema",
        "query-version",
        "query-jobs",
        "query-block-exports",
    ] {
        assert!(decoded.iter().any(|d| d == must), "{must} not decoded");
    }
    assert!(
        decoded.len() >= 10,
        "only {} queries decoded",
        decoded.len()
    );
}

#[test]
fn system_emulator_queries_decode() {
    system_emulator_queries(Which::Installed);
}

#[test]
fn system_emulator_queries_decode_on_qemu_7_2() {
    system_emulator_queries(Which::Qemu72);
}

fn system_emulator_queries(which: Which) {
    let qemu = launcher(which, Flavor::System)
        .guestless()
        .args([
            "-S",
            "-device",
            "qemu-xhci,id=xhci",
            "-device",
            "usb-tablet,id=tab0,bus=xhci.0",
        ])
        .start_blocking()
        .expect("start qemu-system-x86_64");
    let (mut q, _) = RawQmp::connect(qemu.socket()).expect("connect");
    let (decoded, errors) = decode_all(&mut q);
    eprintln!(
        "decoded {}: {decoded:?}\nQEMU errors: {errors:?}",
        decoded.len()
    );
    for must in [
        "query-status",
        "query-cpus-fast",
        "query-pci",
        "query-machines",
        "query-qmp-schema",
        "query-chardev",
    ] {
        assert!(decoded.iter().any(|d| d == must), "{must} not decoded");
    }
    assert!(
        decoded.len() >= 40,
        "only {} queries decoded",
        decoded.len()
    );
}

fn typed<C: Command>(q: &mut RawQmp, cmd: &C) -> Result<C::Returns, Value> {
    let reply = q
        .execute(C::NAME, serde_json::to_value(cmd).expect("encodes"))
        .expect("reply");
    match reply.get("return") {
        Some(Value::Object(o)) if o.is_empty() => serde_json::from_value(Value::Null)
            .or_else(|_| serde_json::from_value(json!({})))
            .map_err(|e| json!(e.to_string())),
        Some(r) => serde_json::from_value(r.clone()).map_err(|e| json!(e.to_string())),
        None => Err(reply["error"].clone()),
    }
}

#[test]
fn typed_commands_against_the_storage_daemon() {
    let qsd = Launcher::storage_daemon()
        .start_blocking()
        .expect("start qemu-storage-daemon");
    let (mut q, _) = RawQmp::connect(qsd.socket()).expect("connect");
    let version = typed(&mut q, &QueryVersion::new()).expect("query-version");
    assert_eq!(
        (version.qemu.major, version.qemu.minor, version.qemu.micro),
        (10, 0, 2)
    );
    let add = BlockdevAdd::new(
        BlockdevOptions::null_co(BlockdevOptionsNull::new().with_size(1i64 << 20))
            .with_node_name("n0"),
    );
    typed(&mut q, &add).expect("blockdev-add");
    let nodes = typed(&mut q, &QueryNamedBlockNodes::new().with_flat(true))
        .expect("query-named-block-nodes");
    let n0 = nodes
        .iter()
        .find(|n| n.node_name.as_deref() == Some("n0"))
        .expect("n0 listed");
    assert_eq!(n0.drv, "null-co");
    assert_eq!(n0.image.virtual_size, 1 << 20);
    typed(&mut q, &BlockDirtyBitmapAdd::new("n0", "b0")).expect("bitmap add");
    // A transaction of typed actions.
    let t = Transaction::new(vec![
        BlockDirtyBitmapClear(BlockDirtyBitmap::new("n0", "b0")).into_action(),
        BlockDirtyBitmapAdd::new("n0", "b1")
            .with_granularity(65536u32)
            .into_action(),
    ]);
    typed(&mut q, &t).expect("transaction");
    let nodes = typed(&mut q, &QueryNamedBlockNodes::new().with_flat(true)).expect("query");
    let n0 = nodes
        .iter()
        .find(|n| n.node_name.as_deref() == Some("n0"))
        .expect("n0");
    let mut names: Vec<&str> = n0
        .dirty_bitmaps
        .iter()
        .flatten()
        .filter_map(|b| b.name.as_deref())
        .collect();
    names.sort();
    assert_eq!(names, ["b0", "b1"]);
    // An error: the class comes back as QEMU sends it.
    let err = typed(&mut q, &BlockDirtyBitmapAdd::new("nope", "b")).expect_err("no such node");
    assert_eq!(err["class"], "GenericError");
}

#[test]
fn typed_commands_against_the_system_emulator() {
    let qemu = Launcher::system_x86_64()
        .guestless()
        .args(["-device", "qemu-xhci,id=xhci"])
        .start_blocking()
        .expect("start qemu-system-x86_64");
    let (mut q, _) = RawQmp::connect(qemu.socket()).expect("connect");
    let s = typed(&mut q, &QueryStatus::new()).expect("query-status");
    assert_eq!(s.status, RunState::Running);
    typed(&mut q, &Stop::new()).expect("stop");
    assert_eq!(
        typed(&mut q, &QueryStatus::new()).expect("status").status,
        RunState::Paused
    );
    let mut dev = DeviceAdd::new("usb-tablet")
        .with_id("tab1")
        .with_bus("xhci.0");
    dev.properties.insert("serial".into(), json!("42"));
    typed(&mut q, &dev).expect("device_add");
    let props = typed(&mut q, &QomList::new("/machine/peripheral")).expect("qom-list");
    assert!(props.iter().any(|p| p.name == "tab1"), "{props:?}");
    let serial =
        typed(&mut q, &QomGet::new("/machine/peripheral/tab1", "serial")).expect("qom-get");
    assert_eq!(serial, json!("42"));
    let err = typed(&mut q, &DeviceDel::new("nope")).expect_err("no such device");
    assert_eq!(err["class"], "DeviceNotFound");
}
