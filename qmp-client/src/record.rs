//! Recording a session ([`crate::Options::record`]): every message sent
//! and received, as JSON lines, for `testing::MockQemu::replay` or a
//! bug report.
//!
//! Each line is one message: `{"t": 0.001234, "dir": "send", "msg":
//! {...}}`, where `t` is seconds since the connection opened (monotonic),
//! `dir` is `send` (client to QEMU) or `recv` (QEMU to client), and `msg`
//! the message as JSON; a line that was not JSON is kept as text under
//! `raw` instead of `msg`. The greeting is the first `recv`.
//!
//! A recording is bounded ([`crate::Options::record_limit`]): the line
//! that would take it past the limit is replaced by a last one, `{"t":
//! ..., "dir": "note", "note": "recording stopped: ..."}`, and nothing
//! more is written; the session goes on. That, or a write that failed,
//! is what [`crate::Client::recording`] reports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Send,
    Recv,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Send => "send",
            Dir::Recv => "recv",
        }
    }
}

/// Why a recording stopped before the session's end.
#[derive(Debug, Clone)]
pub(crate) enum Stopped {
    /// Writing failed: what the OS said.
    Failed(std::io::ErrorKind, String),
    /// The limit, in bytes, was reached.
    Full(u64),
}

/// Writes the lines of a recording; shared by the read and write halves.
pub(crate) struct Tap {
    path: PathBuf,
    inner: Mutex<TapInner>,
}

struct TapInner {
    file: std::fs::File,
    start: Instant,
    /// Bytes of an unfinished line, per direction.
    partial: [Vec<u8>; 2],
    /// Bytes written so far.
    written: u64,
    /// The most it may hold.
    limit: u64,
    /// Why recording stopped (the session goes on).
    stopped: Option<Stopped>,
}

/// Room kept under the limit for the last line.
const NOTE_ROOM: u64 = 200;

impl Tap {
    /// Creates (or truncates) the recording at `path`, to hold at most
    /// `limit` bytes.
    pub(crate) fn create(path: &Path, limit: u64) -> std::io::Result<Arc<Tap>> {
        let file = std::fs::File::create(path)?;
        Ok(Arc::new(Tap {
            path: path.to_path_buf(),
            inner: Mutex::new(TapInner {
                file,
                start: Instant::now(),
                partial: [Vec::new(), Vec::new()],
                written: 0,
                limit: limit.max(NOTE_ROOM * 2),
                stopped: None,
            }),
        }))
    }

    /// Where it is written.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Why recording stopped, if it did.
    pub(crate) fn stopped(&self) -> Option<Stopped> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stopped
            .clone()
    }

    /// Notes `bytes` that went `dir`; each line they complete is written.
    pub(crate) fn bytes(&self, dir: Dir, bytes: &[u8]) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *g;
        if inner.stopped.is_some() {
            return;
        }
        let slot = dir as usize;
        let mut rest = bytes;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            inner.partial[slot].extend_from_slice(&rest[..nl]);
            let line = std::mem::take(&mut inner.partial[slot]);
            rest = &rest[nl + 1..];
            let t = inner.start.elapsed().as_secs_f64();
            if let Err(e) = inner.write(t, dir, &line) {
                tracing::warn!(error = %e, "writing the session recording failed; recording stops");
                inner.stopped = Some(Stopped::Failed(e.kind(), e.to_string()));
            }
            if inner.stopped.is_some() {
                inner.partial = [Vec::new(), Vec::new()];
                return;
            }
        }
        // An unfinished line larger than the room left can't be written.
        if (inner.partial[slot].len() + rest.len()) as u64 > inner.limit - inner.written {
            inner.stop_full(inner.start.elapsed().as_secs_f64());
            return;
        }
        inner.partial[slot].extend_from_slice(rest);
    }
}

