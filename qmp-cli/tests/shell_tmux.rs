//! `qmp shell` driven as a person drives it: in a terminal (tmux), keys
//! sent with `send-keys`, the screen read with `capture-pane`, against a
//! real qemu-system-x86_64.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use qmp_client::launch::Flavor;
use tests::tmux::Tmux;
use tests::{TempDir, Which, launcher};

const QMP: &str = env!("CARGO_BIN_EXE_qmp");

/// What a test of the shell adds to the terminal.
trait Shell {
    fn wait_prompt(&self);
    fn line(&self, line: &str);
}

impl Shell for Tmux {
    /// Waits until the shell waits for input: the screen's last line is
    /// an empty prompt. Keys sent before it would reach a terminal not
    /// yet in the prompt's mode.
    fn wait_prompt(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.visible();
            let last = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            if last.trim_end() == "(QEMU)" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the shell never waited for input:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// At the prompt: types `line` and Enter.
    fn line(&self, line: &str) {
        self.wait_prompt();
        self.keys(&[line, "Enter"]);
    }
}

fn start_shell(dir: &Path, socket: &Path) -> Tmux {
    // The schema cache in the test's directory, never the user's.
    let line = format!(
        "QMP_CACHE_DIR={} {QMP} --socket {} shell --history {}; echo EXITED rc=$?; sleep 60",
        dir.join("cache").display(),
        socket.display(),
        dir.join("history").display()
    );
    Tmux::start(dir, 160, 50, &line)
}

#[test]
fn shell_completes_shows_events_and_quits() {
    let dir = TempDir::new("qmp-shell-tmux").expect("temp dir");
    let q = launcher(Which::Installed, Flavor::System)
        .guestless()
        .start_timeout(Duration::from_secs(60))
        .start_blocking()
        .expect("QEMU starts");
    let t = start_shell(dir.path(), q.socket());
    t.wait_for("Connected to QEMU 10.0.2");
    t.wait_prompt();

    // Tab twice lists the command's argument names with their types.
    t.keys(&["block-job-set-speed ", "Tab", "Tab"]);
    let s = t.wait_for("speed=int");
    assert!(s.contains("device=str"), "{s}");
    // Completing a prefix fills in the argument's name.
    // The screen shows the hint `device=<str>` already: prove the
    // completion by sending what it made.
    t.keys(&[
        "C-u",
        "block-job-set-speed dev",
        "Tab",
        "j0 sp",
        "Tab",
        "5",
        "Enter",
    ]);
    t.wait_for("Block job 'j0' not found");
    t.wait_prompt();
    // An enum argument's values.
    t.keys(&["C-u", "blockdev-backup sync=", "Tab", "Tab"]);
    let s = t.wait_for("incremental");
    assert!(s.contains("bitmap") && s.contains("full"), "{s}");
    // Nested arguments: below `file.`, the members its `driver` selects.
    // Sent, QEMU's answer proves what the completion made.
    t.keys(&[
        "C-u",
        "blockdev-add driver=raw node-name=r0 file.driver=file file.fil",
        "Tab",
        "/nonexistent/x.img",
        "Enter",
    ]);
    t.wait_for("Could not open '/nonexistent/x.img'");
    t.wait_prompt();
    // Commands complete too.
    t.keys(&["C-u", "query-named-block-no", "Tab"]);
    t.wait_for("(QEMU) query-named-block-nodes");
    t.keys(&["C-u"]);
    t.wait_prompt();

    // A block job; its events appear between prompts.
    for line in [
        "blockdev-add driver=null-co node-name=src size=67108864",
        "blockdev-add driver=null-co node-name=dst size=67108864",
        "blockdev-backup job-id=job0 device=src target=dst sync=full",
    ] {
        t.line(line);
    }
    t.wait_for("JOB_STATUS_CHANGE {\"id\":\"job0\",\"status\":\"concluded\"}");
    let s =
        t.wait_for("BLOCK_JOB_COMPLETED {\"device\":\"job0\",\"len\":67108864,\"offset\":67108864");
    assert!(
        s.contains("JOB_STATUS_CHANGE {\"id\":\"job0\",\"status\":\"running\"}"),
        "{s}"
    );

    // Bad input is refused with the member's path, and the shell goes on.
    t.wait_prompt();
    t.keys(&["block-job-set-speed device=job0 speed=fast", "Enter"]);
    t.wait_for("member `speed`: invalid type: string \"fast\", expected i64");
    t.wait_prompt();
    t.keys(&["query-stauts", "Enter"]);
    t.wait_for("did you mean one of: query-stats, query-status");
    t.wait_prompt();

    // help from the schema's docs; HMP passthrough.
    t.keys(&["help device_del", "Enter"]);
    t.wait_for("Remove a device from a guest");
    t.wait_prompt();
    t.keys(&["hmp info version", "Enter"]);
    t.wait_for("10.0.2Debian");
    t.wait_prompt();

    // `quit` leaves the shell cleanly; QEMU keeps running.
    t.keys(&["quit", "Enter"]);
    t.wait_for("EXITED rc=0");
    let history = std::fs::read_to_string(dir.path().join("history")).expect("history saved");
    assert!(history.contains("blockdev-backup job-id=job0"), "{history}");
    let c = tests::RawQmp::connect(q.socket());
    assert!(c.is_ok(), "QEMU still serves QMP after the shell left");
}

/// QEMU 11.1.3, newer than the bindings: completion follows its own
/// schema (an argument only 11.1 has), and the shell sends it.
#[test]
fn shell_completes_what_a_newer_qemu_added() {
    let dir = TempDir::new("qmp-shell-11").expect("temp dir");
    let q = launcher(Which::Qemu111, Flavor::System)
        .guestless()
        .start_timeout(Duration::from_secs(60))
        .start_blocking()
        .expect("QEMU starts");
    let t = start_shell(dir.path(), q.socket());
    t.wait_for("Connected to QEMU 11.1.3");
    t.wait_prompt();
    t.keys(&["object-add qom-type=iothread id=io1 poll-w", "Tab"]);
    t.wait_for("poll-weight=");
    t.keys(&["3", "Enter"]);
    t.wait_for("{}");
    t.line("query-iothreads");
    t.wait_for("\"id\": \"io1\"");
    t.wait_prompt();
    // Its schema was cached for the next run.
    let cached = std::fs::read_dir(dir.path().join("cache"))
        .expect("cache dir")
        .count();
    assert_eq!(cached, 1);
    t.keys(&["quit", "Enter"]);
    t.wait_for("EXITED rc=0");
}

#[test]
fn shell_reads_commands_from_a_pipe() {
    let q = launcher(Which::Installed, Flavor::StorageDaemon)
        .start_timeout(Duration::from_secs(60))
        .start_blocking()
        .expect("QEMU starts");
    let cache = TempDir::new("qmp-shell-cache").expect("temp dir");
    let mut child = Command::new(QMP)
        .env("QMP_CACHE_DIR", cache.path())
        .arg("--socket")
        .arg(q.socket())
        .args(["shell", "--no-events", "--history", "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(
            stdin,
            "query-block-jobs\nblock-job-cancel device=x\nquery-named-block-nodes flat=true"
        )
        .expect("write");
    }
    let o = child.wait_with_output().expect("ends");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(out.matches("[]").count(), 2, "{out}");
    assert!(err.contains("DeviceNotActive"), "{err}");
}

#[test]
fn shell_ends_when_qemu_dies() {
    let dir = TempDir::new("qmp-shell-dies").expect("temp dir");
    let q = launcher(Which::Installed, Flavor::StorageDaemon)
        .start_timeout(Duration::from_secs(60))
        .start_blocking()
        .expect("QEMU starts");
    let t = start_shell(dir.path(), q.socket());
    t.wait_for("Connected to QEMU 10.0.2");
    // QEMU goes away under the open shell: it says so between prompts,
    // and the next command ends the shell with exit code 3.
    drop(q);
    t.wait_for("QEMU closed the connection");
    t.keys(&["query-block-jobs", "Enter"]);
    t.wait_for("EXITED rc=3");
}
