//! How real QEMU plays a job, a migration and a device removal, kept as
//! fixtures (`qmp-client/fixtures/<version>/<scenario>.txt`) that
//! [`qmp_client::testing`]'s scripts play back: the caller's commands
//! (`> name`) and the events QEMU sends between them, in order, without
//! timestamps. Where a reply falls among the events is a race, so replies
//! are left out; commands are sent only where the job waits for them, so
//! every other order is QEMU's own.
//!
//! Recorded on qemu-storage-daemon (block jobs) and guestless
//! qemu-system-x86_64 (snapshots, migrations, devices): 10.0.2, 7.2 and
//! 11.1.3.
//! A change in QEMU's behaviour shows up as a fixture diff;
//! `QMP_FIXTURES=overwrite` writes them again.

use super::*;
use qmp_client::EventRecord;
use serde_json::{Value, json};

/// One line for an event of job `id` (or the VM's run state and
/// migration, for `id` "vm"), `None` for another.
fn line(r: &EventRecord, id: &str) -> Option<String> {
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
        AnyEvent::Migration(e) if id == "vm" => format!("MIGRATION {}", e.status),
        AnyEvent::StopEvent(_) if id == "vm" => "STOP".into(),
        AnyEvent::Resume(_) if id == "vm" => "RESUME".into(),
        AnyEvent::DeviceDeleted(e) if e.device.as_deref() == Some(id) => {
            format!("DEVICE_DELETED path={}", e.path)
        }
        _ => return None,
    })
}

/// Writes one scenario down: the events of its subject between the
/// caller's commands.
struct Rec<'c> {
    c: &'c Client,
    id: &'static str,
    begin: Since,
    at: Since,
    text: String,
}

impl<'c> Rec<'c> {
    fn new(c: &'c Client, id: &'static str) -> Rec<'c> {
        let at = c.event_cursor();
        Rec {
            c,
            id,
            begin: at,
            at,
            text: String::new(),
        }
    }

    /// The subject's events since the last command.
    fn flush(&mut self) {
        let now = self.c.event_cursor();
        let Since::Cursor(end) = now else { return };
        for r in self.c.history(self.at) {
            if r.seq < end
                && let Some(l) = line(&r, self.id)
            {
                self.text.push_str(&l);
                self.text.push('\n');
            }
        }
        self.at = now;
    }

    /// Sends a command (its reply must be a success).
    async fn cmd(&mut self, name: &str, args: Value) {
        self.flush();
        self.text.push_str(&format!("> {name}\n"));
        self.c
            .execute_raw(name, args)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    /// Waits for the job's `n`th `status` since the scenario began.
    async fn reach_nth(&self, status: JobStatus, n: usize) {
        let id = self.id;
        loop {
            // The cursor first: an event after the count is waited for.
            let next = self.c.event_cursor();
            let seen = self
                .c
                .events_of::<JobStatusChange>(self.begin)
                .matching({
                    let status = status.clone();
                    move |e| e.id == id && e.status == status
                })
                .found()
                .len();
            if seen >= n {
                return;
            }
            self.c
                .events_of::<JobStatusChange>(next)
                .matching({
                    let status = status.clone();
                    move |e| e.id == id && e.status == status
                })
                .wait(T)
                .await
                .unwrap_or_else(|e| panic!("{id} never {status} ({n}): {e}"));
        }
    }

    /// Waits for the job's `BLOCK_JOB_READY`, which QEMU sends after its
    /// `ready` status.
    async fn ready(&self) {
        let id = self.id;
        self.c
            .events_of::<BlockJobReady>(self.begin)
            .matching(move |e| e.device == id)
            .wait(T)
            .await
            .unwrap_or_else(|e| panic!("{id} never ready: {e}"));
    }

    async fn reach(&self, status: JobStatus) {
        self.reach_nth(status, 1).await;
    }

    /// The job's end: concluded, dismissed by the caller when QEMU
    /// leaves that to it, gone.
    async fn end(mut self) -> String {
        self.reach(JobStatus::Concluded).await;
        // `concluded` and `null` come together when QEMU dismisses the
        // job itself, before this reply.
        let jobs = self.c.execute(QueryJobs::new()).await.expect("query-jobs");
        if jobs.iter().any(|j| j.id == self.id) {
            self.cmd("job-dismiss", json!({"id": self.id})).await;
        }
        self.reach(JobStatus::Null).await;
        self.done()
    }

    fn done(mut self) -> String {
        self.flush();
        self.text
    }

    /// Waits for a `MIGRATION` event with `status`.
    async fn migration(&self, status: MigrationStatus) {
        self.c
            .events_of::<qmp_types::events::Migration>(self.begin)
            .matching({
                let status = status.clone();
                move |e| e.status == status
            })
            .wait(T)
            .await
            .unwrap_or_else(|e| {
                let seen: Vec<String> = self
                    .c
                    .history(self.begin)
                    .iter()
                    .filter_map(|r| line(r, "vm"))
                    .collect();
                panic!("migration never {status}: {e}; seen {seen:?}")
            });
    }
}

