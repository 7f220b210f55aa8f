//! The disk code of `qmp_examples::disks` (the testing guide's VM
//! manager), tested twice: its five unit tests against the double, with
//! the scripted jobs and devices (the same tests the guide shows), and
//! the same functions against real QEMU 10.0.2 and 7.2 (guestless
//! `qemu-system-x86_64`), where QEMU itself refuses, never deletes, fails
//! and dies.

#![allow(
    clippy::unwrap_used,
    reason = "the testing guide's tests, written as the guide writes them"
)]

use std::time::Duration;

use qmp_client::launch::{Flavor, Qemu};
use qmp_client::testing::{MockQemu, ScriptedDevice, ScriptedJob};
use qmp_client::{Client, Error, ErrorClass, Options};
use qmp_examples::disks::{back_up_disk, hot_plug_disk, unplug_disk};
use qmp_types::*;
use serde_json::json;
use tests::Which;

const T: Duration = Duration::from_secs(10);

// The guide's tests, against the double (both versions the recordings
// cover).

mod double {
    use super::*;

    async fn double(v: &str) -> (MockQemu, Client) {
        let mock = MockQemu::with_version(v).unwrap();
        let qmp = mock.connect(Options::default()).await.unwrap();
        (mock, qmp)
    }

    #[tokio::test]
    async fn plugs_backs_up_and_unplugs() {
        for v in ["10.0.2", "7.2"] {
            let (mock, qmp) = double(v).await;
            mock.allow::<BlockdevAdd>();
            mock.allow::<DeviceAdd>();
            mock.allow::<BlockdevDel>();
            mock.job(ScriptedJob::backup("vd0-backup"))
                .device(ScriptedDevice::deleted("vd0"));
            hot_plug_disk(&qmp, "vd0", "/images/vd0.qcow2", "virtio-blk-pci")
                .await
                .unwrap();
            back_up_disk(&qmp, "vd0", "tgt", T).await.unwrap();
            unplug_disk(&qmp, "vd0", T).await.unwrap();
            mock.verify().unwrap();
        }
    }

    #[tokio::test]
    async fn a_refused_blockdev_add_adds_no_device() {
        let (mock, qmp) = double("10.0.2").await;
        mock.expect::<BlockdevAdd>()
            .fail(ErrorClass::GenericError, "Could not open '/nope'");
        let err = hot_plug_disk(&qmp, "vd0", "/nope", "virtio-blk-pci")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Could not open"), "{err}");
        mock.verify().unwrap(); // and no device_add was sent
    }

