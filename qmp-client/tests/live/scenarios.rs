//! The cookbook's scenarios against real QEMU 10.0.2, 7.2 and 11.1.3 (newer
//! than the bindings): device
//! removal, the tray, run states, HMP, block jobs and transactions, each
//! with its events.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_del_then_device_deleted() {
    device_del_scenario(Which::Installed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_del_then_device_deleted_on_qemu_7_2() {
    device_del_scenario(Which::Qemu72).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_del_then_device_deleted_on_qemu_11_1() {
    device_del_scenario(Which::Qemu111).await;
}

async fn device_del_scenario(which: Which) {
    let qemu = system_of(
        which,
        &[
            "-device",
            "qemu-xhci,id=xhci",
            "-device",
            "usb-tablet,id=tab0,bus=xhci.0",
        ],
    )
    .await;
    let c = connect(&qemu, Options::default()).await;
    let since = c.event_cursor();
    c.execute(DeviceDel::new("tab0")).await.expect("device_del");
    let (_, e) = c
        .events_of::<DeviceDeleted>(since)
        .matching(|e| e.device.as_deref() == Some("tab0"))
        .wait(T)
        .await
        .expect("DEVICE_DELETED");
    assert_eq!(e.path, "/machine/peripheral/tab0");
    // Hot-plugged, then unplugged; waited for by time this time.
    let mut add = DeviceAdd::new("usb-tablet")
        .with_id("tab1")
        .with_bus("xhci.0");
    add.properties.insert("serial".into(), "7".into());
    c.execute(add).await.expect("device_add");
    let since = Since::now();
    c.execute(DeviceDel::new("tab1")).await.expect("device_del");
    c.events_of::<DeviceDeleted>(since)
        .matching(|e| e.device.as_deref() == Some("tab1"))
        .wait(T)
        .await
        .expect("DEVICE_DELETED tab1");
    // The helpers: a property by name, and device_del with its event.
    c.execute(
        DeviceAdd::new("usb-tablet")
            .with_id("tab2")
            .with_bus("xhci.0")
            .with_property("serial", "8"),
    )
    .await
    .expect("device_add");
    let e = c.unplug("tab2", T).await.expect("unplugged");
    assert_eq!(e.device.as_deref(), Some("tab2"));
    // The history answers later questions too.
    assert_eq!(
        c.events_of::<DeviceDeleted>(Since::Cursor(0)).found().len(),
        3
    );
    let err = c
        .execute(DeviceDel::new("nope"))
        .await
        .expect_err("unknown device");
    assert_eq!(err.class(), Some(&ErrorClass::DeviceNotFound));
}

/// The workflows page's hot-plug, as written there: a qcow2 node, a
/// virtio-blk device on a q35 root port, `query-block`'s QOM path, and
/// an unplug that completes without a guest (native PCIe hotplug).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_hot_plug_and_unplug_on_native_pcie() {
    let dir = tests::TempDir::new("hotplug").expect("dir");
    let img = dir.path().join("data.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &img.to_string_lossy(), "16M"]);
    let qemu = system(&[
        "-machine",
        "q35",
        "-global",
        "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
        "-device",
        "pcie-root-port,id=rp1",
    ])
    .await;
    let c = connect(&qemu, Options::default()).await;
    c.execute(qcow2_node("data0", &img))
        .await
        .expect("blockdev-add");
    c.execute(
        DeviceAdd::new("virtio-blk-pci")
            .with_id("vd0")
            .with_property("drive", "data0")
            .with_property("bus", "rp1"),
    )
    .await
    .expect("device_add");
    let blocks = c.execute(QueryBlock::new()).await.expect("query-block");
    let qdev: Vec<_> = blocks.iter().filter_map(|b| b.qdev.as_deref()).collect();
    assert_eq!(qdev, ["/machine/peripheral/vd0/virtio-backend"]);
    let e = c.unplug("vd0", T).await.expect("DEVICE_DELETED vd0");
    assert_eq!(e.path, "/machine/peripheral/vd0");
    c.execute(BlockdevDel::new("data0"))
        .await
        .expect("node freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_events_arrive_before_the_reply_and_are_not_missed() {
    tray_scenario(Which::Installed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_events_arrive_before_the_reply_and_are_not_missed_on_qemu_7_2() {
    tray_scenario(Which::Qemu72).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_events_arrive_before_the_reply_and_are_not_missed_on_qemu_11_1() {
    tray_scenario(Which::Qemu111).await;
}

async fn tray_scenario(which: Which) {
    let dir = tests::TempDir::new("tray").expect("dir");
    let cd = dir.path().join("cd.raw");
    qemu_img(&["create", "-q", "-f", "raw", &cd.to_string_lossy(), "1M"]);
    let file = format!(
        "driver=file,filename={},node-name=cdfile,read-only=on",
        cd.display()
    );
    let qemu = system_of(
        which,
        &[
            "-blockdev",
            &file,
            "-blockdev",
            "driver=raw,file=cdfile,node-name=cdraw,read-only=on",
            "-device",
            "ide-cd,id=cd0,drive=cdraw,bus=ide.1",
        ],
    )
    .await;
    let c = connect(&qemu, Options::default()).await;
    let since = c.event_cursor();
    c.execute(BlockdevOpenTray::new().with_id("cd0"))
        .await
        .expect("open");
    // The event came before the reply; it is still found.
    let tray = |open: bool| move |e: &DeviceTrayMoved| e.id == "cd0" && e.tray_open == open;
    let (_, e) = c
        .events_of::<DeviceTrayMoved>(since)
        .matching(tray(true))
        .wait(T)
        .await
        .expect("opened");
    assert!(e.tray_open);
    assert_eq!(e.device, "");
    let since = c.event_cursor();
    c.execute(BlockdevCloseTray::new().with_id("cd0"))
        .await
        .expect("close");
    c.events_of::<DeviceTrayMoved>(since)
        .matching(tray(false))
        .wait(T)
        .await
        .expect("closed");
    let since = c.event_cursor();
    c.execute(Eject::new().with_id("cd0")).await.expect("eject");
    c.events_of::<DeviceTrayMoved>(since)
        .matching(|e| e.id == "cd0")
        .wait(T)
        .await
        .expect("moved");
    // Nothing more happens: waiting for another close times out.
    let since = c.event_cursor();
    let r = c
        .events_of::<DeviceTrayMoved>(since)
        .matching(tray(false))
        .wait(Duration::from_millis(300))
        .await;
    assert!(r.expect_err("no event").is_timeout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runstate_resume_stop_and_shutdown_on_quit() {
    let qemu = system(&["-S"]).await;
    let c = connect(&qemu, Options::default()).await;
    assert_eq!(
        c.execute(QueryStatus::new()).await.expect("status").status,
        RunState::Prelaunch
    );
    let since = c.event_cursor();
    c.execute(Cont::new()).await.expect("cont");
    c.events_of::<Resume>(since).wait(T).await.expect("RESUME");
    let since = c.event_cursor();
    c.execute(Stop::new()).await.expect("stop");
    c.events_of::<StopEvent>(since).wait(T).await.expect("STOP");
    // Waiting for SHUTDOWN while `quit` runs (a guestless QEMU ignores
    // system_powerdown).
    let waiter = {
        let c = c.clone();
        let since = c.event_cursor();
        tokio::spawn(async move { c.events_of::<Shutdown>(since).wait(T).await })
    };
    let r = c.execute(Quit::new()).await;
    assert!(
        r.is_ok() || r.as_ref().is_err_and(Error::is_socket_closed),
        "{r:?}"
    );
    let (_, s) = waiter.await.expect("task").expect("SHUTDOWN");
    assert_eq!(s.reason, ShutdownCause::HostQmpQuit);
    tokio::time::timeout(T, c.closed())
        .await
        .expect("closed after quit");
    let err = c.execute(QueryStatus::new()).await.expect_err("closed");
    assert!(err.is_socket_closed(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_monitor_commands() {
    let qemu = system(&[]).await;
    let c = connect(&qemu, Options::default()).await;
    assert_eq!(c.human("info vnc").await.expect("hmp"), "None\r\n");
    assert_eq!(
        c.human("info status").await.expect("hmp"),
        "VM status: running\r\n"
    );
    // HMP's errors are errors, with QEMU's text; `human_output` keeps it
    // as text.
    for (line, text) in [
        ("no-such-hmp-cmd", "unknown command: 'no-such-hmp-cmd'"),
        ("device_del nosuch", "Error: Device 'nosuch' not found"),
        (
            "block_set_io_throttle",
            "Try \"help block_set_io_throttle\"",
        ),
    ] {
        match c.human(line).await {
            Err(Error::Hmp {
                command_line,
                message,
            }) => {
                assert_eq!(command_line, line);
                assert!(message.contains(text), "{message}");
            }
            other => panic!("{line}: {other:?}"),
        }
    }
    assert!(
        c.human_output("no-such-hmp-cmd")
            .await
            .expect("hmp")
            .contains("unknown command")
    );
}

/// HMP's `qemu-io` answers nothing over QMP and prints on QEMU's
/// stdout, which the launcher keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_stdout_is_kept() {
    let qemu = system(&["-blockdev", "null-co,node-name=n0,size=1048576"]).await;
    let c = connect(&qemu, Options::default()).await;
    assert_eq!(
        c.human(r#"qemu-io n0 "read 0 512""#).await.expect("hmp"),
        ""
    );
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !qemu.stdout().contains("read 512/512 bytes at offset 0") {
        assert!(
            std::time::Instant::now() < until,
            "stdout: {:?}",
            qemu.stdout()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_jobs_and_their_events() {
    block_job_scenario(Which::Installed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_jobs_and_their_events_on_qemu_7_2() {
    block_job_scenario(Which::Qemu72).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_jobs_and_their_events_on_qemu_11_1() {
    block_job_scenario(Which::Qemu111).await;
}

async fn block_job_scenario(which: Which) {
    let qsd = storage_daemon_of(which).await;
    let dir = qsd.dir().to_path_buf();
    let (base, top) = (dir.join("base.qcow2"), dir.join("top.qcow2"));
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &base.to_string_lossy(),
        "16M",
    ]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        &base.to_string_lossy(),
        "-F",
        "qcow2",
        &top.to_string_lossy(),
    ]);
    let c = connect(&qsd, Options::default()).await;
    c.execute(qcow2_node("top", &top))
        .await
        .expect("blockdev-add top");
    let since = c.event_cursor();
    c.execute(BlockStream::new("top").with_job_id("stream0"))
        .await
        .expect("block-stream");
    let (_, e) = c
        .events_of::<JobStatusChange>(since)
        .matching(|e| e.id == "stream0" && e.status == JobStatus::Concluded)
        .wait(T)
        .await
        .expect("concluded");
    assert_eq!(e.id, "stream0");
    let (_, done) = c
        .events_of::<BlockJobCompleted>(since)
        .matching(|e| e.device == "stream0")
        .found()
        .pop()
        .expect("BLOCK_JOB_COMPLETED in history");
    assert_eq!(done.r#type, JobType::Stream);
    assert!(done.error.is_none());
    // An I/O error on the target: BLOCK_JOB_ERROR, then COMPLETED with error.
    let (src, tgt) = (dir.join("src.qcow2"), dir.join("tgt.qcow2"));
    qemu_img(&["create", "-q", "-f", "qcow2", &src.to_string_lossy(), "16M"]);
    qemu_img(&["create", "-q", "-f", "qcow2", &tgt.to_string_lossy(), "16M"]);
    write_data(&src);
    c.execute(qcow2_node("src", &src)).await.expect("add src");
    let etgt = serde_json::json!({"driver": "qcow2", "node-name": "etgt",
        "file": {"driver": "blkdebug", "node-name": "dbg",
                 "inject-error": [{"event": "write_aio", "errno": 5}],
                 "image": {"driver": "file", "filename": tgt.to_string_lossy()}}});
    c.execute(BlockdevAdd(serde_json::from_value(etgt).expect("options")))
        .await
        .expect("add etgt");
    let since = c.event_cursor();
    c.execute(BlockdevBackup::new("src", MirrorSyncMode::Full, "etgt").with_job_id("ebackup"))
        .await
        .expect("backup");
    let (_, done) = c
        .events_of::<BlockJobCompleted>(since)
        .matching(|e| e.device == "ebackup")
        .wait(T)
        .await
        .expect("completed");
    assert_eq!(done.error.as_deref(), Some("Input/output error"));
    let (_, err) = c
        .events_of::<BlockJobError>(since)
        .matching(|e| e.device == "ebackup")
        .found()
        .pop()
        .expect("BLOCK_JOB_ERROR in history");
    assert_eq!(err.action, BlockErrorAction::Report);
    assert_eq!(err.operation, IoOperationType::Write);
    // DeviceNotActive, from the job commands.
    let e = c
        .execute(BlockJobCancel::new("nojob"))
        .await
        .expect_err("no job");
    assert_eq!(e.class(), Some(&ErrorClass::DeviceNotActive));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_roll_back() {
    transaction_scenario(Which::Installed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_roll_back_on_qemu_7_2() {
    transaction_scenario(Which::Qemu72).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_roll_back_on_qemu_11_1() {
    transaction_scenario(Which::Qemu111).await;
}

async fn transaction_scenario(which: Which) {
    let dir = tests::TempDir::new("txn").expect("dir");
    let src = dir.path().join("t-src.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &src.to_string_lossy(), "16M"]);
    let node = format!(
        "driver=qcow2,node-name=src,file.driver=file,file.filename={}",
        src.display()
    );
    let qemu = system_of(
        which,
        &[
            "-blockdev",
            &node,
            "-device",
            "virtio-blk-pci,id=vd0,drive=src",
        ],
    )
    .await;
    let c = connect(&qemu, Options::default()).await;
    let ov1 = dir.path().join("t-ov1.qcow2");
    let t = TransactionBuilder::new()
        .action(BlockDirtyBitmapAdd::new("src", "bm0"))
        .action(
            BlockdevSnapshotSync::new(ov1.to_string_lossy())
                .with_node_name("src")
                .with_snapshot_node_name("ov1")
                .with_format("qcow2"),
        );
    c.transaction(t).await.expect("commit");
    let bitmaps = |nodes: &Vec<BlockDeviceInfo>, n: &str| -> Vec<String> {
        nodes
            .iter()
            .find(|x| x.node_name.as_deref() == Some(n))
            .and_then(|x| x.dirty_bitmaps.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|b| b.name)
            .collect()
    };
    let nodes = c
        .execute(QueryNamedBlockNodes::new().with_flat(true))
        .await
        .expect("nodes");
    assert_eq!(bitmaps(&nodes, "src"), ["bm0"]);
    assert!(nodes.iter().any(|n| n.node_name.as_deref() == Some("ov1")));
    // Rolled back by an abort action: nothing of it happened.
    let t = TransactionBuilder::new()
        .action(BlockDirtyBitmapAdd::new("ov1", "bm1"))
        .action(Abort::new());
    let e = c.transaction(t).await.expect_err("aborted");
    assert!(
        matches!(&e, Error::Qmp { desc, .. } if desc == "Transaction aborted using Abort action"),
        "{e}"
    );
    let nodes = c
        .execute(QueryNamedBlockNodes::new().with_flat(true))
        .await
        .expect("nodes");
    assert!(bitmaps(&nodes, "ov1").is_empty());
    // Grouped completion mode reaches QEMU (which refuses it for bitmaps).
    let t = TransactionBuilder::new()
        .action(BlockDirtyBitmapAdd::new("ov1", "bm2"))
        .grouped();
    let e = c.transaction(t).await.expect_err("grouped refused");
    assert!(e.to_string().contains("completion-mode = grouped"), "{e}");
}