/// A qcow2 image of 16 MiB in `dir` (over image `backing`, if given),
/// with 4 MiB of data written at `at` MiB (each layer of a chain its
/// own, so that a commit and a stream have data to copy).
fn make_image(dir: &std::path::Path, name: &str, backing: Option<&str>, at: u32) {
    let file = dir.join(format!("{name}.qcow2"));
    let path = file.to_string_lossy().into_owned();
    match backing {
        Some(b) => {
            let b = dir.join(format!("{b}.qcow2"));
            qemu_img(&[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "qcow2",
                "-b",
                &b.to_string_lossy(),
                &path,
            ]);
        }
        None => qemu_img(&["create", "-q", "-f", "qcow2", &path, "16M"]),
    }
    write_data_at(&file, at);
}

/// Image `name` (made by [`make_image`]) added as node `name`; its file
/// under blkdebug failing every data write with EIO when `failing`.
async fn add_image(
    c: &Client,
    dir: &std::path::Path,
    name: &str,
    backing: Option<&str>,
    failing: bool,
) {
    let path = dir
        .join(format!("{name}.qcow2"))
        .to_string_lossy()
        .into_owned();
    let proto = json!({"driver": "file", "filename": path});
    let file = if failing {
        json!({"driver": "blkdebug", "inject-error": [{"event": "write_aio", "errno": 5}],
               "image": proto})
    } else {
        proto
    };
    let mut opts = json!({"driver": "qcow2", "node-name": name, "file": file});
    if let Some(b) = backing {
        opts["backing"] = json!(b);
    }
    c.execute_raw("blockdev-add", opts)
        .await
        .unwrap_or_else(|e| panic!("blockdev-add {name}: {e}"));
}

async fn image(c: &Client, dir: &std::path::Path, name: &str, failing: bool) {
    make_image(dir, name, None, 0);
    add_image(c, dir, name, None, failing).await;
}

/// A chain `p-base` ← `p-mid` ← `p-top`; `failing` names the layer
/// whose writes fail.
async fn chain(c: &Client, dir: &std::path::Path, p: &str, failing: Option<&str>) {
    let (base, mid, top) = (format!("{p}-base"), format!("{p}-mid"), format!("{p}-top"));
    make_image(dir, &base, None, 0);
    make_image(dir, &mid, Some(&base), 4);
    make_image(dir, &top, Some(&mid), 8);
    let fails = |l: &str| failing == Some(l);
    add_image(c, dir, &base, None, fails("base")).await;
    add_image(c, dir, &mid, Some(&base), fails("mid")).await;
    add_image(c, dir, &top, Some(&mid), fails("top")).await;
}