    #[tokio::test]
    async fn a_device_never_deleted_times_out_and_keeps_its_node() {
        let (mock, qmp) = double("10.0.2").await;
        mock.allow::<BlockdevAdd>();
        mock.allow::<DeviceAdd>();
        mock.device(ScriptedDevice::never_deleted("vd0"));
        hot_plug_disk(&qmp, "vd0", "/images/vd0.qcow2", "virtio-blk-pci")
            .await
            .unwrap();
        let err = unplug_disk(&qmp, "vd0", Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        mock.verify().unwrap(); // and no blockdev-del was sent
    }

    #[tokio::test]
    async fn a_failing_backup_says_why() {
        let (mock, qmp) = double("7.2").await;
        mock.allow::<BlockdevAdd>();
        mock.allow::<DeviceAdd>();
        mock.job(ScriptedJob::backup("vd0-backup").fails("Input/output error"));
        hot_plug_disk(&qmp, "vd0", "/images/vd0.qcow2", "virtio-blk-pci")
            .await
            .unwrap();
        let err = back_up_disk(&qmp, "vd0", "tgt", T).await.unwrap_err();
        assert!(matches!(&err, Error::JobFailed { error, .. } if error == "Input/output error"));
        mock.verify().unwrap();
    }

    #[tokio::test]
    async fn qemu_dying_mid_backup_is_reported() {
        let (mock, qmp) = double("10.0.2").await;
        mock.allow::<BlockdevAdd>();
        mock.allow::<DeviceAdd>();
        mock.job(ScriptedJob::backup("vd0-backup").until_cancelled());
        hot_plug_disk(&qmp, "vd0", "/images/vd0.qcow2", "virtio-blk-pci")
            .await
            .unwrap();
        let running = qmp.events_of::<JobStatusChange>(qmp.event_cursor());
        let dies = async { running.wait(T).await.map(|_| mock.close()) };
        let (err, _) = tokio::join!(back_up_disk(&qmp, "vd0", "tgt", T), dies);
        let err = err.unwrap_err();
        assert!(matches!(err, Error::Closed(_)), "{err}");
        mock.verify().unwrap();
    }
}

// The same functions against real QEMU.

async fn qemu(which: Which) -> (Qemu, Client) {
    let q = tests::start(
        tests::launcher(which, Flavor::System)
            .guestless()
            .args(["-device", "qemu-xhci,id=xhci"]),
    )
    .await;
    let c = q.connect(Options::default()).await.expect("connects");
    (q, c)
}

/// A 16 MiB qcow2 image in `q`'s folder, its first 4 MiB written (a
/// backup has data to copy); its path.
fn image(q: &Qemu, name: &str) -> String {
    let path = q.dir().join(format!("{name}.qcow2"));
    let run = |program: &str, args: &[&str]| {
        let st = std::process::Command::new(program)
            .args(args)
            .arg(&path)
            .output()
            .expect("runs");
        assert!(st.status.success(), "{program}: {st:?}");
    };
    run(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", "-o", "size=16M"],
    );
    run("qemu-io", &["-f", "qcow2", "-c", "write -P 0xaa 0 4M"]);
    path.to_string_lossy().into_owned()
}

/// Backup target node `name` over a new image: plain, failing every
/// write (blkdebug, EIO), or throttled to 64 KiB/s.
async fn target(q: &Qemu, c: &Client, name: &str, how: &str) {
    let file = json!({"driver": "file", "filename": image(q, name)});
    let file = match how {
        "failing" => json!({"driver": "blkdebug",
            "inject-error": [{"event": "write_aio", "errno": 5}], "image": file}),
        _ => file,
    };
    let mut node = json!({"driver": "qcow2", "node-name": name, "file": file});
    if how == "slow" {
        c.execute_raw(
            "object-add",
            json!({"qom-type": "throttle-group", "id": "tg", "limits": {"bps-total": 65536}}),
        )
        .await
        .expect("throttle group");
        node["node-name"] = json!(format!("{name}-inner"));
        c.execute_raw("blockdev-add", node).await.expect("target");
        node = json!({"driver": "throttle", "node-name": name, "throttle-group": "tg",
                      "file": format!("{name}-inner")});
    }
    c.execute_raw("blockdev-add", node).await.expect("target");
}

async fn live(which: Which) {
    // Plugs (USB: QEMU unplugs it without a guest), backs up, unplugs.
    let (q, c) = qemu(which).await;
    let img = image(&q, "vd0");
    hot_plug_disk(&c, "vd0", &img, "usb-storage")
        .await
        .expect("plugged");
    target(&q, &c, "tgt", "plain").await;
    back_up_disk(&c, "vd0", "tgt", T).await.expect("backed up");
    unplug_disk(&c, "vd0", T).await.expect("unplugged");
    let nodes = c.execute(QueryNamedBlockNodes::new()).await.expect("nodes");
    assert!(
        nodes
            .iter()
            .all(|n| n.node_name.as_deref() != Some("vd0-node"))
    );

    // blockdev-add refused: no device added.
    let err = hot_plug_disk(&c, "vd1", "/nonexistent.qcow2", "usb-storage")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent.qcow2"), "{err}");
    assert!(c.execute(DeviceDel::new("vd1")).await.is_err());

    // A PCI device without a guest is never deleted; its node stays.
    let img = image(&q, "vd2");
    hot_plug_disk(&c, "vd2", &img, "virtio-blk-pci")
        .await
        .expect("plugged");
    let err = unplug_disk(&c, "vd2", Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    let nodes = c.execute(QueryNamedBlockNodes::new()).await.expect("nodes");
    assert!(
        nodes
            .iter()
            .any(|n| n.node_name.as_deref() == Some("vd2-node"))
    );

    // A backup whose target fails.
    target(&q, &c, "etgt", "failing").await;
    let err = back_up_disk(&c, "vd2", "etgt", T).await.unwrap_err();
    assert!(
        matches!(&err, Error::JobFailed { error, .. } if error == "Input/output error"),
        "{err}"
    );

    // QEMU dies while the backup runs (slowed to 64 KiB/s).
    target(&q, &c, "slow", "slow").await;
    let running = c
        .events_of::<JobStatusChange>(c.event_cursor())
        .matching(|e| e.id == "vd2-backup" && e.status == JobStatus::Running);
    let backup = back_up_disk(&c, "vd2", "slow", T);
    let kill = async {
        running.wait(T).await.expect("running");
        q.shutdown().expect("killed");
    };
    let (err, ()) = tokio::join!(backup, kill);
    let err = err.unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_functions_on_qemu_10_0_2() {
    live(Which::Installed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_functions_on_qemu_7_2() {
    live(Which::Qemu72).await;
}

/// The testing guide shows `qmp_examples::disks` as it is.
#[test]
fn the_testing_guide_shows_this_disk_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let code = std::fs::read_to_string(root.join("examples/src/disks.rs")).expect("disks.rs");
    let guide =
        std::fs::read_to_string(root.join("qmp-client/docs/testing.md")).expect("testing.md");
    let shown = code
        .split_once("// guide: begin\n")
        .map(|(_, rest)| rest)
        .expect("the marker");
    assert!(
        guide.contains(&format!("```rust\n{shown}")),
        "qmp-client/docs/testing.md's first example must show examples/src/disks.rs from \
         its `guide: begin` marker on, unchanged"
    );
}
