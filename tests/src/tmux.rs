//! A terminal for tests that drive a program as a person would: a tmux
//! server of the test's own (its socket in the test's directory), keys
//! sent with `send-keys`, the screen read with `capture-pane`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One tmux server with one session, `qmp`; killed when dropped.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// A session `width`×`height` running the shell command `line`,
    /// with its server's socket in `dir`.
    pub fn start(dir: &Path, width: u16, height: u16, line: &str) -> Tmux {
        let t = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let (w, h) = (width.to_string(), height.to_string());
        t.cmd(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "qmp",
            "-x",
            &w,
            "-y",
            &h,
            line,
        ]);
        t
    }

    /// `tmux ARGS` on this server; its output.
    pub fn cmd(&self, args: &[&str]) -> String {
        let o = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (cargo xtask test installs it)");
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Sends keys (tmux's names: `Enter`, `Escape`, `Down`, `C-u`, or text).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "qmp"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// The pane with its scrollback.
    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "qmp", "-S", "-500"])
    }

    /// The pane as it shows now (no scrollback).
    pub fn visible(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "qmp"])
    }

    /// Waits until the screen (with its scrollback) shows `what` (60 s
    /// at most: a loaded machine is slow, and the wait ends as soon as it
    /// shows).
    pub fn wait_for(&self, what: &str) -> String {
        self.wait(&format!("{what:?}"), true, |s| s.contains(what))
    }

    /// Waits until the visible screen satisfies `ok` (`what` names it).
    pub fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.wait(what, false, ok)
    }

    fn wait(&self, what: &str, scrollback: bool, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = if scrollback {
                self.screen()
            } else {
                self.visible()
            };
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}
