//! Scripted QEMU behaviour (`Mock::job`, `Mock::migration`,
//! `Mock::device`): one call each, played from the recordings of real
//! QEMU, through the client's own handles (`Job`, `Migration`,
//! `unplug`), on both recorded versions.

use super::*;
use qmp_client::testing::{ScriptedDevice, ScriptedJob, ScriptedMigration};
use qmp_client::{ErrorClass, Since};
use qmp_types::*;

const VERSIONS: [&str; 2] = ["10.0.2", "7.2"];

fn backup(id: &str) -> BlockdevBackup {
    BlockdevBackup::new("disk0", MirrorSyncMode::Full, "tgt").with_job_id(id)
}

fn mirror(id: &str) -> BlockdevMirror {
    BlockdevMirror::new("disk0", "tgt", MirrorSyncMode::Full).with_job_id(id)
}

/// The statuses job `id` went through, from the connection's history.
fn statuses(c: &Client, id: &str) -> Vec<JobStatus> {
    c.events_of::<JobStatusChange>(Since::Cursor(0))
        .matching({
            let id = id.to_string();
            move |e| e.id == id
        })
        .found()
        .into_iter()
        .map(|(_, e)| e.status)
        .collect()
}

/// `query-jobs` lists nothing: every job ended and was dismissed.
async fn no_jobs_left(c: &Client) {
    let jobs = c.execute(QueryJobs::new()).await.expect("query-jobs");
    assert!(jobs.is_empty(), "{jobs:?}");
}

#[tokio::test]
async fn a_scripted_backup_runs_as_qemu_runs_it() {
    for v in VERSIONS {
        let mock = MockQemu::with_version(v).expect("version");
        mock.job(ScriptedJob::backup("j"));
        let c = client(&mock).await;
        let job = bounded(c.start_job(backup("j"))).await.expect("started");
        bounded(job.wait(BOUND)).await.expect("succeeds");
        use JobStatus::*;
        assert_eq!(
            statuses(&c, "j"),
            [
                Created, Running, Paused, Running, Waiting, Pending, Concluded, Null
            ],
            "{v}"
        );
        // Gone afterwards, as in QEMU.
        assert!(
            c.execute(QueryJobs::new())
                .await
                .expect("query-jobs")
                .is_empty()
        );
        let e = c.execute(JobDismiss::new("j")).await.expect_err("refused");
        assert_eq!(e.class(), Some(&ErrorClass::GenericError), "{e}");
        mock.verify().expect("verified");
    }
}

#[tokio::test]
async fn a_failing_backup_says_why_and_query_jobs_keeps_the_error_until_dismissed() {
    let mock = MockQemu::with_version("10.0.2").expect("version");
    mock.job(ScriptedJob::backup("j").fails("No space left on device"));
    let c = client(&mock).await;
    let job = bounded(c.start_job(backup("j").with_auto_dismiss(false)))
        .await
        .expect("started");
    match bounded(job.wait(BOUND)).await {
        Err(Error::JobFailed { error, .. }) => assert_eq!(error, "No space left on device"),
        other => panic!("{other:?}"),
    }
    let jobs = c.execute(QueryJobs::new()).await.expect("query-jobs");
    assert_eq!(jobs[0].status, JobStatus::Concluded);
    assert_eq!(jobs[0].error.as_deref(), Some("No space left on device"));
    let err = c.events_of::<BlockJobError>(Since::Cursor(0)).found();
    assert_eq!(err.len(), 1);
    bounded(job.dismiss()).await.expect("dismissed");
    no_jobs_left(&c).await;
    mock.verify().expect("verified");
}

#[tokio::test]
async fn a_manual_backup_waits_for_finalize_and_dismiss_and_refuses_them_early() {
    let mock = MockQemu::with_version("7.2").expect("version");
    mock.job(ScriptedJob::backup("j"));
    let c = client(&mock).await;
    let job = bounded(
        c.start_job(
            backup("j")
                .with_auto_finalize(false)
                .with_auto_dismiss(false),
        ),
    )
    .await
    .expect("started");
    bounded(job.wait_status(JobStatus::Pending, BOUND))
        .await
        .expect("pending");
    let early = bounded(job.dismiss()).await.expect_err("refused");
    assert!(
        early
            .to_string()
            .contains("Job 'j' in state 'pending' cannot accept command verb 'dismiss'"),
        "{early}"
    );
    bounded(job.finalize()).await.expect("finalized");
    bounded(job.wait(BOUND)).await.expect("succeeded");
    bounded(job.dismiss()).await.expect("dismissed");
    use JobStatus::*;
    assert_eq!(
        statuses(&c, "j"),
        [
            Created, Running, Paused, Running, Waiting, Pending, Concluded, Null
        ]
    );
    assert_eq!(
        c.events_of::<BlockJobPending>(Since::Cursor(0))
            .found()
            .len(),
        1
    );
    mock.verify().expect("verified");
}

