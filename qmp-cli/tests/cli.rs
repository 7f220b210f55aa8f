//! `qmp` as a person or a script runs it, against real
//! qemu-storage-daemon and qemu-system-x86_64 (10.0.2, and 7.2 where the
//! version matters): each subcommand, and bad input, which must give a
//! clear message and a non-zero exit, never a panic.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qmp_client::launch::{Flavor, Qemu};
use serde_json::{Value, json};
use tests::{TempDir, Which, launcher};

const QMP: &str = env!("CARGO_BIN_EXE_qmp");

fn start(which: Which, flavor: Flavor) -> Qemu {
    let l = launcher(which, flavor).start_timeout(Duration::from_secs(60));
    let l = if flavor == Flavor::System {
        l.guestless()
    } else {
        l
    };
    start_retrying(&l)
}

/// Starts QEMU; once more if it crashed while starting (seen once in
/// many runs: qemu-storage-daemon killed by SIGSEGV before its socket
/// appeared, with ten tests starting QEMUs at once), saying so.
fn start_retrying(l: &qmp_client::launch::Launcher) -> Qemu {
    match l.clone().start_blocking() {
        Ok(q) => q,
        Err(e @ qmp_client::launch::LaunchError::Exited { .. }) => {
            eprintln!("QEMU did not start ({e}); trying once more");
            l.clone().start_blocking().expect("QEMU starts")
        }
        Err(e) => panic!("QEMU starts: {e}"),
    }
}

/// QEMU with a second monitor socket (`second`): a QMP socket serves one
/// client at a time, and some tests run two `qmp` at once.
struct Two {
    qemu: Qemu,
    second: std::path::PathBuf,
    _dir: TempDir,
}

