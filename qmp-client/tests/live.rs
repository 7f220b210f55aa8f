//! The client against real QEMU 10.0.2 (`qemu-storage-daemon` and
//! `qemu-system-x86_64`, each started on a private socket and killed at
//! the end): the seed's scenarios and event helpers, transactions, error
//! classes, OOB, fd passing and many tasks on one connection. The
//! scenarios follow ../shared/cookbook/COOKBOOK.md.

use std::process::Command as Process;
use std::time::Duration;

use qmp_client::{Client, Error, ErrorClass, Options, Since, TransactionBuilder};
use qmp_types::*;
use tests::Qemu;

const T: Duration = Duration::from_secs(10);

async fn connect(q: &Qemu, opts: Options) -> Client {
    Client::connect_unix(&q.socket, opts)
        .await
        .expect("connect")
}

fn qemu_img(args: &[&str]) {
    let st = Process::new("qemu-img")
        .args(args)
        .status()
        .expect("qemu-img runs");
    assert!(st.success(), "qemu-img {args:?}");
}

fn null_node(name: &str) -> BlockdevAdd {
    BlockdevAdd(
        BlockdevOptions::new(BlockdevOptionsBranch::NullCo(
            BlockdevOptionsNull::new().with_size(1i64 << 20),
        ))
        .with_node_name(name),
    )
}