impl TapInner {
    /// One line, written whole with one write (a crash keeps what came
    /// before); past the limit, the last line instead.
    fn write(&mut self, t: f64, dir: Dir, line: &[u8]) -> std::io::Result<()> {
        let Some(text) = entry(t, dir, line)? else {
            return Ok(());
        };
        if self.written + text.len() as u64 + NOTE_ROOM > self.limit {
            self.stop_full(t);
            return Ok(());
        }
        self.file.write_all(&text)?;
        self.written += text.len() as u64;
        Ok(())
    }

    fn stop_full(&mut self, t: f64) {
        let note = serde_json::json!({
            "t": (t * 1e6).round() / 1e6,
            "dir": "note",
            "note": format!("recording stopped: the limit of {} bytes was reached", self.limit),
        });
        let _ = writeln!(self.file, "{note}");
        self.stopped = Some(Stopped::Full(self.limit));
        tracing::warn!(
            limit = self.limit,
            "the session recording is full; recording stops"
        );
    }
}

/// One line of the recording, as text: `None` for a blank line.
fn entry(t: f64, dir: Dir, line: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    // QEMU's guest agent prefixes synchronised replies with 0xFF.
    let text = line.strip_prefix(b"\xff").unwrap_or(line);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut entry = serde_json::Map::new();
    entry.insert("t".into(), Value::from((t * 1e6).round() / 1e6));
    entry.insert("dir".into(), Value::from(dir.name()));
    match serde_json::from_slice::<Value>(text) {
        Ok(msg) => entry.insert("msg".into(), msg),
        Err(_) => entry.insert(
            "raw".into(),
            Value::from(String::from_utf8_lossy(text).into_owned()),
        ),
    };
    let mut out = serde_json::to_vec(&entry)?;
    out.push(b'\n');
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_writes_and_directions_kept_apart() {
        let dir = std::env::temp_dir().join(format!("qmp-record-{}", std::process::id()));
        let tap = Tap::create(&dir, 1 << 20).expect("create");
        tap.bytes(Dir::Recv, b"{\"QMP\":{}}\n{\"ret");
        tap.bytes(Dir::Send, b"{\"execute\":\"stop\"}\n");
        tap.bytes(Dir::Recv, b"urn\":{}}\nnot json\n");
        drop(tap);
        let text = std::fs::read_to_string(&dir).expect("read");
        let _ = std::fs::remove_file(&dir);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0]["dir"], "recv");
        assert_eq!(lines[0]["msg"]["QMP"], serde_json::json!({}));
        assert_eq!(lines[1]["dir"], "send");
        assert_eq!(lines[1]["msg"]["execute"], "stop");
        assert_eq!(lines[2]["msg"]["return"], serde_json::json!({}));
        assert_eq!(lines[3]["raw"], "not json");
        assert!(lines.iter().all(|l| l["t"].as_f64().is_some()));
    }

    #[test]
    fn a_full_recording_ends_with_a_note_and_says_so() {
        let path = std::env::temp_dir().join(format!("qmp-record-full-{}", std::process::id()));
        let tap = Tap::create(&path, 4096).expect("create");
        for _ in 0..1000 {
            tap.bytes(
                Dir::Recv,
                b"{\"event\":\"STOP\",\"timestamp\":{\"seconds\":1,\"microseconds\":2}}\n",
            );
        }
        assert!(matches!(tap.stopped(), Some(Stopped::Full(4096))));
        let text = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert!(text.len() <= 4096, "{}", text.len());
        let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("json");
        assert_eq!(last["dir"], "note");
        assert!(
            last["note"]
                .as_str()
                .is_some_and(|n| n.contains("4096 bytes"))
        );
        // A line too long for the room left ends it too.
        let tap = Tap::create(&path, 4096).expect("create");
        tap.bytes(Dir::Recv, &[b'x'; 8192]);
        assert!(matches!(tap.stopped(), Some(Stopped::Full(_))));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_failed_write_is_kept() {
        let tap = Tap::create(Path::new("/dev/full"), 1 << 20).expect("open /dev/full");
        tap.bytes(Dir::Recv, b"{\"QMP\":{}}\n");
        assert!(matches!(
            tap.stopped(),
            Some(Stopped::Failed(std::io::ErrorKind::StorageFull, _))
        ));
    }
}
