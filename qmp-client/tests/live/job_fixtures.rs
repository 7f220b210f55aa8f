//! The order in which real QEMU sends a job's events, kept as fixtures
//! (`tests/fixtures/jobs/<version>/<scenario>.txt`): backup (automatic,
//! manual finalize and dismiss, failing, stopped by an error then
//! cancelled), mirror (ready, then completed) and blockdev-create, on
//! qemu-storage-daemon 10.0.2 and 7.2. A change in QEMU's behaviour shows
//! up as a fixture diff; `QMP_FIXTURES=overwrite` writes them again.
//!
//! Only the job's own events are kept, in order, without timestamps:
//! where a reply falls among them is a race, so replies are left out.

use super::*;
use serde_json::json;

/// One line per event of job `id`, or `None` for another job's or
/// another kind.
fn line(r: &qmp_client::EventRecord, id: &str) -> Option<String> {
    Some(match &r.event {
        AnyEvent::JobStatusChange(e) if e.id == id => format!("JOB_STATUS_CHANGE {}", e.status),
        AnyEvent::BlockJobCompleted(e) if e.device == id => format!(
            "BLOCK_JOB_COMPLETED type={} len={} offset={} error={}",
            e.r#type,
            e.len,
            e.offset,
            e.error.as_deref().unwrap_or("-")
        ),
        AnyEvent::BlockJobCancelled(e) if e.device == id => format!(
            "BLOCK_JOB_CANCELLED type={} len={} offset={}",
            e.r#type, e.len, e.offset
        ),
        AnyEvent::BlockJobReady(e) if e.device == id => format!(
            "BLOCK_JOB_READY type={} len={} offset={}",
            e.r#type, e.len, e.offset
        ),
        AnyEvent::BlockJobError(e) if e.device == id => {
            format!(
                "BLOCK_JOB_ERROR operation={} action={}",
                e.operation, e.action
            )
        }
        AnyEvent::BlockJobPending(e) if e.id == id => {
            format!("BLOCK_JOB_PENDING type={}", e.r#type)
        }
        _ => return None,
    })
}

/// Waits for job `id` to reach `status`, from `since`.
async fn reach(c: &Client, since: Since, id: &str, status: JobStatus) {
    c.events_of::<JobStatusChange>(since)
        .matching(|e| e.id == id && e.status == status)
        .wait(T)
        .await
        .unwrap_or_else(|e| panic!("{id} never {status}: {e}"));
}

async fn raw(c: &Client, name: &str, args: serde_json::Value) {
    c.execute_raw(name, args)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// Every scenario on `which` QEMU: (name, its job's events).
async fn scenarios(which: Which) -> Vec<(&'static str, String)> {
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
    let mut out = Vec::new();
    let events = |since: Since, id: &str| -> String {
        c.history(since)
            .iter()
            .filter_map(|r| line(r, id))
            .map(|l| l + "\n")
            .collect()
    };
    let backup = |id: &str| json!({"job-id": id, "device": "src", "target": "tgt", "sync": "full"});

    // A backup with QEMU's defaults: it finalizes and dismisses itself.
    let since = c.event_cursor();
    raw(&c, "blockdev-backup", backup("b-auto")).await;
    reach(&c, since, "b-auto", JobStatus::Null).await;
    out.push(("backup", events(since, "b-auto")));

    // The same, finalized and dismissed by the caller.
    let since = c.event_cursor();
    let mut args = backup("b-manual");
    args["auto-finalize"] = json!(false);
    args["auto-dismiss"] = json!(false);
    raw(&c, "blockdev-backup", args).await;
    reach(&c, since, "b-manual", JobStatus::Pending).await;
    raw(&c, "job-finalize", json!({"id": "b-manual"})).await;
    reach(&c, since, "b-manual", JobStatus::Concluded).await;
    raw(&c, "job-dismiss", json!({"id": "b-manual"})).await;
    reach(&c, since, "b-manual", JobStatus::Null).await;
    out.push(("backup-manual", events(since, "b-manual")));

    // A target whose writes fail (EIO): reported, the job fails.
    super::jobs::failing_target(&c, &qsd, "etgt", 5).await;
    let since = c.event_cursor();
    raw(
        &c,
        "blockdev-backup",
        json!({"job-id": "b-error", "device": "src", "target": "etgt", "sync": "full"}),
    )
    .await;
    reach(&c, since, "b-error", JobStatus::Null).await;
    out.push(("backup-error", events(since, "b-error")));

    // The same error with `on-target-error: stop`: paused, then
    // cancelled by the caller.
    let since = c.event_cursor();
    raw(
        &c,
        "blockdev-backup",
        json!({"job-id": "b-stop", "device": "src", "target": "etgt", "sync": "full",
               "on-target-error": "stop"}),
    )
    .await;
    // Paused by the error, not by the pause every backup makes as it
    // starts: the `paused` after the error.
    c.events_of::<BlockJobError>(since)
        .matching(|e| e.device == "b-stop")
        .wait(T)
        .await
        .expect("BLOCK_JOB_ERROR");
    let error_at = c
        .history(since)
        .iter()
        .find(|r| matches!(&r.event, AnyEvent::BlockJobError(e) if e.device == "b-stop"))
        .map_or(0, |r| r.seq);
    reach(&c, Since::Cursor(error_at + 1), "b-stop", JobStatus::Paused).await;
    raw(
        &c,
        "block-job-cancel",
        json!({"device": "b-stop", "force": true}),
    )
    .await;
    reach(&c, since, "b-stop", JobStatus::Null).await;
    out.push(("backup-stop-cancel", events(since, "b-stop")));

    // A mirror: ready, then completed by the caller.
    let since = c.event_cursor();
    raw(
        &c,
        "blockdev-mirror",
        json!({"job-id": "m", "device": "src", "target": "tgt", "sync": "full"}),
    )
    .await;
    reach(&c, since, "m", JobStatus::Ready).await;
    raw(&c, "block-job-complete", json!({"device": "m"})).await;
    reach(&c, since, "m", JobStatus::Null).await;
    out.push(("mirror-complete", events(since, "m")));

    // blockdev-create: concluded, and dismissed by the caller.
    let since = c.event_cursor();
    let new = dir.join("new.img");
    raw(
        &c,
        "blockdev-create",
        json!({"job-id": "create", "options": {"driver": "file",
               "filename": new.to_string_lossy(), "size": 1048576}}),
    )
    .await;
    reach(&c, since, "create", JobStatus::Concluded).await;
    raw(&c, "job-dismiss", json!({"id": "create"})).await;
    reach(&c, since, "create", JobStatus::Null).await;
    out.push(("create", events(since, "create")));
    out
}

/// Compares each scenario's events with its fixture (or writes them,
/// with `QMP_FIXTURES=overwrite`).
async fn matches_fixtures(which: Which, version: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jobs")
        .join(version);
    let overwrite = std::env::var("QMP_FIXTURES").is_ok_and(|v| v == "overwrite");
    let mut differ = Vec::new();
    for (name, got) in scenarios(which).await {
        let path = dir.join(format!("{name}.txt"));
        if overwrite {
            std::fs::create_dir_all(&dir).expect("fixture dir");
            std::fs::write(&path, &got).expect("fixture written");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != got {
            differ.push(format!(
                "{}:\n--- fixture\n{want}--- QEMU {version} now\n{got}",
                path.display()
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "QEMU {version} sends a job's events differently from its fixtures \
         (QMP_FIXTURES=overwrite writes them again):\n{}",
        differ.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_come_as_the_fixtures_of_10_0_2_say() {
    matches_fixtures(Which::Installed, "10.0.2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_come_as_the_fixtures_of_7_2_say() {
    matches_fixtures(Which::Qemu72, "7.2.0").await;
}