fn start_two(which: Which, flavor: Flavor) -> Two {
    let dir = TempDir::new("qmp-cli-2nd").expect("temp dir");
    let second = dir.path().join("second.sock");
    let path = second.display().to_string();
    let l = launcher(which, flavor).start_timeout(Duration::from_secs(60));
    let l = match flavor {
        Flavor::System => l.guestless().args([
            "-qmp".to_string(),
            format!("unix:{path},server=on,wait=off"),
        ]),
        _ => l.args([
            "--chardev".to_string(),
            format!("socket,id=second,path={path},server=on,wait=off"),
            "--monitor".to_string(),
            "chardev=second".to_string(),
        ]),
    };
    Two {
        qemu: start_retrying(&l),
        second,
        _dir: dir,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `qmp ARGS` (without QMP_SOCKET from the environment): exit code,
/// stdout, stderr; no run may panic.
fn run_bare(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(QMP)
        .args(args)
        .env_remove("QMP_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("qmp runs");
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(!err.contains("panicked"), "qmp {args:?} panicked: {err}");
    (o.status.code().unwrap_or(-1), out, err)
}

/// `qmp --socket SOCKET ARGS`, as [`run_bare`].
fn run(socket: &Path, args: &[&str]) -> (i32, String, String) {
    let socket = socket.display().to_string();
    let mut all = vec!["--socket", socket.as_str()];
    all.extend_from_slice(args);
    run_bare(&all)
}

fn json_out(socket: &Path, args: &[&str]) -> Value {
    let (code, out, err) = run(socket, args);
    assert_eq!(code, 0, "qmp {args:?}: {err}");
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("qmp {args:?} printed no JSON ({e}): {out}"))
}

#[test]
fn exec_prints_typed_replies_pretty_or_raw() {
    for which in Which::ALL {
        let q = start(which, Flavor::System);
        let (code, out, err) = run(q.socket(), &["exec", "query-status"]);
        assert_eq!(code, 0, "{which:?}: {err}");
        assert!(out.contains("\n  \"status\": \"running\""), "pretty: {out}");
        let (_, raw, _) = run(q.socket(), &["exec", "--raw", "query-status"]);
        assert_eq!(raw.lines().count(), 1, "{raw}");
        let v: Value = serde_json::from_str(&raw).expect("JSON");
        assert_eq!(v["running"], json!(true));
        let version = json_out(q.socket(), &["exec", "query-version"]);
        let (major, minor) = which.series();
        assert_eq!(
            (
                version["qemu"]["major"].as_i64(),
                version["qemu"]["minor"].as_i64()
            ),
            (Some(major), Some(minor))
        );
        // A command with no reply data prints QEMU's `{}`.
        assert_eq!(json_out(q.socket(), &["exec", "stop"]), json!({}));
        assert_eq!(
            json_out(q.socket(), &["exec", "query-status"])["status"],
            json!("paused")
        );
    }
}

#[test]
fn key_value_arguments_are_typed_by_the_schema() {
    let q = start(Which::Installed, Flavor::StorageDaemon);
    // `size=1048576` is a number by the schema, `read-only=on` a boolean,
    // and `name=2024` a string.
    let (code, _, err) = run(
        q.socket(),
        &[
            "exec",
            "blockdev-add",
            "driver=null-co",
            "node-name=n1",
            "size=1048576",
            "read-only=on",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        q.socket(),
        &[
            "exec",
            "block-dirty-bitmap-add",
            "node=n1",
            "name=2024",
            "granularity=65536",
        ],
    );
    assert_eq!(code, 0, "{err}");
    // Nested members with dotted keys; a JSON object works too.
    let dir = TempDir::new("qmp-cli-kv").expect("temp dir");
    let img = dir.path().join("a.raw");
    std::fs::write(&img, vec![0u8; 65536]).expect("image");
    let (code, _, err) = run(
        q.socket(),
        &[
            "exec",
            "blockdev-add",
            "driver=raw",
            "node-name=disk",
            "file.driver=file",
            &format!("file.filename={}", img.display()),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        q.socket(),
        &[
            "exec",
            "block-set-write-threshold",
            r#"{"node-name": "disk", "write-threshold": 4096}"#,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let nodes = json_out(
        q.socket(),
        &["exec", "query-named-block-nodes", "flat=true"],
    );
    let names: Vec<&str> = nodes
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|n| n["node-name"].as_str())
        .collect();
    assert!(
        names.contains(&"n1") && names.contains(&"disk"),
        "{names:?}"
    );
    let one = nodes
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node-name"] == "n1"))
        .expect("node n1");
    assert_eq!(one["ro"], json!(true));
    assert_eq!(one["image"]["virtual-size"], json!(1048576));
    assert_eq!(one["dirty-bitmaps"][0]["name"], json!("2024"), "{one}");
    let disk = nodes
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node-name"] == "disk"))
        .expect("node disk");
    assert_eq!(disk["write_threshold"], json!(4096), "{disk}");
    // --dry-run shows what would be sent, typed, without connecting.
    let (code, out, err) = run_bare(&["exec", "--dry-run", "--raw", "device_del", "id=7"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("JSON"),
        json!({"execute": "device_del", "arguments": {"id": "7"}})
    );
}

#[test]
fn bad_input_is_refused_before_sending() {
    let q = start(Which::Installed, Flavor::StorageDaemon);
    let s = q.socket();
    // Each: arguments, then what the message must say; exit code 2.
    let cases: &[(&[&str], &[&str])] = &[
        // Unknown command: close names.
        (
            &["exec", "query-named-block-node"],
            &[
                "unknown command 'query-named-block-node'",
                "query-named-block-nodes",
            ],
        ),
        // Wrong type: the member's path, deep inside a union branch.
        (
            &[
                "exec",
                "blockdev-add",
                "driver=qcow2",
                "node-name=q",
                "file.driver=file",
                "file.filename=/x",
                "file.aio-max-batch=lots",
            ],
            &["member `file.aio-max-batch`", "expected i64"],
        ),
        // An enum value the schema does not have: the values it has.
        (
            &[
                "exec",
                "blockdev-backup",
                "device=a",
                "target=b",
                "sync=fulll",
            ],
            &["member `sync`: unknown variant `fulll`", "`full`"],
        ),
        // Missing required argument.
        (
            &["exec", "block-job-set-speed", "device=j"],
            &["missing field `speed`"],
        ),
        // Misspelt argument: its close name.
        (
            &["exec", "block-job-cancel", "devcie=j"],
            &["unknown member `devcie`", "did you mean 'device'"],
        ),
        // Not key=value, not JSON.
        (
            &["exec", "block-job-cancel", "j"],
            &["neither key=value nor a JSON object"],
        ),
        (
            &["exec", "block-job-cancel", "{\"device\":"],
            &["not valid JSON"],
        ),
    ];
    for (args, says) in cases {
        let (code, _, err) = run(s, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        for needle in *says {
            assert!(err.contains(needle), "{args:?}: {err} lacks {needle}");
        }
    }
    // Nothing above reached QEMU: it has no node named q.
    let nodes = json_out(s, &["exec", "--raw", "query-named-block-nodes"]);
    assert_eq!(nodes, json!([]));
    // QEMU's own error: class and description, exit 1.
    let (code, _, err) = run(s, &["exec", "block-job-cancel", "device=nope"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("DeviceNotActive") && err.contains("'nope'"),
        "{err}"
    );
    // --unchecked sends what the schema would refuse; QEMU answers.
    let (code, _, err) = run(s, &["exec", "--unchecked", "x-no-such-command"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("CommandNotFound"), "{err}");
}

#[test]
fn unreachable_or_dying_qemu_is_a_clear_error() {
    let dir = TempDir::new("qmp-cli-dead").expect("temp dir");
    let (code, _, err) = run(&dir.path().join("no.sock"), &["exec", "query-version"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("can't connect to") && err.contains("No such file"),
        "{err}"
    );
    let (code, _, err) = run(Path::new("/dev/null"), &["exec", "query-version"]);
    assert_eq!(code, 3, "{err}");
    assert!(!err.is_empty());
    // A monitor another client holds: QEMU accepts, but greets only
    // after that client leaves.
    let busy = start(Which::Installed, Flavor::StorageDaemon);
    let holder = tests::RawQmp::connect(busy.socket()).expect("first client");
    let (code, _, err) = run(
        busy.socket(),
        &["--connect-timeout", "0.5", "exec", "query-version"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is another client connected?"), "{err}");
    drop(holder);
    // Nowhere to connect at all.
    let (code, _, err) = run_bare(&["exec", "query-version"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--socket PATH"), "{err}");

    // QEMU dies mid-command: opening a FIFO (no writer) blocks
    // qemu-storage-daemon's main loop inside blockdev-add; then it is
    // killed.
    let q = start(Which::Installed, Flavor::StorageDaemon);
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let mut child = Command::new(QMP)
        .arg("--socket")
        .arg(q.socket())
        .args([
            "exec",
            "blockdev-add",
            "driver=file",
            "node-name=f",
            "read-only=on",
        ])
        .arg(format!("filename={}", fifo.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp runs");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "QEMU is stuck in the open"
    );
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(q.pid()).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill QEMU");
    let o = child.wait_with_output().expect("qmp ends");
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("QEMU closed the connection"), "{err}");
}

/// `events --follow` ends with exit 0 when QEMU closes the connection
/// after its SHUTDOWN event (`quit`), and with exit 3 when QEMU goes away
/// without one (SIGKILL), as README's exit codes say.
/// `qmp --spawn` stops the QEMU it started when the run is ended by a
/// signal: SIGTERM and SIGHUP during `events --follow`, Ctrl-C (SIGINT)
/// during an `exec` stuck in QEMU. The QEMU process and its directory are
/// gone, and `qmp` exits 128 + the signal.
#[test]
fn spawn_cleans_up_on_sigterm_sighup_and_sigint() {
    use nix::sys::signal::Signal;
    let dir = TempDir::new("qmp-cli-signals").expect("temp dir");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let filename = format!("filename={}", fifo.display());
    let follow: &[&str] = &["--spawn", "events", "--follow"];
    let stuck: &[&str] = &[
        "--spawn",
        "exec",
        "--timeout",
        "0",
        "blockdev-add",
        "driver=file",
        "node-name=f",
        "read-only=on",
        &filename,
    ];
    for (args, sig) in [
        (follow, Signal::SIGTERM),
        (follow, Signal::SIGHUP),
        (stuck, Signal::SIGINT),
    ] {
        let mut qmp = Command::new(QMP)
            .args(args)
            .env_remove("QMP_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qmp runs");
        let mut err = BufReader::new(qmp.stderr.take().expect("stderr"));
        // "qmp: started qemu-storage-daemon (pid N) on SOCKET"
        let mut line = String::new();
        err.read_line(&mut line).expect("the start line");
        let pid: i32 = line
            .split("(pid ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {line:?}"));
        let socket = std::path::PathBuf::from(line.rsplit(" on ").next().expect("socket").trim());
        // Connected (and, for exec, stuck in QEMU) before the signal.
        std::thread::sleep(Duration::from_millis(700));
        assert!(
            qmp.try_wait().expect("wait").is_none(),
            "{sig}: qmp ended early"
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(qmp.id()).expect("pid")),
            sig,
        )
        .expect("signal qmp");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = qmp.try_wait().expect("wait") {
                break st;
            }
            assert!(Instant::now() < deadline, "{sig}: qmp did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).ok();
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {rest}");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{sig}: QEMU {pid} still runs"
        );
        let qemu_dir = socket.parent().expect("the socket's directory");
        assert!(
            !qemu_dir.exists(),
            "{sig}: {} left behind",
            qemu_dir.display()
        );
    }
}

/// `qmp exec` gives up on a reply after `--timeout` (30 s unless told):
/// exit 3, naming the wait. QEMU is held inside `blockdev-add` by a FIFO
/// nobody writes to.
#[test]
fn exec_gives_up_after_its_timeout() {
    let dir = TempDir::new("qmp-cli-stuck").expect("temp dir");
    let q = start(Which::Installed, Flavor::StorageDaemon);
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let started = Instant::now();
    let (code, _, err) = run(
        q.socket(),
        &[
            "exec",
            "--timeout",
            "1",
            "blockdev-add",
            "driver=file",
            "node-name=f",
            "read-only=on",
            &format!("filename={}", fifo.display()),
        ],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("the reply to blockdev-add"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // The default is there, and 0 turns it off.
    let (_, help, _) = run_bare(&["exec", "--help"]);
    assert!(help.contains("[default: 30]"), "{help}");
    let (code, _, err) = run(q.socket(), &["exec", "--timeout", "-1", "query-version"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn events_follow_tells_a_quit_from_a_kill() {
    for kill in [false, true] {
        let two = start_two(Which::Installed, Flavor::System);
        let q = &two.qemu;
        let mut follow = Command::new(QMP)
            .arg("--socket")
            .arg(&two.second)
            .args(["events", "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qmp events runs");
        let lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in lines {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        // Attached once it prints what a `stop` makes.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "the follower never printed");
            assert_eq!(run(q.socket(), &["exec", "stop"]).0, 0);
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
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = follow.try_wait().expect("wait") {
                break st;
            }
            assert!(Instant::now() < deadline, "the follower did not end");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        if let Some(mut e) = follow.stderr.take() {
            use std::io::Read;
            e.read_to_string(&mut err).ok();
        }
        let want = if kill { 3 } else { 0 };
        assert_eq!(status.code(), Some(want), "kill={kill}: {err}");
    }
}

#[test]
fn events_are_json_lines_with_timestamps() {
    let two = start_two(Which::Installed, Flavor::System);
    let q = &two.qemu;
    let mut follow = Command::new(QMP)
        .arg("--socket")
        .arg(&two.second)
        .args(["events", "--follow", "--filter", "STOP,RESUME"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp events runs");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    // The follower may not be connected yet: stop and resume until it has
    // printed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.by_ref() {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
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

    // Without --follow: the next matching event, then exit 0.
    let mut one = Command::new(QMP)
        .arg("--socket")
        .arg(&two.second)
        .args(["events", "--filter", "STOP", "--timeout", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        run(q.socket(), &["exec", "stop"]);
        run(q.socket(), &["exec", "cont"]);
        if one.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
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

/// Two throttled null nodes and a backup between them: a job that runs a
/// few seconds.
fn slow_backup(s: &Path, id: &str, speed: &str) {
    for n in ["src", "dst"] {
        let (code, _, err) = run(
            s,
            &[
                "exec",
                "blockdev-add",
                "driver=null-co",
                &format!("node-name={id}-{n}"),
                "size=67108864",
            ],
        );
        assert_eq!(code, 0, "{err}");
    }
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
        let canceller = {
            let s = two.second.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(700));
                run(&s, &["exec", "block-job-cancel", "device=bc", "force=true"])
            })
        };
        let (code, out, err) = run(s, &["job", "watch"]);
        let (ccode, _, cerr) = canceller.join().expect("cancel thread");
        assert_eq!(ccode, 0, "{cerr}");
        assert_eq!(code, 1, "{which:?}: {out} {err}");
        assert!(
            out.contains("job bc: ") && out.contains("cancelled"),
            "{out}"
        );
        assert!(err.contains("job failed or was cancelled: bc"), "{err}");
    }
}

#[test]
fn spawn_starts_a_private_qemu() {
    let (code, out, err) = run_bare(&["--spawn", "exec", "--raw", "query-block-jobs"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[]");
    assert!(err.contains("started qemu-storage-daemon (pid "), "{err}");
    let (code, out, err) = run_bare(&[
        "--spawn=qemu-system-x86_64",
        "exec",
        "--raw",
        "query-status",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"running\":true"), "{out}");
    let (code, _, err) = run_bare(&[
        "--spawn=/nonexistent/qemu-system-x86_64",
        "exec",
        "query-status",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("can't start QEMU"), "{err}");
}

#[test]
fn tcp_connections() {
    // A free port: bound, noted, released for QEMU.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let _q = launcher(Which::Installed, Flavor::System)
        .guestless()
        .args([
            "-qmp".to_string(),
            format!("tcp:127.0.0.1:{port},server=on,wait=off"),
        ])
        .start_timeout(Duration::from_secs(60))
        .start_blocking()
        .expect("QEMU starts");
    let addr = format!("127.0.0.1:{port}");
    let (code, out, err) = run_bare(&["--tcp", &addr, "exec", "--raw", "query-status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"status\":\"running\""), "{out}");
    // --socket and --tcp together are refused by the parser.
    let (code, _, err) = run_bare(&["--tcp", &addr, "--socket", "/x", "exec", "query-status"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn schema_diff_and_conform_reuse_the_schema_tools() {
    let (code, out, err) = run_bare(&["schema", "diff", "7.2.0", "10.0.2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("7.2.0") && out.contains("10.0.2"), "{out}");
    // Changes known from the two schemas: an added command, a removed
    // one, a removed argument.
    for change in [
        "- Added command `block-job-change`",
        "- Removed command `x-query-rdma`",
        "- command `migrate` arguments: removed member `blk`",
    ] {
        assert!(out.lines().any(|l| l == change), "{change} missing:\n{out}");
    }
    let (code, _, err) = run_bare(&["schema", "diff", "7.2.0", "no-such"]);
    assert_eq!(code, 2, "{err}");
    for which in Which::ALL {
        for flavor in [Flavor::StorageDaemon, Flavor::System] {
            let q = start(which, flavor);
            let (code, out, err) = run(q.socket(), &["conform"]);
            assert_eq!(code, 0, "{which:?} {flavor:?}: {out}\n{err}");
        }
    }
}

#[test]
fn help_is_complete() {
    let help = |args: &[&str]| {
        let (code, out, err) = run_bare(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let top = help(&["--help"]);
    for sub in [
        "exec",
        "events",
        "shell",
        "job",
        "schema",
        "conform",
        "--socket",
        "--tcp",
        "--spawn",
        "Exit codes",
    ] {
        assert!(top.contains(sub), "qmp --help lacks {sub}: {top}");
    }
    assert!(help(&["exec", "--help"]).contains("--dry-run"));
    assert!(help(&["events", "--help"]).contains("--follow"));
    assert!(help(&["shell", "--help"]).contains("--history"));
    assert!(help(&["job", "watch", "--help"]).contains("--interval"));
    assert!(help(&["schema", "diff", "--help"]).contains("OLD"));
    assert!(help(&["conform", "--help"]).contains("--storage-daemon"));
}
