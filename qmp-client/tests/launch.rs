//! The launcher as a user meets it: a missing binary names its package
//! and variable, QEMU refusing its arguments shows what it said, a
//! started QEMU is killed by its PID and its directory removed on drop.

use qmp_client::launch::{Flavor, LaunchError, Launcher};
use qmp_client::{Error, Options};

#[tokio::test]
async fn a_missing_binary_says_how_to_get_it() {
    let e = Launcher::new("/nonexistent/qemu-system-x86_64", Flavor::System)
        .start()
        .await
        .expect_err("missing");
    assert!(matches!(e, LaunchError::NotFound { .. }), "{e}");
    // Through the variable a user sets (in a child process, so that no
    // other test sees it): the message names the package and the
    // variable.
    let var = "QMP_QEMU_STORAGE_DAEMON";
    let e = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "child_reports_missing_storage_daemon",
            "--nocapture",
        ])
        .env(var, "/nonexistent/qemu-storage-daemon")
        .env("QMP_LAUNCH_CHILD", "1")
        .output()
        .expect("child test");
    let out = String::from_utf8_lossy(&e.stdout);
    assert!(e.status.success(), "{out}");
    assert!(
        out.contains("/nonexistent/qemu-storage-daemon not found: install it (Debian/Ubuntu: `apt-get install qemu-utils`) or set QMP_QEMU_STORAGE_DAEMON to the binary to use"),
        "{out}"
    );
}

/// Run by the test above in a child process, with the variable set.
#[tokio::test]
async fn child_reports_missing_storage_daemon() {
    if std::env::var_os("QMP_LAUNCH_CHILD").is_none() {
        return;
    }
    let e = Launcher::storage_daemon()
        .start()
        .await
        .expect_err("missing");
    // As a client error, too.
    let e: Error = e.into();
    println!("{e}");
}

#[tokio::test]
async fn qemu_that_exits_early_shows_its_stderr() {
    let e = Launcher::storage_daemon()
        .args(["--blockdev", "driver=no-such-driver,node-name=x"])
        .start()
        .await
        .expect_err("bad arguments");
    match &e {
        LaunchError::Exited { stderr, status, .. } => {
            assert!(!status.success());
            assert!(stderr.contains("no-such-driver"), "{stderr}");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("exited"), "{e}");
    // qemu-system opens its QMP socket before it sets up devices: a bad
    // device still fails the start (QEMU greets only once it runs).
    for _ in 0..3 {
        let e = Launcher::system_x86_64()
            .guestless()
            .args(["-device", "no-such-device"])
            .start()
            .await
            .expect_err("bad device");
        match &e {
            LaunchError::Exited { stderr, .. } => {
                assert!(stderr.contains("no-such-device"), "{stderr}");
            }
            other => panic!("{other}"),
        }
    }
}

#[tokio::test]
async fn dropped_qemu_is_killed_and_its_directory_removed() {
    let qemu = Launcher::storage_daemon().start().await.expect("start");
    let pid = qemu.pid();
    let dir = qemu.dir().to_path_buf();
    assert!(qemu.socket().starts_with(&dir));
    let c = qemu.connect(Options::default()).await.expect("connect");
    c.execute(qmp_types::QueryVersion::new())
        .await
        .expect("call");
    drop(qemu);
    // Reaped (no zombie left) and gone.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} still there"
    );
    assert!(!dir.exists(), "{} still there", dir.display());
    let e = tokio::time::timeout(std::time::Duration::from_secs(1), c.closed())
        .await
        .expect("the client learns at once");
    assert!(e.is_socket_closed());
    // shutdown() says how it ended.
    let qemu = Launcher::storage_daemon().start().await.expect("start");
    let status = qemu.shutdown().expect("shutdown");
    assert!(!status.success(), "killed: {status}");
}

