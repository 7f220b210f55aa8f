//! `qmp events` and `qmp job watch`: JSON lines, how a follow ends, and
//! a job followed to its end.

use super::*;

/// `events --follow` ends with exit 0 when QEMU closes the connection
/// after its SHUTDOWN event (`quit`), and with exit 3 when QEMU goes away
/// without one (SIGKILL), as README's exit codes say.
#[test]
fn events_follow_tells_a_quit_from_a_kill() {
    for kill in [false, true] {
        let two = start_two(Which::Installed, Flavor::System);
        let q = &two.qemu;
        let mut follow = qmp()
            .arg("--socket")
            .arg(&two.second)
            .args(["events", "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qmp events runs");
        let rx = line_channel(follow.stdout.take().expect("stdout"));
        // Attached once it prints what a `stop` and `cont` make (a second
        // `stop` of a stopped guest would make no event).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "the follower never printed");
            assert_eq!(run(q.socket(), &["exec", "stop"]).0, 0);
            assert_eq!(run(q.socket(), &["exec", "cont"]).0, 0);
            if rx.recv_timeout(Duration::from_millis(300)).is_ok() {
                break;
            }
        }
        if kill {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(q.pid()).expect("pid")),
                nix::sys::signal::Signal::SIGKILL,
            )
            .expect("kill QEMU");
        } else {
            run(q.socket(), &["exec", "quit"]);
        }
        let status = wait_bounded(&mut follow, Duration::from_secs(20), "the follower");
        let mut err = String::new();
        if let Some(mut e) = follow.stderr.take() {
            use std::io::Read;
            e.read_to_string(&mut err).ok();
        }
        let want = if kill { 3 } else { 0 };
        assert_eq!(status.code(), Some(want), "kill={kill}: {err}");
        // The normal end says nothing more.
        if !kill {
            assert!(err.trim().is_empty(), "{err}");
        }
    }
}

