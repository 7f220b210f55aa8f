//! `Job` handles on a real qemu-storage-daemon (10.0.2; 11.1.3 for the
//! first two scenarios): a backup that succeeds
//! (ending before its command's reply), one that fails on an I/O error
//! (QEMU's text), a mirror waited to `ready` then completed, a cancel, a
//! job with `auto-finalize`/`auto-dismiss` off, `blockdev-create` (a job
//! that waits for `job-dismiss`, its failure read from `query-jobs`),
//! QEMU dying under a running job, and the `job-*` jobs of qemu-system:
//! snapshot save, load and delete, and amend; a job gone without its
//! outcome seen (never `Ok`), and a wait on a job paused by ENOSPC.

use super::*;
use qmp_client::JobUpdate;
use serde_json::json;

/// A daemon with a 16 MiB qcow2 source `src` (4 MiB written) and an
/// empty qcow2 target `tgt`.
async fn daemon_with_images() -> (Qemu, Client) {
    daemon_with_images_of(Which::Installed).await
}

/// [`daemon_with_images`] of QEMU `which`.
async fn daemon_with_images_of(which: Which) -> (Qemu, Client) {
    let qsd = storage_daemon_of(which).await;
    let dir = qsd.dir().to_path_buf();
    let (src, tgt) = (dir.join("src.qcow2"), dir.join("tgt.qcow2"));
    for f in [&src, &tgt] {
        qemu_img(&["create", "-q", "-f", "qcow2", &f.to_string_lossy(), "16M"]);
    }
    write_data(&src);
    let c = connect(&qsd, Options::default()).await;
    c.execute(qcow2_node("src", &src)).await.expect("add src");
    c.execute(qcow2_node("tgt", &tgt)).await.expect("add tgt");
    (qsd, c)
}