/// A QEMU that leaves its first client without a greeting (a fake: a
/// Python script that takes the storage daemon's arguments): the launcher
/// drops that probe after a few seconds and dials again, rather than
/// waiting for the whole start timeout.
#[tokio::test]
async fn a_probe_left_without_a_greeting_is_dialled_again() {
    let dir = tests::TempDir::new("silent").expect("dir");
    let script = dir.path().join("fake-qsd");
    executable(
        &script,
        r#"#!/usr/bin/env python3
import socket, sys
chardev = sys.argv[sys.argv.index("--chardev") + 1]
path = [kv.split("=", 1)[1] for kv in chardev.split(",") if kv.startswith("path=")][0]
listener = socket.socket(socket.AF_UNIX)
listener.bind(path)
listener.listen(4)
silent, _ = listener.accept()  # never greeted, never closed
while True:
    conn, _ = listener.accept()
    f = conn.makefile("rwb")
    f.write(b'{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "fake"}, "capabilities": []}}\n')
    f.flush()
    if f.readline():
        f.write(b'{"return": {}}\n')
        f.flush()
    conn.close()
"#,
    );
    let started = std::time::Instant::now();
    let qemu = Launcher::new(&script, Flavor::StorageDaemon)
        .start_timeout(std::time::Duration::from_secs(60))
        .start()
        .await
        .expect("the second probe is greeted");
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(20),
        "waited {took:?}: the silent probe was not dropped"
    );
    drop(qemu);
}

/// A QEMU that floods its stderr with control bytes and exits: the
/// message shows its last lines, escaped, not 64 KiB of raw bytes.
#[tokio::test]
async fn a_noisy_failure_shows_the_last_lines_escaped() {
    let dir = tests::TempDir::new("noisy").expect("dir");
    let script = dir.path().join("noisy-qsd");
    executable(
        &script,
        "#!/bin/sh\ni=0\nwhile [ $i -lt 2000 ]; do printf 'line %d \\033[31mred\\033[0m\\r\\n' $i >&2; i=$((i+1)); done\necho 'the last word' >&2\nexit 1\n",
    );
    let e = Launcher::new(&script, Flavor::StorageDaemon)
        .start()
        .await
        .expect_err("exits");
    let LaunchError::Exited { stderr, .. } = &e else {
        panic!("{e}");
    };
    // All that was kept is in the field ...
    assert!(stderr.contains("line 1999"), "{}", stderr.len());
    // ... the message shows the end, escaped, briefly.
    let shown = e.to_string();
    assert!(shown.ends_with("the last word"), "{shown}");
    assert!(shown.contains("[earlier output not shown]"), "{shown}");
    assert!(shown.contains("line 1999 \\u{1b}[31mred"), "{shown}");
    assert!(!shown.contains("line 1000 "), "{shown}");
    assert!(
        !shown.chars().any(|c| c.is_control() && c != '\n'),
        "{shown:?}"
    );
    assert!(shown.len() < 5000, "{} bytes", shown.len());
}

/// A "QEMU" that exits at once but leaves a child holding its stderr
/// open: the start fails at once (not when the child ends), and the
/// child, in QEMU's process group, is killed with it.
#[tokio::test]
async fn an_exit_is_reported_at_once_though_a_child_holds_stderr() {
    let dir = tests::TempDir::new("orphan").expect("dir");
    let script = dir.path().join("leaves-a-child");
    let pidfile = dir.path().join("child.pid");
    executable(
        &script,
        format!(
            "#!/bin/sh\nsleep 30 &\necho $! > {}\necho 'bye' >&2\nexit 1\n",
            pidfile.display()
        ),
    );
    let started = std::time::Instant::now();
    let e = Launcher::new(&script, Flavor::StorageDaemon)
        .start_timeout(std::time::Duration::from_secs(20))
        .start()
        .await
        .expect_err("exits");
    let took = started.elapsed();
    assert!(
        // Waiting for the child would take the start timeout (20 s).
        took < std::time::Duration::from_secs(10),
        "{took:?}: waited for the child"
    );
    match &e {
        LaunchError::Exited { stderr, .. } => assert!(stderr.contains("bye"), "{stderr}"),
        other => panic!("{other}"),
    }
    let pid = std::fs::read_to_string(&pidfile).expect("pid file");
    let pid = pid.trim();
    // Killed with its group (until the kernel has reaped it, within 10 s:
    // its parent, the script, is gone, so init does).
    let gone = (0..500).any(|_| {
        let alive =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
        if alive {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        !alive
    });
    assert!(gone, "the child {pid} outlived the start");
}

/// Writes `text` to `path` as an executable script.
fn executable(path: &std::path::Path, text: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