fn qcow2_node(name: &str, file: &std::path::Path) -> BlockdevAdd {
    let v = serde_json::json!({
        "driver": "qcow2", "node-name": name,
        "file": {"driver": "file", "filename": file.to_string_lossy()}
    });
    BlockdevAdd(serde_json::from_value(v).expect("valid options"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_and_typed_commands() {
    let qsd = Qemu::storage_daemon().expect("qsd");
    let c = connect(&qsd, Options::default()).await;
    let g = c.greeting();
    assert_eq!(
        (
            g.version.qemu.major,
            g.version.qemu.minor,
            g.version.qemu.micro
        ),
        (10, 0, 2)
    );
    assert!(g.capabilities.iter().any(|c| c == "oob"));
    assert!(!g.oob, "not asked for");
    let v = c.execute(QueryVersion::new()).await.expect("query-version");
    assert_eq!(v.qemu.major, 10);
    c.execute(null_node("n0")).await.expect("blockdev-add");
    let nodes = c
        .execute(QueryNamedBlockNodes::new().with_flat(true))
        .await
        .expect("query");
    assert!(nodes.iter().any(|n| n.node_name.as_deref() == Some("n0")));
    // execute_raw for anything.
    let raw = c
        .execute_raw("query-block-exports", serde_json::json!({}))
        .await
        .expect("raw");
    assert_eq!(raw, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_share_one_connection() {
    let qsd = Qemu::storage_daemon().expect("qsd");
    let c = connect(&qsd, Options::default()).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..20 {
                // An error whose text names this task's node: it must come
                // back to this task and no other.
                let node = format!("node-{i}-{round}");
                match c.execute(BlockDirtyBitmapAdd::new(node.clone(), "b")).await {
                    Err(Error::Qmp {
                        class,
                        desc,
                        command,
                    }) => {
                        assert_eq!(class, ErrorClass::GenericError);
                        assert_eq!(command, "block-dirty-bitmap-add");
                        assert!(desc.contains(&node), "{desc} is not about {node}");
                    }
                    other => panic!("unexpected {other:?}"),
                }
                let v = c.execute(QueryVersion::new()).await.expect("query-version");
                assert_eq!(v.qemu.micro, 2);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(c.stray_replies(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_calls_do_not_desynchronize() {
    let qsd = Qemu::storage_daemon().expect("qsd");
    let c = connect(&qsd, Options::default()).await;
    c.execute(null_node("n0")).await.expect("blockdev-add");
    let mut timed_out = 0;
    for _ in 0..50 {
        // Gives up at once (unless the reply beats the timer); a late
        // reply is discarded.
        match c
            .execute_timeout(QueryNamedBlockNodes::new(), Duration::ZERO)
            .await
        {
            Err(Error::Timeout { .. }) => timed_out += 1,
            Ok(nodes) => assert_eq!(nodes.len(), 1),
            Err(e) => panic!("{e}"),
        }
        // A dropped future, mid-flight.
        let fut = c.execute(QueryBlockJobs::new());
        drop(fut);
        let v = c.execute(QueryVersion::new()).await.expect("own reply");
        assert_eq!(v.qemu.major, 10);
    }
    eprintln!(
        "{timed_out} of 50 calls timed out; {} stray replies",
        c.stray_replies()
    );
    // Each late reply was recognised as such (and the dropped futures'
    // replies too), none was given to a later caller.
    assert!(c.stray_replies() >= timed_out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_del_then_device_deleted() {
    let qemu = Qemu::system(&[
        "-device",
        "qemu-xhci,id=xhci",
        "-device",
        "usb-tablet,id=tab0,bus=xhci.0",
    ])
    .expect("qemu");
    let c = connect(&qemu, Options::default()).await;
    let since = c.event_cursor();
    c.execute(DeviceDel::new("tab0")).await.expect("device_del");
    let e = c
        .wait_device_deleted("tab0", since, T)
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
    c.wait_device_deleted("tab1", since, T)
        .await
        .expect("DEVICE_DELETED tab1");
    // The history answers later questions too.
    assert_eq!(c.find_events::<DeviceDeleted>(Since::Cursor(0)).len(), 2);
    let err = c
        .execute(DeviceDel::new("nope"))
        .await
        .expect_err("unknown device");
    assert_eq!(err.class(), Some(&ErrorClass::DeviceNotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_events_arrive_before_the_reply_and_are_not_missed() {
    let dir = tests::TempDir::new("tray").expect("dir");
    let cd = dir.path().join("cd.raw");
    qemu_img(&["create", "-q", "-f", "raw", &cd.to_string_lossy(), "1M"]);
    let file = format!(
        "driver=file,filename={},node-name=cdfile,read-only=on",
        cd.display()
    );
    let qemu = Qemu::system(&[
        "-blockdev",
        &file,
        "-blockdev",
        "driver=raw,file=cdfile,node-name=cdraw,read-only=on",
        "-device",
        "ide-cd,id=cd0,drive=cdraw,bus=ide.1",
    ])
    .expect("qemu");
    let c = connect(&qemu, Options::default()).await;
    let since = c.event_cursor();
    c.execute(BlockdevOpenTray::new().with_id("cd0"))
        .await
        .expect("open");
    // The event came before the reply; it is still found.
    let e = c
        .wait_device_tray_opened("cd0", since, T)
        .await
        .expect("opened");
    assert!(e.tray_open);
    assert_eq!(e.device, "");
    let since = c.event_cursor();
    c.execute(BlockdevCloseTray::new().with_id("cd0"))
        .await
        .expect("close");
    c.wait_device_tray_closed("cd0", since, T)
        .await
        .expect("closed");
    let since = c.event_cursor();
    c.execute(Eject::new().with_id("cd0")).await.expect("eject");
    c.wait_device_tray_moved("cd0", None, since, T)
        .await
        .expect("moved");
    // Nothing more happens: waiting for another close times out.
    let since = c.event_cursor();
    let r = c
        .wait_device_tray_closed("cd0", since, Duration::from_millis(300))
        .await;
    assert!(r.expect_err("no event").is_timeout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runstate_resume_stop_and_shutdown_on_quit() {
    let qemu = Qemu::system(&["-S"]).expect("qemu");
    let c = connect(&qemu, Options::default()).await;
    assert_eq!(
        c.execute(QueryStatus::new()).await.expect("status").status,
        RunState::Prelaunch
    );
    let since = c.event_cursor();
    c.execute(Cont::new()).await.expect("cont");
    c.wait_machine_resume(since, T).await.expect("RESUME");
    let since = c.event_cursor();
    c.execute(Stop::new()).await.expect("stop");
    c.wait_for::<StopEvent, _>(since, T, |_| true)
        .await
        .expect("STOP");
    // The seed's first example, with `quit` (a guestless QEMU ignores
    // system_powerdown): wait for SHUTDOWN.
    let waiter = {
        let c = c.clone();
        let since = c.event_cursor();
        tokio::spawn(async move { c.wait_for::<Shutdown, _>(since, T, |_| true).await })
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
    let qemu = Qemu::system(&[]).expect("qemu");
    let c = connect(&qemu, Options::default()).await;
    assert_eq!(c.human("info vnc").await.expect("hmp"), "None\r\n");
    assert_eq!(
        c.human("info status").await.expect("hmp"),
        "VM status: running\r\n"
    );
    // HMP errors are text.
    assert!(
        c.human("no-such-hmp-cmd")
            .await
            .expect("hmp")
            .contains("unknown command")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_jobs_and_their_events() {
    let qsd = Qemu::storage_daemon().expect("qsd");
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
    let e = c
        .wait_job_status_change("stream0", JobStatus::Concluded, since, T)
        .await
        .expect("concluded");
    assert_eq!(e.id, "stream0");
    let (_, done) = c
        .find_block_job_completed("stream0", since)
        .expect("BLOCK_JOB_COMPLETED in history");
    assert_eq!(done.r#type, JobType::Stream);
    assert!(done.error.is_none());
    // An I/O error on the target: BLOCK_JOB_ERROR, then COMPLETED with error.
    let (src, tgt) = (dir.join("src.qcow2"), dir.join("tgt.qcow2"));
    qemu_img(&["create", "-q", "-f", "qcow2", &src.to_string_lossy(), "16M"]);
    qemu_img(&["create", "-q", "-f", "qcow2", &tgt.to_string_lossy(), "16M"]);
    Process::new("qemu-io")
        .args([
            "-f",
            "qcow2",
            "-c",
            "write -P 0xaa 0 4M",
            &src.to_string_lossy(),
        ])
        .output()
        .expect("qemu-io");
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
    let done = c
        .wait_block_job_completed("ebackup", since, T)
        .await
        .expect("completed");
    assert_eq!(done.error.as_deref(), Some("Input/output error"));
    let (_, err) = c
        .find_block_job_error("ebackup", since)
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
    let dir = tests::TempDir::new("txn").expect("dir");
    let src = dir.path().join("t-src.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &src.to_string_lossy(), "16M"]);
    let node = format!(
        "driver=qcow2,node-name=src,file.driver=file,file.filename={}",
        src.display()
    );
    let qemu = Qemu::system(&[
        "-blockdev",
        &node,
        "-device",
        "virtio-blk-pci,id=vd0,drive=src",
    ])
    .expect("qemu");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_classes() {
    let qemu = Qemu::system(&[]).expect("qemu");
    let c = connect(&qemu, Options::default()).await;
    let e = c
        .execute_raw("no-such-command", serde_json::json!({}))
        .await
        .expect_err("unknown");
    assert_eq!(e.class(), Some(&ErrorClass::CommandNotFound));
    let e = c
        .execute(DeviceDel::new("nope"))
        .await
        .expect_err("no device");
    assert_eq!(e.class(), Some(&ErrorClass::DeviceNotFound));
    let e = c
        .execute(BlockJobCancel::new("nojob"))
        .await
        .expect_err("no job");
    assert_eq!(e.class(), Some(&ErrorClass::DeviceNotActive));
    let e = c
        .execute(QomGet::new("/machine", "nope"))
        .await
        .expect_err("no property");
    assert_eq!(e.class(), Some(&ErrorClass::GenericError));
    assert!(
        e.to_string().starts_with("qom-get: GenericError: Property"),
        "{e}"
    );
    // A reply that doesn't fit the type names the bad member.
    let e = c
        .execute_raw("query-status", serde_json::json!({"foo": 1}))
        .await
        .expect_err("bad args");
    assert_eq!(e.class(), Some(&ErrorClass::GenericError));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_execution() {
    let qemu = Qemu::system(&[]).expect("qemu");
    let plain = connect(&qemu, Options::default()).await;
    let e = plain
        .execute_oob(QueryYank::new())
        .await
        .expect_err("not negotiated");
    assert!(matches!(e, Error::OobNotAvailable(..)));
    drop(plain);
    let qemu2 = Qemu::system(&[]).expect("qemu");
    let c = connect(
        &qemu2,
        Options {
            oob: true,
            ..Options::default()
        },
    )
    .await;
    assert!(c.greeting().oob);
    let yank = c
        .execute_oob(QueryYank::new())
        .await
        .expect("query-yank oob");
    assert!(!yank.is_empty());
    let e = c
        .execute_oob(QueryStatus::new())
        .await
        .expect_err("not allow-oob");
    assert!(matches!(
        e,
        Error::OobNotAvailable(_, "the command doesn't allow it")
    ));
    // In-band still works alongside.
    c.execute(QueryStatus::new()).await.expect("in-band");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_descriptors_ride_with_commands() {
    let qemu = Qemu::system(&[]).expect("qemu");
    let c = connect(&qemu, Options::default()).await;
    let e = c
        .execute(Getfd::new("myfd"))
        .await
        .expect_err("no fd attached");
    assert!(
        e.to_string()
            .contains("No file descriptor supplied via SCM_RIGHTS"),
        "{e}"
    );
    let (r, _w) = nix::unistd::pipe().expect("pipe");
    c.execute_with_fds(Getfd::new("myfd"), vec![r])
        .await
        .expect("getfd");
    c.execute(Closefd::new("myfd")).await.expect("closefd");
    let f = std::fs::File::open("/dev/null").expect("open");
    let info = c
        .execute_with_fds(AddFd::new().with_opaque("ro copy"), vec![f.into()])
        .await
        .expect("add-fd");
    let sets = c.execute(QueryFdsets::new()).await.expect("query-fdsets");
    let set = sets
        .iter()
        .find(|s| s.fdset_id == info.fdset_id)
        .expect("listed");
    assert_eq!(set.fds[0].opaque.as_deref(), Some("ro copy"));
}