/// A full backup of `src` to `tgt` as job `id`, at `speed` bytes/s.
async fn backup(c: &Client, id: &str, speed: i64) -> qmp_client::Job {
    c.start_job(
        BlockdevBackup::new("src", MirrorSyncMode::Full, "tgt")
            .with_job_id(id)
            .with_speed(speed),
    )
    .await
    .expect("backup starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_succeed_fail_and_are_cancelled() {
    jobs_scenario(Which::Installed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_succeed_fail_and_are_cancelled_on_qemu_11_1() {
    jobs_scenario(Which::Qemu111).await;
}

async fn jobs_scenario(which: Which) {
    let (qsd, c) = daemon_with_images_of(which).await;
    // Success; the job ends before or around the reply.
    let job = c
        .start_job(BlockdevBackup::new("src", MirrorSyncMode::Full, "tgt").with_job_id("b0"))
        .await
        .expect("backup starts");
    assert_eq!(job.id(), "b0");
    job.wait(T).await.expect("backup succeeds");
    assert_eq!(
        job.progress().await.expect("query-jobs"),
        None,
        "auto-dismissed"
    );
    // A block job without a job-id is named by its device's block
    // backend, which a node added with blockdev-add lacks: QEMU says so.
    match c
        .start_job(BlockdevBackup::new("src", MirrorSyncMode::Full, "tgt"))
        .await
    {
        Err(Error::Qmp { desc, .. }) => assert!(desc.contains("Invalid job ID"), "{desc}"),
        other => panic!("{:?}", other.map(|j| j.id().to_string())),
    }

    // An I/O error on the target: the wait fails with QEMU's text.
    failing_target(&c, &qsd, "etgt", 5).await;
    let job = c
        .start_job(BlockdevBackup::new("src", MirrorSyncMode::Full, "etgt").with_job_id("bad"))
        .await
        .expect("backup starts");
    match job.wait(T).await {
        Err(Error::JobFailed { id, error }) => {
            assert_eq!(id, "bad");
            assert!(error.contains("Input/output error"), "{error}");
        }
        other => panic!("{other:?}"),
    }

    // Cancelled while running (slowed to 64 KiB/s).
    let job = backup(&c, "slow", 64 << 10).await;
    let p = job.progress().await.expect("query-jobs").expect("running");
    assert_eq!(p.total, 16 << 20, "{p:?}");
    job.cancel().await.expect("cancel");
    assert!(
        matches!(job.wait(T).await, Err(Error::JobCancelled { ref id }) if id == "slow"),
        "cancelled"
    );

    // Mirror: ready, then complete.
    let job = c
        .start_job(BlockdevMirror::new("src", "tgt", MirrorSyncMode::Full).with_job_id("m0"))
        .await
        .expect("mirror starts");
    job.wait_ready(T).await.expect("ready");
    job.complete().await.expect("complete");
    job.wait(T).await.expect("mirror ends well");

    // auto-finalize and auto-dismiss off: pending, finalize, concluded
    // (still listed), dismiss.
    let job = c
        .start_job(
            BlockdevBackup::new("src", MirrorSyncMode::Full, "tgt")
                .with_job_id("manual")
                .with_auto_finalize(false)
                .with_auto_dismiss(false),
        )
        .await
        .expect("backup starts");
    job.wait_status(JobStatus::Pending, T)
        .await
        .expect("pending");
    job.finalize().await.expect("finalize");
    job.wait(T).await.expect("concluded well");
    let p = job.progress().await.expect("query-jobs").expect("kept");
    assert_eq!(p.status, JobStatus::Concluded);
    job.dismiss().await.expect("dismiss");
    assert_eq!(job.progress().await.expect("query-jobs"), None);

    // A job attached by id sees what the history holds.
    c.attach_job("b0").wait(T).await.expect("b0 ended well");
    assert!(matches!(
        c.attach_job("bad").wait(T).await,
        Err(Error::JobFailed { .. })
    ));

    // A command that names no job is refused before sending.
    assert!(matches!(
        c.start_job(QueryStatus::new()).await,
        Err(Error::Encode { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blockdev_create_jobs_report_through_query_jobs() {
    blockdev_create_scenario(Which::Installed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blockdev_create_jobs_report_through_query_jobs_on_qemu_11_1() {
    blockdev_create_scenario(Which::Qemu111).await;
}

async fn blockdev_create_scenario(which: Which) {
    let qsd = storage_daemon_of(which).await;
    let c = connect(&qsd, Options::default()).await;
    let create = |id: &str, path: String| {
        let opts = json!({"driver": "file", "filename": path, "size": 0});
        BlockdevCreate::new(
            id,
            serde_json::from_value::<BlockdevCreateOptions>(opts).expect("options"),
        )
    };
    let ok = qsd.dir().join("new.img").to_string_lossy().into_owned();
    let job = c
        .start_job(create("c0", ok.clone()))
        .await
        .expect("create starts");
    job.wait(T).await.expect("created");
    job.dismiss().await.expect("dismiss");
    assert!(std::path::Path::new(&ok).exists());
    let bad = qsd
        .dir()
        .join("no/such/dir/x.img")
        .to_string_lossy()
        .into_owned();
    let job = c.start_job(create("c1", bad)).await.expect("create starts");
    match job.wait(T).await {
        Err(Error::JobFailed { id, error }) => {
            assert_eq!(id, "c1");
            assert!(error.contains("No such file or directory"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    job.dismiss().await.expect("dismiss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_job_reports_progress_then_its_end() {
    let (_qsd, c) = daemon_with_images().await;
    let job = backup(&c, "w", 16 << 20).await;
    let mut watch = job.watch(Duration::from_millis(20));
    let (mut last, mut updates, mut ended) = (0, 0, None);
    while let Some(u) = tokio::time::timeout(T, watch.next())
        .await
        .expect("an update")
    {
        match u.expect("update") {
            JobUpdate::Progress(p) => {
                assert!(p.current >= last && p.current <= p.total, "{p:?}");
                last = p.current;
                updates += 1;
            }
            JobUpdate::Ended(o) => ended = Some(o),
            other => panic!("{other:?}"),
        }
    }
    assert!(updates >= 1, "no progress seen");
    assert!(matches!(ended, Some(Ok(()))), "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_wait_ends_when_qemu_dies() {
    let (qsd, c) = daemon_with_images().await;
    let job = backup(&c, "slow", 64 << 10).await;
    let wait = tokio::spawn({
        let job = job.clone();
        async move { job.wait(Duration::from_secs(60)).await }
    });
    // Running (and slow: 64 KiB/s) when QEMU dies; the wait, pending or
    // not yet started, ends with the connection.
    job.wait_status(JobStatus::Running, T)
        .await
        .expect("running");
    qsd.shutdown().expect("kill");
    let r = tokio::time::timeout(T, wait)
        .await
        .expect("wait ends")
        .expect("task");
    assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
}

/// The `job-*` jobs of qemu-system: `snapshot-save`, `-load` and
/// `-delete` through `start_job`, each waited to its end, the snapshot
/// seen in the image between; and one that fails (an unknown tag), with
/// QEMU's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_jobs_save_load_and_delete() {
    let dir = tests::TempDir::new("snapjobs").expect("dir");
    let img = dir.path().join("disk.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &img.to_string_lossy(), "16M"]);
    let qemu = system(&[]).await;
    let c = connect(&qemu, Options::default()).await;
    c.execute(qcow2_node("disk0", &img))
        .await
        .expect("blockdev-add");
    let disks = || vec!["disk0".to_string()];
    let snapshots = || async {
        let nodes = c.execute(QueryNamedBlockNodes::new()).await.expect("nodes");
        let disk = nodes
            .into_iter()
            .find(|n| n.node_name.as_deref() == Some("disk0"))
            .expect("disk0");
        disk.image
            .snapshots
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
    };
    c.start_job(SnapshotSave::new("save0", "t1", "disk0", disks()))
        .await
        .expect("snapshot-save")
        .wait(T)
        .await
        .expect("saved");
    assert_eq!(snapshots().await, ["t1"]);
    c.start_job(SnapshotLoad::new("load0", "t1", "disk0", disks()))
        .await
        .expect("snapshot-load")
        .wait(T)
        .await
        .expect("loaded");
    let err = c
        .start_job(SnapshotLoad::new("load1", "nope", "disk0", disks()))
        .await
        .expect("snapshot-load started")
        .wait(T)
        .await
        .expect_err("no such snapshot");
    match &err {
        qmp_client::Error::JobFailed { error, .. } => {
            assert!(error.contains("nope"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    c.start_job(SnapshotDelete::new("del0", "t1", disks()))
        .await
        .expect("snapshot-delete")
        .wait(T)
        .await
        .expect("deleted");
    assert!(snapshots().await.is_empty());
}

/// `x-blockdev-amend` is a job too: a qcow2 amend that changes nothing
/// succeeds; one that asks an unencrypted image for new keys fails in
/// the job, with QEMU's text. QEMU leaves both `concluded` (amend jobs
/// are not auto-dismissed) until `dismiss`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amend_jobs_succeed_and_fail() {
    let (_qsd, c) = daemon_with_images().await;
    let ok = c
        .start_job(XBlockdevAmend::new(
            "amend0",
            "src",
            BlockdevAmendOptions::qcow2(BlockdevAmendOptionsQcow2::new()),
        ))
        .await
        .expect("x-blockdev-amend");
    ok.wait(T).await.expect("amended");
    let keys = QCryptoBlockAmendOptions::luks(QCryptoBlockAmendOptionsLUKS::new(
        QCryptoBlockLUKSKeyslotState::Inactive,
    ));
    let bad = c
        .start_job(XBlockdevAmend::new(
            "amend1",
            "src",
            BlockdevAmendOptions::qcow2(BlockdevAmendOptionsQcow2::new().with_encrypt(keys)),
        ))
        .await
        .expect("x-blockdev-amend started");
    match bad.wait(T).await.expect_err("not encrypted") {
        qmp_client::Error::JobFailed { id, error } => {
            assert_eq!(id, "amend1");
            assert_eq!(error, "image is not encrypted, can't amend");
        }
        other => panic!("{other:?}"),
    }
    let jobs = c.execute(QueryJobs::new()).await.expect("jobs");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    ok.dismiss().await.expect("dismissed");
    bad.dismiss().await.expect("dismissed");
    let jobs = c.execute(QueryJobs::new()).await.expect("jobs");
    assert!(jobs.is_empty(), "{jobs:?}");
}

/// A blkdebug target under qcow2 whose writes fail with `errno`.
pub(super) async fn failing_target(c: &Client, qsd: &Qemu, name: &str, errno: i32) {
    let file = qsd.dir().join(format!("{name}.qcow2"));
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &file.to_string_lossy(),
        "16M",
    ]);
    let opts = json!({"driver": "qcow2", "node-name": name,
        "file": {"driver": "blkdebug", "inject-error": [{"event": "write_aio", "errno": errno}],
                 "image": {"driver": "file", "filename": file.to_string_lossy()}}});
    c.execute(BlockdevAdd(serde_json::from_value(opts).expect("options")))
        .await
        .expect("add the failing target");
}

/// Issue 36, case 11: a job gone without its outcome seen is never
/// `Ok`: an id QEMU never had, a job that failed and was dismissed before
/// this connection, and one whose `query-jobs` error was seen before it
/// was dismissed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_gone_without_its_outcome_is_never_ok() {
    let qsd = storage_daemon().await;
    let unknown = |r: &qmp_client::Result<()>| matches!(r, Err(Error::JobOutcomeUnknown { .. }));
    let ended_unknown = |u: Option<qmp_client::Result<JobUpdate>>| {
        matches!(
            u,
            Some(Ok(JobUpdate::Ended(Err(Error::JobOutcomeUnknown { .. }))))
        )
    };
    // A job that fails (a path that can't be created) and is dismissed,
    // all on a first connection.
    let bad = qsd
        .dir()
        .join("no/such/dir/x.img")
        .to_string_lossy()
        .into_owned();
    let create = |id: &str| {
        let opts = json!({"driver": "file", "filename": bad, "size": 0});
        BlockdevCreate::new(
            id,
            serde_json::from_value::<BlockdevCreateOptions>(opts).expect("options"),
        )
    };
    {
        let first = connect(&qsd, Options::default()).await;
        let job = first
            .start_job(create("gone"))
            .await
            .expect("create starts");
        assert!(matches!(job.wait(T).await, Err(Error::JobFailed { .. })));
        job.dismiss().await.expect("dismiss");
        first.close();
        let _ = first.closed().await;
    }
    let c = connect(&qsd, Options::default()).await;
    let r = c.attach_job("never-was").wait(T).await;
    assert!(unknown(&r), "{r:?}");
    assert!(ended_unknown(
        c.attach_job("never-was").watch(T).next().await
    ));
    let r = c.attach_job("gone").wait(T).await;
    assert!(unknown(&r), "{r:?}");
    assert!(ended_unknown(c.attach_job("gone").watch(T).next().await));
    // Failed and concluded before this connection: a watch ends at once
    // with its error; a wait that read the error from `query-jobs`
    // keeps it when the job is dismissed meanwhile.
    drop(c);
    {
        let first = connect(&qsd, Options::default()).await;
        let job = first
            .start_job(create("kept"))
            .await
            .expect("create starts");
        assert!(matches!(job.wait(T).await, Err(Error::JobFailed { .. })));
        first.close();
        let _ = first.closed().await;
    }
    let c = connect(&qsd, Options::default()).await;
    match c.attach_job("kept").watch(T).next().await {
        Some(Ok(JobUpdate::Ended(Err(Error::JobFailed { error, .. })))) => {
            assert!(error.contains("No such file or directory"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    let before = c.stats().sent;
    let wait = tokio::spawn({
        let job = c.attach_job("kept");
        async move { job.wait(T).await }
    });
    // Its look (`query-jobs`) is sent, so QEMU answers it before the
    // dismiss.
    while c.stats().sent == before {
        tokio::task::yield_now().await;
    }
    c.execute(JobDismiss::new("kept")).await.expect("dismiss");
    match wait.await.expect("task") {
        Err(Error::JobFailed { error, .. }) => {
            assert!(error.contains("No such file or directory"), "{error}")
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 36, case 11: a backup paused by `on-target-error: enospc` on a
/// full target: the wait's timeout says it is paused by a write error,
/// with the I/O status `nospace`; cancelled, it ends cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_on_a_job_paused_by_enospc_says_why() {
    let (qsd, c) = daemon_with_images().await;
    failing_target(&c, &qsd, "full", 28).await;
    let job = c
        .start_job(
            BlockdevBackup::new("src", MirrorSyncMode::Full, "full")
                .with_job_id("nospc")
                .with_on_target_error(BlockdevOnError::Enospc),
        )
        .await
        .expect("backup starts");
    let e = job
        .wait(Duration::from_secs(2))
        .await
        .expect_err("it pauses");
    let text = e.to_string();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(text.contains("paused by a write error"), "{text}");
    assert!(text.contains("nospace"), "{text}");
    c.execute(BlockJobCancel::new("nospc").with_force(true))
        .await
        .expect("cancel");
    let r = job.wait(T).await;
    assert!(matches!(r, Err(Error::JobCancelled { .. })), "{r:?}");
}
