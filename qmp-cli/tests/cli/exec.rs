//! `qmp exec`: typed replies, arguments typed by the schema, bad input
//! refused before sending, unreachable or dying QEMU, the reply timeout.

use super::*;

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
    let record = dir.path().join("mid.jsonl");
    let mut child = qmp()
        .arg("--socket")
        .arg(q.socket())
        .arg("--record")
        .arg(&record)
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
    wait_recorded(&record, "blockdev-add sent", sent("blockdev-add"));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "no answer: QEMU is stuck in the open"
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

/// QEMU 11.1.3, newer than the bindings: `exec` checks and types by its
/// own schema, cached on disk per QEMU build.
#[test]
fn exec_follows_the_connected_qemus_own_schema() {
    let q = start(Which::Qemu111, Flavor::System);
    let cache = TempDir::new("qmp-cache").expect("temp dir");
    let run = |args: &[&str]| {
        let socket = q.socket().display().to_string();
        let o = qmp()
            .env("QMP_CACHE_DIR", cache.path())
            .args(["--socket", socket.as_str()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("qmp runs");
        (
            o.status.code().unwrap_or(-1),
            text(&o.stdout),
            text(&o.stderr),
        )
    };
    // An argument only 11.1 has, typed by its schema (`3` a number).
    let (code, out, err) = run(&[
        "exec",
        "object-add",
        "qom-type=iothread",
        "id=io1",
        "poll-weight=3",
    ]);
    assert_eq!((code, out.trim()), (0, "{}"), "{err}");
    let files: Vec<_> = std::fs::read_dir(cache.path()).expect("cached").collect();
    assert_eq!(files.len(), 1, "one file for this QEMU build");
    // What 11.1 removed: refused, nothing sent (exit 2), naming 11.1.3.
    let (code, _, err) = run(&["exec", "query-migrationthreads"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("QEMU 11.1.3 (connected) has no command `query-migrationthreads`"),
        "{err}"
    );
    let (code, _, err) = run(&["exec", "migrate", "uri=unix:/nonexistent", "detach=true"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("has no argument `detach` of `migrate`"),
        "{err}"
    );
    // A misspelling is still refused with the bindings' words.
    let (code, _, err) = run(&[
        "exec",
        "object-add",
        "qom-type=iothread",
        "id=io2",
        "poll-weigh=3",
    ]);
    assert_eq!(code, 2, "{err}");
    // The cached file is what decides: 10.0.2's schema planted under this
    // build's key refuses 11.1's argument; a corrupt one is fetched again.
    let file = std::fs::read_dir(cache.path())
        .expect("cache")
        .next()
        .expect("a file")
        .expect("entry")
        .path();
    let old = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../qmp-client/tests/fixtures/introspection/system-10.0.2.json"
    );
    std::fs::copy(old, &file).expect("plant");
    let (code, _, err) = run(&[
        "exec",
        "object-add",
        "qom-type=iothread",
        "id=io3",
        "poll-weight=3",
    ]);
    assert_eq!(code, 2, "the cache was read: {err}");
    std::fs::write(&file, b"{not json").expect("corrupt");
    let (code, _, err) = run(&[
        "exec",
        "object-add",
        "qom-type=iothread",
        "id=io4",
        "poll-weight=3",
    ]);
    assert_eq!(code, 0, "a corrupt cache is ignored: {err}");
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("rewritten")).expect("JSON again");
    assert!(again.as_array().is_some_and(|a| a.len() > 1000));
}