#[test]
fn events_are_json_lines_with_timestamps() {
    let two = start_two(Which::Installed, Flavor::System);
    let q = &two.qemu;
    let mut follow = qmp()
        .arg("--socket")
        .arg(&two.second)
        .args(["events", "--follow", "--filter", "STOP,RESUME"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp events runs");
    // The follower may not be connected yet: stop and resume until it has
    // printed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let rx = line_channel(follow.stdout.take().expect("stdout"));
    let mut got: Vec<String> = Vec::new();
    // Until a STOP and the line after it are in.
    let stop_then_more = |got: &[String]| {
        got.iter()
            .position(|l| l.contains("\"STOP\""))
            .is_some_and(|at| at + 1 < got.len())
    };
    while !stop_then_more(&got) && Instant::now() < deadline {
        assert_eq!(run(q.socket(), &["exec", "stop"]).0, 0);
        assert_eq!(run(q.socket(), &["exec", "cont"]).0, 0);
        while let Ok(Ok(l)) = rx.recv_timeout(Duration::from_millis(300)) {
            got.push(l);
        }
    }
    follow.kill().ok();
    follow.wait().ok();
    assert!(stop_then_more(&got), "{got:?}");
    let events: Vec<Value> = got
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    // The follower may attach between a `stop` and its `cont`, so its
    // first line can be a RESUME; after the first STOP, a RESUME follows.
    let at = events
        .iter()
        .position(|e| e["event"] == json!("STOP"))
        .unwrap_or_else(|| panic!("no STOP in {got:?}"));
    assert!(
        events
            .iter()
            .all(|e| e["event"] == json!("STOP") || e["event"] == json!("RESUME")),
        "the filter lets only STOP and RESUME through: {got:?}"
    );
    let first = &events[at];
    assert!(
        first["timestamp"]["seconds"]
            .as_i64()
            .is_some_and(|s| s > 1_600_000_000)
    );
    assert!(
        first["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );
    assert_eq!(first["data"], json!({}));
    assert_eq!(events[at + 1]["event"], json!("RESUME"), "{got:?}");

    // Without --follow: the next matching event, then exit 0. Attached
    // once negotiated (it subscribes before reading anything more).
    let dir = TempDir::new("qmp-events-one").expect("temp dir");
    let record = dir.path().join("one.jsonl");
    let one = qmp()
        .arg("--socket")
        .arg(&two.second)
        .arg("--record")
        .arg(&record)
        .args(["events", "--filter", "STOP", "--timeout", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut out = String::new();
    wait_recorded(&record, "negotiated", negotiated);
    run(q.socket(), &["exec", "stop"]);
    run(q.socket(), &["exec", "cont"]);
    let o = one.wait_with_output().expect("ends");
    out.push_str(&text(&o.stdout));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(out.lines().count(), 1, "{out}");
    // An unknown event name is refused, with its close name.
    let (code, _, err) = run(q.socket(), &["events", "--filter", "JOB_STATUS_CHANG"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean JOB_STATUS_CHANGE"), "{err}");
    // A timeout without events: exit 4.
    let (code, _, err) = run(
        q.socket(),
        &["events", "--filter", "DEVICE_DELETED", "--timeout", "0.3"],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no matching event within"), "{err}");
}

/// 64 MiB `null-co` nodes with these names.
fn null_nodes(s: &Path, names: &[&str]) {
    for n in names {
        let (code, _, err) = run(
            s,
            &[
                "exec",
                "blockdev-add",
                "driver=null-co",
                &format!("node-name={n}"),
                "size=67108864",
            ],
        );
        assert_eq!(code, 0, "{err}");
    }
}

/// `qmp job watch ARGS` on `socket`, once it has the jobs in view (its
/// first `query-jobs` sent; its session recorded in `watch.jsonl` of the
/// directory returned).
fn watching(socket: &Path, args: &[&str]) -> (std::process::Child, TempDir) {
    let dir = TempDir::new("qmp-job-watch").expect("temp dir");
    let record = dir.path().join("watch.jsonl");
    let watch = qmp()
        .arg("--socket")
        .arg(socket)
        .arg("--record")
        .arg(&record)
        .args(["job", "watch"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp job watch runs");
    wait_recorded(&record, "query-jobs sent", sent("query-jobs"));
    (watch, dir)
}

/// Two throttled null nodes and a backup between them: a job that runs a
/// few seconds.
fn slow_backup(s: &Path, id: &str, speed: &str) {
    null_nodes(s, &[&format!("{id}-src"), &format!("{id}-dst")]);
    let (code, _, err) = run(
        s,
        &[
            "exec",
            "blockdev-backup",
            &format!("job-id={id}"),
            &format!("device={id}-src"),
            &format!("target={id}-dst"),
            "sync=full",
            &format!("speed={speed}"),
        ],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn job_watch_follows_a_backup_to_its_end() {
    for which in Which::ALL {
        let two = start_two(which, Flavor::StorageDaemon);
        let s = two.qemu.socket();
        // 64 MiB at 32 MiB/s: about two seconds.
        slow_backup(s, "bk", "33554432");
        let started = Instant::now();
        let (code, out, err) = run(s, &["job", "watch", "bk", "--interval", "100"]);
        assert_eq!(code, 0, "{which:?}: {err}");
        assert!(
            out.contains("job bk: ") && out.contains("successfully"),
            "{out}"
        );
        assert!(
            started.elapsed() > Duration::from_millis(500),
            "it watched a running job"
        );
        // The job is gone now: a clear error.
        let (code, _, err) = run(s, &["job", "watch", "bk"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("no job 'bk'"), "{err}");
        // A cancelled job: exit 1, its final status.
        slow_backup(s, "bc", "1048576");
        // Cancelled once the watch has the job in view (its first
        // `query-jobs` sent).
        let (watch, _dir) = watching(s, &[]);
        let (ccode, _, cerr) = run(
            &two.second,
            &["exec", "block-job-cancel", "device=bc", "force=true"],
        );
        assert_eq!(ccode, 0, "{cerr}");
        let o = watch.wait_with_output().expect("the watch ends");
        let (code, out, err) = (
            o.status.code().unwrap_or(-1),
            text(&o.stdout),
            text(&o.stderr),
        );
        assert_eq!(code, 1, "{which:?}: {out} {err}");
        assert!(
            out.contains("job bc: ") && out.contains("cancelled"),
            "{out}"
        );
        assert!(err.contains("job failed or was cancelled: bc"), "{err}");
    }
}

/// A job QEMU cancels as it shuts down (`quit`): `qmp job watch` reports
/// it cancelled (exit 1), not a lost connection (exit 3), as
/// `BLOCK_JOB_CANCELLED` came before the end.
#[test]
fn job_watch_reports_a_job_cancelled_by_quit() {
    let two = start_two(Which::Installed, Flavor::StorageDaemon);
    let s = two.qemu.socket();
    slow_backup(s, "bq", "1048576");
    let (watch, dir) = watching(s, &["bq"]);
    let record = dir.path().join("watch.jsonl");
    let (code, _, err) = run(&two.second, &["exec", "quit"]);
    assert_eq!(code, 0, "{err}");
    let o = watch.wait_with_output().expect("the watch ends");
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    let recorded = std::fs::read_to_string(&record).unwrap_or_default();
    assert!(recorded.contains("BLOCK_JOB_CANCELLED"), "{recorded}");
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(
        out.contains("job bq: ") && out.contains("cancelled"),
        "{out}"
    );
}

#[test]
fn job_run_starts_a_job_and_follows_it() {
    let q = start(Which::Installed, Flavor::StorageDaemon);
    let s = q.socket();
    null_nodes(s, &["src", "dst"]);
    let (code, out, err) = run(
        s,
        &[
            "job",
            "run",
            "blockdev-backup",
            "job-id=r0",
            "device=src",
            "target=dst",
            "sync=full",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "job r0: concluded successfully");
    // A job that fails: exit 1, QEMU's text.
    let (code, out, err) = run(
        s,
        &[
            "job",
            "run",
            "blockdev-create",
            "job-id=c1",
            "options.driver=file",
            "options.filename=/nonexistent/dir/x.img",
            "options.size=0",
        ],
    );
    assert_eq!(code, 1, "{out} {err}");
    // Said once: the outcome line, QEMU's text in it; nothing repeated
    // on stderr.
    assert!(
        out.starts_with("job c1: failed: ") && out.contains("No such file or directory"),
        "{out}"
    );
    assert!(!err.contains("failed"), "{err}");
    // A command that names no job: exit 2, nothing sent.
    let (code, _, err) = run(s, &["job", "run", "query-status"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("name the job"), "{err}");
}

/// Case 10 of issue 36: a burst of 1,100 events (more than a client's
/// default subscriber buffer of 1,024) is printed whole by `events
/// --follow`, which then ends with QEMU's SHUTDOWN (exit 0).
#[test]
fn events_follow_prints_a_burst_whole() {
    use qmp_client::testing::MockQemu;
    use qmp_types::{BlockJobReady, JobType, Shutdown, ShutdownCause, StopEvent};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mock = MockQemu::new();
    let path = rt.block_on(mock.listen_unix()).expect("listens");
    let mut follow = qmp()
        .arg("--socket")
        .arg(&path)
        .args(["events", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp events runs");
    let rx = line_channel(follow.stdout.take().expect("stdout"));
    // Attached once a STOP is printed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the follower never printed");
        mock.emit(StopEvent::new());
        if rx.recv_timeout(Duration::from_millis(300)).is_ok() {
            break;
        }
    }
    mock.emit_burst(
        (0..1100).map(|i| BlockJobReady::new(JobType::Backup, format!("j{i}"), 10, 10, 0)),
    );
    mock.emit(Shutdown::new(false, ShutdownCause::HostQmpQuit));
    mock.close();
    let mut ready = 0;
    while let Ok(Ok(l)) = rx.recv_timeout(Duration::from_secs(30)) {
        if l.contains("BLOCK_JOB_READY") {
            ready += 1;
        }
    }
    let st = wait_bounded(&mut follow, Duration::from_secs(20), "the follower");
    let mut err = String::new();
    if let Some(mut e) = follow.stderr.take() {
        use std::io::Read;
        e.read_to_string(&mut err).ok();
    }
    assert_eq!(ready, 1100, "{err}");
    assert_eq!(st.code(), Some(0), "{err}");
}
