//! `qmp proxy`: two `qmp` runs at once through one monitor, the log of
//! who sent what, read-only mode, and the proxy's end when QEMU goes
//! (exit code 3, its socket removed).

use super::*;

/// `qmp -s SOCKET proxy --listen PATH ARGS`, running and listening (it
/// said so), with its stderr's later lines; with `nofile`, started
/// through `sh` after `ulimit -n NOFILE`.
fn proxy_lines(
    socket: &Path,
    listen: &Path,
    args: &[&str],
    nofile: Option<u32>,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<std::io::Result<String>>,
) {
    let mut all = vec![
        "--socket".to_string(),
        socket.display().to_string(),
        "proxy".into(),
        "--listen".into(),
        listen.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(QMP)
                .env("QMP_CACHE_DIR", CACHE);
            c
        }
        None => qmp(),
    };
    let mut child = cmd
        .args(&all)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp proxy runs");
    let lines = line_channel(child.stderr.take().expect("stderr"));
    wait_line(&lines, "proxy listening on");
    (child, lines)
}

/// [`proxy_lines`], its stderr read and dropped (so it never blocks on
/// them).
pub(super) fn proxy_limited(
    socket: &Path,
    listen: &Path,
    args: &[&str],
    nofile: Option<u32>,
) -> std::process::Child {
    let (child, lines) = proxy_lines(socket, listen, args, nofile);
    std::thread::spawn(move || for _ in lines {});
    child
}

fn proxy(socket: &Path, listen: &Path, args: &[&str]) -> std::process::Child {
    proxy_limited(socket, listen, args, None)
}

/// Waits for a line of `lines` that contains `what`.
fn wait_line(lines: &std::sync::mpsc::Receiver<std::io::Result<String>>, what: &str) {
    loop {
        let l = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("waiting for {what:?}: {e}"))
            .expect("a line");
        if l.contains(what) {
            return;
        }
    }
}

#[test]
fn two_runs_at_once_through_the_proxy_then_qemu_goes() {
    let qemu = start(Which::Installed, Flavor::StorageDaemon);
    let dir = TempDir::new("qmp-proxy").expect("temp dir");
    let listen = dir.path().join("shared.qmp");
    let log = dir.path().join("who.jsonl");
    let mut p = proxy(
        qemu.socket(),
        &listen,
        &["--log", log.to_str().expect("utf-8")],
    );
    // Two at once: one follows events while the other sends commands.
    let record = dir.path().join("follower.jsonl");
    let mut follower = qmp()
        .args([
            "--socket",
            listen.to_str().expect("utf-8"),
            "--record",
            record.to_str().expect("utf-8"),
            "events",
            "--filter",
            "JOB_STATUS_CHANGE",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp events runs");
    wait_recorded(&record, "the follower negotiated", negotiated);
    for node in ["src", "dst"] {
        let args = [
            "exec",
            "blockdev-add",
            "driver=null-co",
            &format!("node-name={node}"),
            "size=1048576",
        ];
        let (code, _, err) = run(&listen, &args);
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, err) = run(
        &listen,
        &[
            "exec",
            "blockdev-backup",
            "job-id=bk",
            "device=src",
            "target=dst",
            "sync=full",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let st = wait_bounded(&mut follower, Duration::from_secs(10), "qmp events");
    assert!(st.success());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut follower.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    let ev: Value = serde_json::from_str(out.trim()).expect("one event line");
    assert_eq!(ev["event"], "JOB_STATUS_CHANGE");
    assert_eq!(ev["data"]["id"], "bk");
    // The log: who sent what.
    let entries: Vec<Value> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let commands: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["command"].as_str())
        .collect();
    assert!(commands.contains(&"blockdev-backup"), "{commands:?}");
    assert!(entries.iter().all(|e| e["pid"].is_u64()));
    // QEMU goes: the proxy says so and exits 3, its socket removed.
    drop(qemu);
    let st = wait_bounded(&mut p, Duration::from_secs(10), "qmp proxy");
    assert_eq!(st.code(), Some(3));
    assert!(!listen.exists());
}

#[test]
fn read_only_lets_queries_through_and_refuses_the_rest() {
    let qemu = start(Which::Installed, Flavor::StorageDaemon);
    let dir = TempDir::new("qmp-proxy-ro").expect("temp dir");
    let listen = dir.path().join("ro.qmp");
    let mut p = proxy(qemu.socket(), &listen, &["--read-only"]);
    let v = json_out(&listen, &["exec", "query-version"]);
    assert_eq!(v["qemu"]["major"], 10);
    let (code, _, err) = run(
        &listen,
        &["exec", "blockdev-add", "driver=null-co", "node-name=n0"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not allowed (read-only"), "{err}");
    let _ = p.kill();
    let _ = p.wait();
}

#[test]
fn with_wait_the_proxy_outlives_a_qemu_restart() {
    let dir = TempDir::new("qmp-proxy-wait").expect("temp dir");
    let socket = dir.path().join("qemu.qmp");
    let listen = dir.path().join("shared.qmp");
    let first = tests::Daemon::on(&socket);
    let (mut p, lines) = proxy_lines(&socket, &listen, &["--wait"], None);
    assert_eq!(
        json_out(&listen, &["exec", "query-version"])["qemu"]["major"],
        10
    );
    drop(first);
    // It saw QEMU go, and waits.
    wait_line(&lines, "qmp: proxy: ");
    assert!(p.try_wait().expect("wait").is_none(), "the proxy waits");
    let _second = tests::Daemon::on(&socket);
    // It dials again (every second) and says so.
    wait_line(&lines, "QEMU is back");
    let (code, out, err) = run(&listen, &["exec", "query-version"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"major\": 10"), "{out}");
    let _ = p.kill();
    let _ = p.wait();
}

/// Stopped by a signal, `qmp proxy` removes its socket; a socket left by
/// a proxy killed outright does not stop the next one.
#[test]
fn a_signal_removes_the_socket_and_a_stale_one_is_replaced() {
    let qemu = start(Which::Installed, Flavor::StorageDaemon);
    let dir = TempDir::new("qmp-proxy-sig").expect("temp dir");
    let listen = dir.path().join("p.qmp");
    // `proxy` waits until it says it listens (its signal handling is set
    // up by then): the socket file alone may be a stale one.
    for (signal, code) in [
        (nix::sys::signal::Signal::SIGTERM, 143),
        (nix::sys::signal::Signal::SIGHUP, 129),
        (nix::sys::signal::Signal::SIGINT, 130),
    ] {
        let mut p = proxy(qemu.socket(), &listen, &[]);
        let pid = nix::unistd::Pid::from_raw(i32::try_from(p.id()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal");
        let st = wait_bounded(&mut p, Duration::from_secs(10), "qmp proxy");
        assert_eq!(st.code(), Some(code), "{signal}");
        assert!(!listen.exists(), "{signal}: the socket is removed");
    }
    // SIGKILL leaves it; the next proxy replaces it.
    let mut p = proxy(qemu.socket(), &listen, &[]);
    p.kill().expect("kill");
    let _ = p.wait();
    assert!(listen.exists(), "a killed proxy leaves its socket");
    let mut p = proxy(qemu.socket(), &listen, &[]);
    let (code, out, err) = run(&listen, &["exec", "--raw", "query-version"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"qemu\""), "{out}");
    p.kill().expect("kill");
    let _ = p.wait();
}
