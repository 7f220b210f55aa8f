//! Test support shared by the cross-crate tests: a private temporary
//! directory, and a minimal synchronous QMP exchange for tests that must
//! not depend on the client under test. QEMU itself is started with
//! `qmp_client::launch`, as users do.

#[rustfmt::skip]
#[deny(warnings)]
pub mod qapi_test;

#[rustfmt::skip]
pub mod live_queries;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A private temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system's temp dir.
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("qmp-rs-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bare synchronous QMP connection: greeting read and capabilities
/// negotiated on connect; events are skipped while waiting for a reply.
#[derive(Debug)]
pub struct RawQmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl RawQmp {
    /// Connects, reads the greeting, sends `qmp_capabilities`.
    pub fn connect(socket: &Path) -> std::io::Result<(RawQmp, serde_json::Value)> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let writer = stream.try_clone()?;
        let mut q = RawQmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = q.read()?;
        q.execute("qmp_capabilities", serde_json::json!({}))?;
        Ok((q, greeting))
    }

    fn read(&mut self) -> std::io::Result<serde_json::Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        serde_json::from_str(&line).map_err(std::io::Error::other)
    }

    /// Sends a command; returns the whole reply (`return` or `error`).
    pub fn execute(
        &mut self,
        name: &str,
        args: serde_json::Value,
    ) -> std::io::Result<serde_json::Value> {
        let cmd = serde_json::json!({"execute": name, "arguments": args});
        self.writer.write_all(format!("{cmd}\n").as_bytes())?;
        loop {
            let msg = self.read()?;
            if msg.get("event").is_none() {
                return Ok(msg);
            }
        }
    }
}
