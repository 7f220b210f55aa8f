//! Where `qmp` connects: a private QEMU (`--spawn`), cleaned up on
//! signals; TCP; and the commands that need no QEMU (schema diff,
//! conform, help).

use super::*;

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
        let record = dir.path().join(format!("{sig}.jsonl"));
        let mut qmp = qmp()
            .arg("--record")
            .arg(&record)
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
        // Connected (and, for exec, its command sent) before the signal.
        if sig == Signal::SIGINT {
            wait_recorded(&record, "blockdev-add sent", sent("blockdev-add"));
        } else {
            wait_recorded(&record, "negotiated", negotiated);
        }
        assert!(
            qmp.try_wait().expect("wait").is_none(),
            "{sig}: qmp ended early"
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(qmp.id()).expect("pid")),
            sig,
        )
        .expect("signal qmp");
        let status = wait_bounded(&mut qmp, Duration::from_secs(20), &format!("{sig}: qmp"));
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
    // Bindings of 7.2 alone against QEMU 10.0.2: newer than the bindings,
    // so every difference is explained (exit 0) and the to-do list says
    // what a regen would add.
    let q = start(Which::Installed, Flavor::System);
    let old = q.dir().join("schema-7.2");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(old.join("manifest.txt"), "7.2.0\n").expect("write");
    let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/7.2.0");
    std::os::unix::fs::symlink(ours, old.join("7.2.0")).expect("symlink");
    let old = old.to_string_lossy().into_owned();
    let (code, out, err) = run(q.socket(), &["conform", "--schema", &old]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("newer than the bindings' newest, 7.2.0"),
        "{err}"
    );
    assert!(out.contains("## Commands ("), "{out}");
    assert!(
        out.contains("- added: command `blockdev-set-active`"),
        "{out}"
    );
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
