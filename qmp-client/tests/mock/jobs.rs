//! Jobs against the double: a watch that finds the job gone from
//! `query-jobs` after QEMU already sent its end (the events come before
//! that reply) reports the outcome the events say.

use super::*;
use qmp_types::*;

fn status(id: &str, s: JobStatus) -> JobStatusChange {
    JobStatusChange::new(id, s)
}

#[tokio::test]
async fn a_watch_that_finds_the_job_gone_reads_the_end_qemu_sent_first() {
    let mock = MockQemu::new();
    mock.expect::<BlockdevBackup>()
        .then_emit(status("j", JobStatus::Created))
        .then_emit(status("j", JobStatus::Running));
    // The watch's first looks (whether QEMU knows the job; its progress
    // at `created`, at `running`): still running.
    let running = vec![JobInfo::new(
        "j",
        JobType::Backup,
        JobStatus::Running,
        1,
        16,
    )];
    mock.expect::<QueryJobs>().times(3).reply(running);
    // Its next look, after a quiet period: the job is gone, and QEMU sent
    // its end ahead of the reply.
    let done = BlockJobCompleted::new(JobType::Backup, "j", 16, 16, 0);
    mock.expect::<QueryJobs>()
        .emit_before(status("j", JobStatus::Waiting))
        .emit_before(status("j", JobStatus::Pending))
        .emit_before(done)
        .emit_before(status("j", JobStatus::Concluded))
        .emit_before(status("j", JobStatus::Null))
        .reply(vec![]);
    mock.allow::<QueryJobs>().reply(vec![]);
    let c = client(&mock).await;
    let job = c
        .start_job(BlockdevBackup::new("src", MirrorSyncMode::Full, "tgt").with_job_id("j"))
        .await
        .expect("started");
    let mut watch = job.watch(std::time::Duration::from_millis(20));
    let mut ended = None;
    while let Some(u) = bounded(watch.next()).await {
        if let qmp_client::JobUpdate::Ended(o) = u.expect("update") {
            ended = Some(o);
        }
    }
    assert!(matches!(ended, Some(Ok(()))), "{ended:?}");
}
