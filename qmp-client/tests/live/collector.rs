//! The collector against real QEMU 10.0.2: a directory of sockets (links
//! to a guestless qemu-system's monitor and a qemu-storage-daemon's) in
//! which a VM appears, does disk I/O (its boot sector's loop,
//! `tests::busy_disk`), a daemon runs a job, and the VM dies; every
//! change seen through `Collector::snapshot`.

use super::*;
use qmp_client::collector::{Collector, CollectorOptions, Health, MonitorView, Source};

/// Waits (on the collector's news) until `ok` holds for the snapshot.
async fn until(c: &Collector, what: &str, ok: impl Fn(&[MonitorView]) -> bool) -> Vec<MonitorView> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        // Listen first: news between the look and the wait is not lost.
        let news = c.changed();
        let views = c.snapshot();
        if ok(&views) {
            return views;
        }
        if tokio::time::timeout_at(deadline, news).await.is_err() {
            panic!("{what}: not seen in {T:?}; last snapshot: {views:#?}");
        }
    }
}

fn named<'a>(views: &'a [MonitorView], name: &str) -> Option<&'a MonitorView> {
    views.iter().find(|v| v.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_follows_vms_that_come_run_and_go() {
    let watch = tempfile::tempdir().expect("dir");
    let c = Collector::start(
        vec![Source::Directory(watch.path().to_path_buf())],
        CollectorOptions::default().with_interval(Duration::from_millis(100)),
    );
    // A VM appears: named, running, its disk listed.
    // Its disk is kept busy by its boot sector (no guest OS).
    let own = tempfile::tempdir().expect("dir");
    let img = own.path().join("disk.img");
    tests::busy_disk(&img).expect("disk");
    let drive = format!("if=none,id=drive0,format=raw,file={}", img.display());
    let vm = system(&[
        "-name",
        "vm-a",
        "-drive",
        &drive,
        "-device",
        "virtio-blk-pci,drive=drive0,id=disk0",
    ])
    .await;
    std::os::unix::fs::symlink(vm.socket(), watch.path().join("a.sock")).expect("link");
    let views = until(&c, "vm-a running", |v| {
        named(v, "vm-a").is_some_and(|m| {
            m.health == Health::Up
                && m.last()
                    .is_some_and(|s| s.status == Some(RunState::Running) && !s.block.is_empty())
        })
    })
    .await;
    let a = named(&views, "vm-a").expect("vm-a");
    assert_eq!(a.version.as_deref(), Some("10.0.2"));
    assert!(a.last().is_some_and(|s| !s.vcpus.is_empty()), "{a:?}");

    // Its I/O shows as rates.
    until(&c, "vm-a's reads and writes", |v| {
        named(v, "vm-a").is_some_and(|m| {
            m.rates()
                .iter()
                .any(|r| r.write_iops > 0.0 && r.read_iops > 0.0)
        })
    })
    .await;

    // A storage daemon appears, with a job that runs (throttled).
    let qsd = storage_daemon().await;
    // The job is started first: the daemon, too, serves one client per
    // monitor, and the collector will hold it.
    let qc = connect(&qsd, Options::default()).await;
    // Data (not zeroes, which a backup skips) that takes minutes at 4 KiB/s.
    for n in ["src", "tgt"] {
        let node = serde_json::json!({"driver": "null-co", "node-name": n,
            "size": 1 << 30, "read-zeroes": false});
        qc.execute_raw("blockdev-add", node).await.expect(n);
    }
    qc.execute(
        BlockdevBackup::new("src", MirrorSyncMode::Full, "tgt")
            .with_job_id("slow")
            .with_speed(4096),
    )
    .await
    .expect("backup");
    qc.close();
    qc.closed().await;
    std::os::unix::fs::symlink(qsd.socket(), watch.path().join("b.sock")).expect("link");
    let views = until(&c, "the daemon's job", |v| {
        named(v, "b").is_some_and(|m| {
            m.last().is_some_and(|s| {
                s.jobs
                    .iter()
                    .any(|j| j.id == "slow" && j.status == JobStatus::Running)
            })
        })
    })
    .await;
    // The daemon has no run state: query-status was not asked.
    assert_eq!(
        named(&views, "b")
            .and_then(|m| m.last())
            .and_then(|s| s.status.clone()),
        None
    );

    // The VM dies: gone, the others go on.
    // Killed, its socket file left behind (as a crash leaves it).
    let st = std::process::Command::new("kill")
        .args(["-KILL", &vm.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(st.success());
    until(&c, "vm-a gone", |v| {
        named(v, "vm-a").is_some_and(|m| matches!(m.health, Health::Gone(_)))
            && named(v, "b").is_some_and(|m| m.health == Health::Up)
    })
    .await;
    // Its link removed: dropped.
    std::fs::remove_file(watch.path().join("a.sock")).expect("unlink");
    until(&c, "vm-a dropped", |v| {
        named(v, "vm-a").is_none() && v.len() == 1
    })
    .await;
}