/// The block-job scenarios, on qemu-storage-daemon.
async fn block_jobs(which: Which, out: &mut Vec<(&'static str, String)>) {
    let qsd = storage_daemon_of(which).await;
    let dir = qsd.dir().to_path_buf();
    let c = connect(&qsd, Options::default()).await;
    image(&c, &dir, "src", false).await;
    image(&c, &dir, "tgt", false).await;
    image(&c, &dir, "etgt", true).await;
    let backup = |id: &str, target: &str| json!({"job-id": id, "device": "src", "target": target, "sync": "full"});
    let mirror = |id: &str, target: &str| json!({"job-id": id, "device": "src", "target": target, "sync": "full"});

    // A backup with QEMU's defaults: it finalizes and dismisses itself.
    let mut r = Rec::new(&c, "backup");
    r.cmd("blockdev-backup", backup("backup", "tgt")).await;
    out.push(("backup", r.end().await));

    // The same, finalized and dismissed by the caller.
    let mut r = Rec::new(&c, "manual");
    let mut args = backup("manual", "tgt");
    args["auto-finalize"] = json!(false);
    args["auto-dismiss"] = json!(false);
    r.cmd("blockdev-backup", args).await;
    // `BLOCK_JOB_PENDING` comes after the `pending` status.
    c.events_of::<BlockJobPending>(r.begin)
        .matching(|e| e.id == "manual")
        .wait(T)
        .await
        .expect("BLOCK_JOB_PENDING");
    r.cmd("job-finalize", json!({"id": "manual"})).await;
    out.push(("backup-manual", r.end().await));

    // A target whose writes fail (EIO): reported, the job fails.
    let mut r = Rec::new(&c, "berror");
    r.cmd("blockdev-backup", backup("berror", "etgt")).await;
    out.push(("backup-error", r.end().await));

    // The same error with `on-target-error: stop`: paused, then
    // cancelled by the caller.
    let mut r = Rec::new(&c, "bstop");
    let mut args = backup("bstop", "etgt");
    args["on-target-error"] = json!("stop");
    r.cmd("blockdev-backup", args).await;
    // Paused by the error, not by the pause every backup makes as it
    // starts: the second `paused`.
    r.reach_nth(JobStatus::Paused, 2).await;
    r.cmd(
        "block-job-cancel",
        json!({"device": "bstop", "force": true}),
    )
    .await;
    out.push(("backup-stop-cancel", r.end().await));

    // A backup slowed to a crawl, cancelled while it runs.
    let mut r = Rec::new(&c, "bcancel");
    let mut args = backup("bcancel", "tgt");
    args["speed"] = json!(4096);
    r.cmd("blockdev-backup", args).await;
    // After the pause every backup makes as it starts.
    r.reach_nth(JobStatus::Running, 2).await;
    r.cmd("block-job-cancel", json!({"device": "bcancel"}))
        .await;
    out.push(("backup-cancel", r.end().await));

    // A mirror: ready, then completed by the caller.
    let mut r = Rec::new(&c, "mirror");
    r.cmd("blockdev-mirror", mirror("mirror", "tgt")).await;
    r.ready().await;
    r.cmd("block-job-complete", json!({"device": "mirror"}))
        .await;
    out.push(("mirror-complete", r.end().await));

    // A ready mirror cancelled: it ends without switching over.
    let mut r = Rec::new(&c, "mcancel");
    r.cmd("blockdev-mirror", mirror("mcancel", "tgt")).await;
    r.ready().await;
    r.cmd("block-job-cancel", json!({"device": "mcancel"}))
        .await;
    out.push(("mirror-cancel", r.end().await));

    // A mirror to the failing target.
    let mut r = Rec::new(&c, "merror");
    r.cmd("blockdev-mirror", mirror("merror", "etgt")).await;
    out.push(("mirror-error", r.end().await));

    // block-commit of an intermediate layer, of the active one (ready,
    // then completed), and onto a base whose writes fail.
    chain(&c, &dir, "c1", None).await;
    let mut r = Rec::new(&c, "commit");
    r.cmd(
        "block-commit",
        json!({"job-id": "commit", "device": "c1-top", "top-node": "c1-mid",
               "base-node": "c1-base"}),
    )
    .await;
    out.push(("commit", r.end().await));
    chain(&c, &dir, "c2", None).await;
    let mut r = Rec::new(&c, "acommit");
    r.cmd(
        "block-commit",
        json!({"job-id": "acommit", "device": "c2-top"}),
    )
    .await;
    r.ready().await;
    r.cmd("block-job-complete", json!({"device": "acommit"}))
        .await;
    out.push(("commit-active", r.end().await));
    chain(&c, &dir, "c3", Some("base")).await;
    let mut r = Rec::new(&c, "cerror");
    r.cmd(
        "block-commit",
        json!({"job-id": "cerror", "device": "c3-top", "top-node": "c3-mid",
               "base-node": "c3-base"}),
    )
    .await;
    out.push(("commit-error", r.end().await));

    // block-stream into the top layer, and into one whose writes fail.
    chain(&c, &dir, "s1", None).await;
    let mut r = Rec::new(&c, "stream");
    r.cmd(
        "block-stream",
        json!({"job-id": "stream", "device": "s1-top"}),
    )
    .await;
    out.push(("stream", r.end().await));
    chain(&c, &dir, "s2", Some("top")).await;
    let mut r = Rec::new(&c, "serror");
    r.cmd(
        "block-stream",
        json!({"job-id": "serror", "device": "s2-top"}),
    )
    .await;
    out.push(("stream-error", r.end().await));

    // blockdev-create: concluded, and dismissed by the caller; and one
    // whose file can't be made.
    let mut r = Rec::new(&c, "create");
    let new = dir.join("new.img");
    r.cmd(
        "blockdev-create",
        json!({"job-id": "create", "options": {"driver": "file",
               "filename": new.to_string_lossy(), "size": 1048576}}),
    )
    .await;
    out.push(("create", r.end().await));
    let mut r = Rec::new(&c, "cfail");
    let bad = dir.join("no-such-dir/new.img");
    r.cmd(
        "blockdev-create",
        json!({"job-id": "cfail", "options": {"driver": "file",
               "filename": bad.to_string_lossy(), "size": 1048576}}),
    )
    .await;
    out.push(("create-error", r.end().await));

    // x-blockdev-amend of a qcow2 node.
    let mut r = Rec::new(&c, "amend");
    r.cmd(
        "x-blockdev-amend",
        json!({"job-id": "amend", "node-name": "src", "options": {"driver": "qcow2"}}),
    )
    .await;
    out.push(("amend", r.end().await));
}

/// The snapshot, migration and device scenarios, on guestless
/// qemu-system-x86_64.
async fn system_scenarios(which: Which, out: &mut Vec<(&'static str, String)>) {
    let q = system_of(
        which,
        &[
            "-device",
            "qemu-xhci,id=xhci",
            "-device",
            "usb-tablet,id=tab0,bus=xhci.0",
            "-device",
            "virtio-rng-pci,id=rng0,romfile=",
        ],
    )
    .await;
    let dir = q.dir().to_path_buf();
    let c = connect(&q, Options::default()).await;
    image(&c, &dir, "disk", false).await;
    let snap =
        |id: &str| json!({"job-id": id, "tag": "snap0", "vmstate": "disk", "devices": ["disk"]});

    let mut r = Rec::new(&c, "save");
    r.cmd("snapshot-save", snap("save")).await;
    out.push(("snapshot-save", r.end().await));
    // The tag exists already: the job fails.
    let mut r = Rec::new(&c, "esave");
    r.cmd("snapshot-save", snap("esave")).await;
    out.push(("snapshot-save-error", r.end().await));
    let mut r = Rec::new(&c, "load");
    r.cmd("snapshot-load", snap("load")).await;
    out.push(("snapshot-load", r.end().await));
    let mut r = Rec::new(&c, "delete");
    r.cmd(
        "snapshot-delete",
        json!({"job-id": "delete", "tag": "snap0", "devices": ["disk"]}),
    )
    .await;
    out.push(("snapshot-delete", r.end().await));

    // A USB device goes at once; a PCI one waits for a guest that
    // never answers.
    let mut r = Rec::new(&c, "tab0");
    r.cmd("device_del", json!({"id": "tab0"})).await;
    c.events_of::<DeviceDeleted>(r.begin)
        .matching(|e| e.device.as_deref() == Some("tab0"))
        .wait(T)
        .await
        .expect("DEVICE_DELETED");
    out.push(("device-deleted", r.done()));
    let mut r = Rec::new(&c, "rng0");
    r.cmd("device_del", json!({"id": "rng0"})).await;
    // A round trip: what QEMU sent by now is in the history.
    c.execute(QueryStatus::new()).await.expect("query-status");
    out.push(("device-never", r.done()));

    // Migrations to a command: completed, and failed. QEMU sends
    // `MIGRATION` events only with the `events` capability.
    events_on(&c).await;
    let mut r = Rec::new(&c, "vm");
    r.cmd("migrate", json!({"uri": "exec:cat > /dev/null"}))
        .await;
    r.migration(MigrationStatus::Completed).await;
    out.push(("migration", r.done()));
    drop(c);
    drop(q);

    let q = system_of(which, &[]).await;
    let c = connect(&q, Options::default()).await;
    events_on(&c).await;
    let mut r = Rec::new(&c, "vm");
    r.cmd("migrate", json!({"uri": "exec:exit 1"})).await;
    r.migration(MigrationStatus::Failed).await;
    out.push(("migration-error", r.done()));
    drop(c);
    drop(q);

    // Slowed, then cancelled while active.
    let q = system_of(which, &[]).await;
    let c = connect(&q, Options::default()).await;
    events_on(&c).await;
    c.execute(MigrateSetParameters::new().with_max_bandwidth(1 << 20))
        .await
        .expect("max-bandwidth");
    let mut r = Rec::new(&c, "vm");
    r.cmd("migrate", json!({"uri": "exec:cat > /dev/null"}))
        .await;
    r.migration(MigrationStatus::Active).await;
    r.cmd("migrate_cancel", json!({})).await;
    r.migration(MigrationStatus::Cancelled).await;
    out.push(("migration-cancel", r.done()));
    drop(c);
    drop(q);

    // Slowed, then switched to postcopy (a destination with
    // `postcopy-ram` too).
    let (_s, sc, d, dc) = super::migration::pair(which, which, None).await;
    for c in [&sc, &dc] {
        events_on(c).await;
        c.execute(MigrateSetCapabilities::new(vec![
            MigrationCapabilityStatus::new(MigrationCapability::PostcopyRam, true),
        ]))
        .await
        .expect("postcopy-ram");
    }
    sc.execute(MigrateSetParameters::new().with_max_bandwidth(1 << 20))
        .await
        .expect("max-bandwidth");
    let uri = super::migration::uri(&d);
    dc.execute_raw("migrate-incoming", json!({"uri": uri}))
        .await
        .expect("migrate-incoming");
    let mut r = Rec::new(&sc, "vm");
    r.cmd("migrate", json!({"uri": uri})).await;
    r.migration(MigrationStatus::Active).await;
    r.cmd("migrate-start-postcopy", json!({})).await;
    r.migration(MigrationStatus::Completed).await;
    out.push(("migration-postcopy", r.done()));
}

/// The `events` migration capability, without which QEMU sends no
/// `MIGRATION` event.
async fn events_on(c: &Client) {
    c.execute(MigrateSetCapabilities::new(vec![
        MigrationCapabilityStatus::new(MigrationCapability::Events, true),
    ]))
    .await
    .expect("events capability");
}

/// Every scenario on `which` QEMU: (name, its text).
async fn scenarios(which: Which) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    block_jobs(which, &mut out).await;
    system_scenarios(which, &mut out).await;
    out
}

/// Compares each scenario with its fixture (or writes them, with
/// `QMP_FIXTURES=overwrite`).
async fn matches_fixtures(which: Which, version: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
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
        "QEMU {version} plays a scenario differently from its fixture \
         (QMP_FIXTURES=overwrite writes them again):\n{}",
        differ.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_10_0_2_plays_its_scenarios_as_the_fixtures_say() {
    matches_fixtures(Which::Installed, "10.0.2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_7_2_plays_its_scenarios_as_the_fixtures_say() {
    matches_fixtures(Which::Qemu72, "7.2.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_11_1_3_plays_its_scenarios_as_the_fixtures_say() {
    matches_fixtures(Which::Qemu111, "11.1.3").await;
}
