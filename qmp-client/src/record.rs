//! Recording a session ([`crate::Options::record`]): every message sent
//! and received, as JSON lines, for `testing::MockQemu::replay` or a
//! bug report.
//!
//! Each line is one message: `{"t": 0.001234, "dir": "send", "msg":
//! {...}}`, where `t` is seconds since the connection opened (monotonic),
//! `dir` is `send` (client to QEMU) or `recv` (QEMU to client), and `msg`
//! the message as JSON; a line that was not JSON is kept as text under
//! `raw` instead of `msg`. The greeting is the first `recv`.

use std::io::Write;
use std::path::Path;
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

/// Writes the lines of a recording; shared by the read and write halves.
pub(crate) struct Tap {
    inner: Mutex<TapInner>,
}

struct TapInner {
    file: std::io::BufWriter<std::fs::File>,
    start: Instant,
    /// Bytes of an unfinished line, per direction.
    partial: [Vec<u8>; 2],
    /// The first write error; recording stops there (the session goes
    /// on).
    failed: bool,
}

impl Tap {
    /// Creates (or truncates) the recording at `path`.
    pub(crate) fn create(path: &Path) -> std::io::Result<Arc<Tap>> {
        let file = std::fs::File::create(path)?;
        Ok(Arc::new(Tap {
            inner: Mutex::new(TapInner {
                file: std::io::BufWriter::new(file),
                start: Instant::now(),
                partial: [Vec::new(), Vec::new()],
                failed: false,
            }),
        }))
    }

    /// Notes `bytes` that went `dir`; each line they complete is written.
    pub(crate) fn bytes(&self, dir: Dir, bytes: &[u8]) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *g;
        if inner.failed {
            return;
        }
        let slot = dir as usize;
        let mut rest = bytes;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            inner.partial[slot].extend_from_slice(&rest[..nl]);
            let line = std::mem::take(&mut inner.partial[slot]);
            rest = &rest[nl + 1..];
            let t = inner.start.elapsed().as_secs_f64();
            if let Err(e) = write_line(&mut inner.file, t, dir, &line) {
                tracing::warn!(error = %e, "writing the session recording failed; recording stops");
                inner.failed = true;
                return;
            }
        }
        inner.partial[slot].extend_from_slice(rest);
    }
}

/// One line of the recording, flushed (a crash keeps what came before).
fn write_line(out: &mut impl Write, t: f64, dir: Dir, line: &[u8]) -> std::io::Result<()> {
    // QEMU's guest agent prefixes synchronised replies with 0xFF.
    let text = line.strip_prefix(b"\xff").unwrap_or(line);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
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
    serde_json::to_writer(&mut *out, &entry)?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_writes_and_directions_kept_apart() {
        let dir = std::env::temp_dir().join(format!("qmp-record-{}", std::process::id()));
        let tap = Tap::create(&dir).expect("create");
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
}