#[tokio::test]
async fn a_mirror_is_ready_then_completed_or_cancelled() {
    for cancel in [false, true] {
        let mock = MockQemu::with_version("10.0.2").expect("version");
        mock.job(ScriptedJob::mirror("m"));
        let c = client(&mock).await;
        let job = bounded(c.start_job(mirror("m"))).await.expect("started");
        bounded(job.wait_ready(BOUND)).await.expect("ready");
        if cancel {
            bounded(job.cancel()).await.expect("cancelled");
        } else {
            bounded(job.complete()).await.expect("completed");
        }
        // A ready mirror cancelled ends as QEMU reports it: completed.
        bounded(job.wait(BOUND)).await.expect("ended well");
        assert_eq!(statuses(&c, "m").last(), Some(&JobStatus::Null));
        mock.verify().expect("verified");
    }
}

#[tokio::test]
async fn a_job_until_cancelled_reports_progress_then_ends_cancelled() {
    let mock = MockQemu::with_version("10.0.2").expect("version");
    mock.job(
        ScriptedJob::stream("s")
            .until_cancelled()
            .progress(3)
            .len(1 << 20),
    );
    let c = client(&mock).await;
    let job = bounded(c.start_job(BlockStream::new("top").with_job_id("s")))
        .await
        .expect("started");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let p = bounded(job.progress())
            .await
            .expect("progress")
            .expect("known");
        seen.push(p.current);
    }
    assert_eq!(seen, [262_144, 524_288, 786_432]);
    bounded(job.cancel()).await.expect("cancel");
    assert!(matches!(
        bounded(job.wait(BOUND)).await,
        Err(Error::JobCancelled { .. })
    ));
    // A stream played from a backup's recording has no backup's pause.
    use JobStatus::*;
    assert_eq!(
        statuses(&c, "s"),
        [Created, Running, Aborting, Concluded, Null]
    );
    mock.verify().expect("verified");
}

#[tokio::test]
async fn a_job_stopped_by_an_error_is_paused_until_cancelled() {
    let mock = MockQemu::with_version("10.0.2").expect("version");
    mock.job(ScriptedJob::backup("j").stops_on_error());
    let c = client(&mock).await;
    let job = bounded(c.start_job(backup("j"))).await.expect("started");
    let stop = c
        .events_of::<BlockJobError>(Since::Cursor(0))
        .wait(BOUND)
        .await
        .expect("BLOCK_JOB_ERROR");
    assert_eq!(stop.1.action, BlockErrorAction::Stop);
    let jobs = c.execute(QueryJobs::new()).await.expect("query-jobs");
    assert_eq!(jobs[0].status, JobStatus::Paused);
    bounded(job.cancel()).await.expect("cancel");
    assert!(matches!(
        bounded(job.wait(BOUND)).await,
        Err(Error::JobCancelled { .. })
    ));
    mock.verify().expect("verified");
}

#[tokio::test]
async fn every_kind_of_job_starts_and_ends_through_the_job_handle() {
    let mock = MockQemu::with_version("10.0.2").expect("version");
    mock.job(ScriptedJob::commit("commit"))
        .job(ScriptedJob::active_commit("acommit"))
        .job(ScriptedJob::create("create"))
        .job(ScriptedJob::amend("amend").fails("Operation not supported"))
        .job(ScriptedJob::snapshot_save("save"))
        .job(ScriptedJob::snapshot_load("load"))
        .job(ScriptedJob::snapshot_delete("delete"));
    let c = client(&mock).await;
    let t = BOUND;
    let j = c
        .start_job(
            BlockCommit::new("top")
                .with_job_id("commit")
                .with_top_node("mid"),
        )
        .await
        .expect("commit");
    j.wait(t).await.expect("commit ends");
    let j = c
        .start_job(BlockCommit::new("top").with_job_id("acommit"))
        .await
        .expect("active commit");
    j.wait_ready(t).await.expect("ready");
    j.complete().await.expect("complete");
    j.wait(t).await.expect("active commit ends");
    let opts = BlockdevCreateOptions::file(BlockdevCreateOptionsFile::new("/new.img", 1 << 20));
    let j = c
        .start_job(BlockdevCreate::new("create", opts))
        .await
        .expect("create");
    j.wait(t).await.expect("create ends");
    j.dismiss().await.expect("create dismissed");
    let amend = BlockdevAmendOptions::qcow2(BlockdevAmendOptionsQcow2::new());
    let j = c
        .start_job(XBlockdevAmend::new("amend", "disk0", amend))
        .await
        .expect("amend");
    assert!(matches!(j.wait(t).await, Err(Error::JobFailed { .. })));
    j.dismiss().await.expect("amend dismissed");
    for (id, cmd) in [
        ("save", "snapshot-save"),
        ("load", "snapshot-load"),
        ("delete", "snapshot-delete"),
    ] {
        let mut args = serde_json::json!({"job-id": id, "tag": "snap0", "devices": ["disk0"]});
        if cmd != "snapshot-delete" {
            args["vmstate"] = "disk0".into();
        }
        let j = c
            .start_job_with(id, async { c.execute_raw(cmd, args).await.map(drop) })
            .await
            .expect(cmd);
        j.wait(t).await.expect(cmd);
        j.dismiss().await.expect(cmd);
    }
    no_jobs_left(&c).await;
    mock.verify().expect("verified");
}

