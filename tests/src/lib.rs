//! Test support shared by the cross-crate tests: start a private QEMU
//! process on a socket in its own temporary directory (killed when
//! dropped), and a minimal synchronous QMP exchange for tests that must
//! not depend on the crates under test.

#[rustfmt::skip]
#[deny(warnings)]
pub mod qapi_test;

#[rustfmt::skip]
pub mod live_queries;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A QEMU process this test started; killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    /// The QMP socket.
    pub socket: PathBuf,
    _dir: TempDir,
}

impl Qemu {
    /// Starts `qemu-storage-daemon` with a QMP monitor on a private socket
    /// and waits (up to 10 s) until the socket accepts connections.
    pub fn storage_daemon() -> std::io::Result<Qemu> {
        let dir = TempDir::new("qsd")?;
        let socket = dir.path().join("qmp.sock");
        let child = Command::new("qemu-storage-daemon")
            .arg("--chardev")
            .arg(format!(
                "socket,id=m,path={},server=on,wait=off",
                socket.display()
            ))
            .arg("--monitor")
            .arg("chardev=m")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Qemu::started(child, socket, dir)
    }

    /// Starts `qemu-system-x86_64` (no guest: `-nodefaults -display none
    /// -machine pc,accel=tcg -m 128`) with `extra` arguments and a QMP
    /// monitor on a private socket.
    pub fn system(extra: &[&str]) -> std::io::Result<Qemu> {
        let dir = TempDir::new("qemu")?;
        let socket = dir.path().join("qmp.sock");
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-nodefaults",
                "-display",
                "none",
                "-machine",
                "pc,accel=tcg",
                "-m",
                "128",
            ])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Qemu::started(child, socket, dir)
    }

    fn started(child: Child, socket: PathBuf, dir: TempDir) -> std::io::Result<Qemu> {
        let mut q = Qemu {
            child,
            socket,
            _dir: dir,
        };
        q.wait_for_socket()?;
        Ok(q)
    }

    /// The temporary directory the process runs in (for images, sockets).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    fn wait_for_socket(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(std::io::Error::other(format!(
                    "QEMU exited early: {status}"
                )));
            }
            if UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "QEMU's QMP socket did not come up within 10 s",
        ))
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
