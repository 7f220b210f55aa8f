//! `qmp` as a person or a script runs it, against real
//! qemu-storage-daemon and qemu-system-x86_64 (10.0.2, and 7.2 where the
//! version matters): each subcommand, and bad input, which must give a
//! clear message and a non-zero exit, never a panic.

mod connect;
mod events;
mod exec;
mod exporter;
mod migrate;
mod proxy;
mod proxy_budgets;
mod record;
mod top;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qmp_client::launch::{Flavor, Qemu};
use serde_json::{Value, json};
use tests::{TempDir, Which, launcher};

const QMP: &str = env!("CARGO_BIN_EXE_qmp");

/// Where the tests' `qmp` caches QEMU schemas: never the user's own
/// cache (`QMP_CACHE_DIR`; a test that counts what is sent gives its
/// own, empty).
const CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/qmp-cache");

/// `qmp`, with the tests' schema cache.
fn qmp() -> Command {
    let mut c = Command::new(QMP);
    c.env("QMP_CACHE_DIR", CACHE);
    c
}

/// The lines `out` prints, as they come, through a channel (read on a
/// thread of their own, so a test can wait for them with a bound).
fn line_channel(
    out: impl std::io::Read + Send + 'static,
) -> std::sync::mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits at most `bound` for `child` to end; `what` names it if it
/// doesn't.
fn wait_bounded(
    child: &mut std::process::Child,
    bound: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st;
        }
        assert!(Instant::now() < deadline, "{what} did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(which: Which, flavor: Flavor) -> Qemu {
    let l = launcher(which, flavor).start_timeout(Duration::from_secs(60));
    let l = if flavor == Flavor::System {
        l.guestless()
    } else {
        l
    };
    tests::start_blocking(l)
}

/// QEMU with a second monitor socket (`second`): a QMP socket serves one
/// client at a time, and some tests run two `qmp` at once.
struct Two {
    qemu: Qemu,
    second: std::path::PathBuf,
    _dir: TempDir,
}

fn start_two(which: Which, flavor: Flavor) -> Two {
    start_two_with(which, flavor, &[])
}

/// [`start_two`] with `extra` arguments for QEMU.
fn start_two_with(which: Which, flavor: Flavor, extra: &[&str]) -> Two {
    let dir = TempDir::new("qmp-cli-2nd").expect("temp dir");
    let second = dir.path().join("second.sock");
    let path = second.display().to_string();
    let l = launcher(which, flavor)
        .start_timeout(Duration::from_secs(60))
        .args(extra);
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
        qemu: tests::start_blocking(l),
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
    let o = qmp()
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

/// Waits until the session recording `file` (`qmp --record`) has a line
/// `pred` accepts: how a test knows a `qmp` it started has reached a
/// point (negotiated, sent a command) instead of sleeping.
fn wait_recorded(file: &Path, what: &str, pred: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // Whole lines only: the last may be half written.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        if whole
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| pred(&l))
        {
            return;
        }
        assert!(Instant::now() < deadline, "never recorded: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A recording's line: the reply to `qmp_capabilities` (the client is
/// connected; a `qmp events` subscribes before reading anything more).
fn negotiated(l: &Value) -> bool {
    l["dir"] == "recv" && l["msg"]["return"].is_object() && l["msg"].get("id").is_none()
}

/// A recording's line: command `name` sent.
fn sent(name: &'static str) -> impl Fn(&Value) -> bool {
    move |l| l["dir"] == "send" && l["msg"]["execute"] == name
}