#[tokio::test]
async fn a_job_scripted_but_never_started_is_reported_with_its_line() {
    let mock = MockQemu::new();
    mock.job(ScriptedJob::backup("never"));
    mock.device(ScriptedDevice::deleted("disk9"));
    let text = problems(&mock);
    assert!(text.contains("the scripted backup job 'never'"), "{text}");
    assert!(text.contains("scripted.rs:"), "{text}");
    assert!(text.contains("the scripted device 'disk9'"), "{text}");
}

#[tokio::test]
async fn query_block_jobs_answers_with_a_complete_block_job_info() {
    let mock = MockQemu::with_version("10.0.2").expect("version");
    mock.job(ScriptedJob::mirror("m").len(4096));
    let c = client(&mock).await;
    let job = bounded(c.start_job(mirror("m"))).await.expect("started");
    job.wait_ready(BOUND).await.expect("ready");
    let jobs = c.execute(QueryBlockJobs::new()).await.expect("decodes");
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].ready);
    assert_eq!((jobs[0].len, jobs[0].offset), (4096, 4096));
    assert_eq!(jobs[0].status, JobStatus::Ready);
    // Unknown ids, as QEMU answers them.
    let e = c
        .execute(BlockJobCancel::new("nope"))
        .await
        .expect_err("refused");
    assert_eq!(e.class(), Some(&ErrorClass::DeviceNotActive), "{e}");
    mock.verify().expect("verified");
}

#[tokio::test]
async fn scripted_migrations_complete_fail_cancel_and_go_postcopy() {
    for v in VERSIONS {
        let run = |s: ScriptedMigration| async move {
            let mock = MockQemu::with_version(v).expect("version");
            mock.migration(s);
            let c = client(&mock).await;
            let m = bounded(c.start_migration(Migrate::new().with_uri("unix:/x")))
                .await
                .expect("started");
            (mock, c, m)
        };
        let (mock, c, m) = run(ScriptedMigration::completes()).await;
        bounded(m.wait(BOUND)).await.expect("completes");
        let p = m.progress().await.expect("query-migrate");
        assert_eq!(
            (p.status, p.remaining),
            (Some(MigrationStatus::Completed), 0)
        );
        assert_eq!(c.events_of::<StopEvent>(Since::Cursor(0)).found().len(), 1);
        mock.verify().expect("verified");

        let (mock, _c, m) = run(ScriptedMigration::fails("Unable to write to socket")).await;
        match bounded(m.wait(BOUND)).await {
            Err(Error::MigrationFailed { error }) => assert_eq!(error, "Unable to write to socket"),
            other => panic!("{other:?}"),
        }
        mock.verify().expect("verified");

        let (mock, _c, m) = run(ScriptedMigration::until_cancelled().progress(1)).await;
        let p = m.progress().await.expect("query-migrate");
        assert_eq!(p.status, Some(MigrationStatus::Active));
        assert!(p.remaining > 0 && p.remaining < p.total, "{p:?}");
        bounded(m.cancel()).await.expect("cancel");
        assert!(matches!(
            bounded(m.wait(BOUND)).await,
            Err(Error::MigrationCancelled)
        ));
        mock.verify().expect("verified");

        let (mock, c, m) = run(ScriptedMigration::postcopy()).await;
        bounded(m.wait_status(MigrationStatus::Active, BOUND))
            .await
            .expect("active");
        bounded(m.start_postcopy()).await.expect("postcopy");
        bounded(m.wait(BOUND)).await.expect("completes");
        let seen: Vec<MigrationStatus> = c
            .events_of::<qmp_types::events::Migration>(Since::Cursor(0))
            .found()
            .into_iter()
            .map(|(_, e)| e.status)
            .collect();
        assert!(
            seen.contains(&MigrationStatus::PostcopyActive),
            "{v}: {seen:?}"
        );
        mock.verify().expect("verified");
    }
}

#[tokio::test]
async fn without_the_events_capability_a_migration_sends_no_migration_event() {
    let mock = MockQemu::with_version("10.0.2").expect("version");
    mock.migration(ScriptedMigration::completes());
    let c = client(&mock).await;
    c.execute(Migrate::new().with_uri("unix:/x"))
        .await
        .expect("migrate");
    // The STOP at switch-over comes; MIGRATION does not.
    c.events_of::<StopEvent>(Since::Cursor(0))
        .wait(BOUND)
        .await
        .expect("STOP");
    assert!(
        c.events_of::<qmp_types::events::Migration>(Since::Cursor(0))
            .found()
            .is_empty()
    );
    let p = c.execute(QueryMigrate::new()).await.expect("query-migrate");
    assert_eq!(p.status, Some(MigrationStatus::Completed));
    mock.verify().expect("verified");
}

#[tokio::test]
async fn a_scripted_device_is_deleted_once_or_never() {
    let mock = MockQemu::with_version("7.2").expect("version");
    mock.device(ScriptedDevice::deleted("tab0"))
        .device(ScriptedDevice::never_deleted("rng0"));
    let c = client(&mock).await;
    let gone = bounded(c.unplug("tab0", BOUND)).await.expect("deleted");
    assert_eq!(gone.path, "/machine/peripheral/tab0");
    let again = c
        .execute(DeviceDel::new("tab0"))
        .await
        .expect_err("refused");
    assert_eq!(again.class(), Some(&ErrorClass::DeviceNotFound), "{again}");
    let never = c.unplug("rng0", Duration::from_millis(50)).await;
    assert!(never.is_err(), "{never:?}");
    mock.verify().expect("verified");
}

/// A double of QEMU 11.1.3 (its own schema) plays 11.1's recordings: a
/// failing migration goes through `failing`, which 10.0 did not have.
#[tokio::test]
async fn a_double_of_qemu_11_1_plays_its_recordings() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/introspection/system-11.1.3.json"
    );
    let mock = MockQemu::with_introspection("11.1.3", path).expect("11.1.3");
    mock.migration(ScriptedMigration::fails("Unable to write to socket"));
    let c = client(&mock).await;
    let m = bounded(c.start_migration(Migrate::new().with_uri("unix:/x")))
        .await
        .expect("started");
    assert!(matches!(
        bounded(m.wait(BOUND)).await,
        Err(Error::MigrationFailed { .. })
    ));
    let seen: Vec<String> = c
        .history(Since::Cursor(0))
        .iter()
        .filter(|r| r.event.name() == "MIGRATION")
        .map(|r| format!("{:?}", r.event))
        .collect();
    assert!(seen.iter().any(|e| e.contains("failing")), "{seen:?}");
    mock.verify().expect("verified");
}

/// Backups started together by one `transaction` play as scripted, each
/// with its own end.
#[tokio::test]
async fn scripted_jobs_start_from_a_transaction() {
    let mock = MockQemu::with_version("10.0.2").expect("version");
    mock.job(ScriptedJob::backup("b0"))
        .job(ScriptedJob::backup("b1").fails("Input/output error"));
    let c = client(&mock).await;
    let t = qmp_client::TransactionBuilder::new()
        .action(backup("b0"))
        .action(BlockdevBackup::new("disk1", MirrorSyncMode::Full, "tgt1").with_job_id("b1"));
    let since = c.event_cursor();
    bounded(c.transaction(t)).await.expect("transaction");
    let (b0, b1) = (c.attach_job("b0"), c.attach_job("b1"));
    bounded(b0.wait(BOUND)).await.expect("b0 succeeds");
    match bounded(b1.wait(BOUND)).await {
        Err(Error::JobFailed { error, .. }) => assert_eq!(error, "Input/output error"),
        other => panic!("{other:?}"),
    }
    let created = c
        .events_of::<JobStatusChange>(since)
        .matching(|e| e.status == JobStatus::Created)
        .found();
    assert_eq!(created.len(), 2);
    mock.verify().expect("verified");
}
