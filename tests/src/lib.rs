//! Test support shared by the cross-crate tests: a private temporary
//! directory, and a minimal synchronous QMP exchange for tests that must
//! not depend on the client under test. QEMU itself is started with
//! `qmp_client::launch`, as users do.

/// Code `cargo xtask regen` writes (not formatted by rustfmt: the
/// generator formats it).
#[rustfmt::skip]
pub mod generated {
    /// From QEMU's `qapi-schema-test.json`, which exercises every
    /// construct; compiled under `deny(warnings)`.
    #[deny(warnings)]
    pub mod qapi_test;

    /// The evolution fixtures' bindings (`tests/fixtures/evolution`): each
    /// case's `n.json` alone, and merged with `n1.json`; compiled under
    /// `deny(warnings)`.
    #[deny(warnings)]
    pub mod evolution;
}

pub mod evolution;

pub use generated::qapi_test;

pub mod live_queries;
pub mod tmux;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which QEMU a live test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The installed one (10.0.2, from bookworm-backports).
    Installed,
    /// Debian 12's 7.2, unpacked into `target/qemu-7.2` by `cargo xtask
    /// test`.
    Qemu72,
    /// Debian 13's 11.1.3 (trixie-backports), newer than the bindings,
    /// run in the Debian 13 root `cargo xtask test` makes in
    /// `target/debian13`, through its wrappers in `target/qemu-11.1/bin`.
    Qemu111,
}

impl Which {
    /// Every QEMU the live tests run, installed first.
    pub const ALL: [Which; 3] = [Which::Installed, Which::Qemu72, Which::Qemu111];

    /// The release series (major, minor) it is.
    pub fn series(self) -> (i64, i64) {
        match self {
            Which::Installed => (10, 0),
            Which::Qemu72 => (7, 2),
            Which::Qemu111 => (11, 1),
        }
    }
}

/// The folder `cargo xtask test` prepares at `dir` (below the workspace
/// root), once `program` is there in it; panics, saying how to get it,
/// when it is not (`what`: "unpacks QEMU 7.2").
fn prepared(dir: &str, program: &str, what: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    assert!(
        root.join(program).exists(),
        "{} is missing: run `cargo xtask test` (README's test command), which {what}",
        root.join(program).display()
    );
    root
}

/// Where `cargo xtask test` writes QEMU 11.1.3's wrappers.
pub fn qemu111_bin() -> PathBuf {
    prepared(
        "target/qemu-11.1/bin",
        "qemu-system-x86_64",
        "makes QEMU 11.1.3's Debian 13 root and wrappers",
    )
}

/// Where `cargo xtask test` unpacks QEMU 7.2.
pub fn qemu72_root() -> PathBuf {
    prepared(
        "target/qemu-7.2",
        "usr/bin/qemu-system-x86_64",
        "unpacks QEMU 7.2",
    )
}

/// A launcher for `which` QEMU's `flavor` binary
/// (`qemu-storage-daemon` or `qemu-system-x86_64`).
pub fn launcher(which: Which, flavor: qmp_client::launch::Flavor) -> qmp_client::launch::Launcher {
    use qmp_client::launch::{Flavor, Launcher};
    match (which, flavor) {
        (Which::Installed, Flavor::StorageDaemon) => Launcher::storage_daemon(),
        (Which::Installed, Flavor::GuestAgent) => Launcher::guest_agent(),
        (Which::Installed, _) => Launcher::system_x86_64(),
        (Which::Qemu72, f) => Launcher::unpacked(qemu72_root(), f),
        (Which::Qemu111, Flavor::StorageDaemon) => Launcher::new(
            qemu111_bin().join("qemu-storage-daemon"),
            Flavor::StorageDaemon,
        ),
        // The Debian 13 root has no guest agent: the host's serves.
        (Which::Qemu111, Flavor::GuestAgent) => Launcher::guest_agent(),
        (Which::Qemu111, f) => {
            Launcher::new(qemu111_bin().join("qemu-system-x86_64"), f).args(["-display", "none"])
        }
    }
}

/// The QEMU `r` started, or `None` (said why) when it is worth one more
/// try: it exited or stayed silent while starting, which happens rarely
/// with many QEMUs starting at once on two cores (a daemon killed before
/// its socket appeared, a socket that never greeted).
fn first_try(
    r: Result<qmp_client::launch::Qemu, qmp_client::launch::LaunchError>,
) -> Option<qmp_client::launch::Qemu> {
    use qmp_client::launch::LaunchError;
    match r {
        Ok(q) => Some(q),
        Err(e @ (LaunchError::Exited { .. } | LaunchError::Timeout { .. })) => {
            eprintln!("QEMU did not start ({e}); trying once more");
            None
        }
        Err(e) => panic!("QEMU starts: {e}"),
    }
}

/// Starts `l`'s QEMU, once more if the first did not come up.
pub async fn start(l: qmp_client::launch::Launcher) -> qmp_client::launch::Qemu {
    match first_try(l.clone().start().await) {
        Some(q) => q,
        None => l.start().await.expect("QEMU starts"),
    }
}

/// [`start`] without a runtime.
pub fn start_blocking(l: qmp_client::launch::Launcher) -> qmp_client::launch::Qemu {
    match first_try(l.clone().start_blocking()) {
        Some(q) => q,
        None => l.start_blocking().expect("QEMU starts"),
    }
}

/// A qemu-storage-daemon a test started with arguments of its own (on a
/// socket path it chose, with many monitors, ...), killed by its PID when
/// dropped. The program: `QMP_QEMU_STORAGE_DAEMON`, else `PATH`'s.
pub struct Daemon(std::process::Child);

impl Daemon {
    /// Starts the daemon with `args`, its output discarded, and waits
    /// (at most 30 s) for the file `ready` (its last socket) to appear.
    pub fn start(args: &[String], ready: &Path) -> Daemon {
        let program = std::env::var("QMP_QEMU_STORAGE_DAEMON")
            .unwrap_or_else(|_| "qemu-storage-daemon".into());
        let child = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("qemu-storage-daemon runs");
        let d = Daemon(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !ready.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never appeared",
                ready.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        d
    }

    /// The daemon with `n` QMP monitors (`m0.sock`, `m1.sock`, ... in
    /// `dir`) after `args`; their paths.
    pub fn with_monitors(dir: &Path, n: usize, args: &[String]) -> (Daemon, Vec<PathBuf>) {
        let mut args = args.to_vec();
        let mut sockets = Vec::new();
        for i in 0..n {
            let p = dir.join(format!("m{i}.sock"));
            args.push("--chardev".into());
            args.push(format!(
                "socket,id=m{i},path={},server=on,wait=off",
                p.display()
            ));
            args.push("--monitor".into());
            args.push(format!("chardev=m{i}"));
            sockets.push(p);
        }
        let last = sockets.last().expect("n > 0").clone();
        (Daemon::start(&args, &last), sockets)
    }

    /// The daemon with one QMP monitor on `socket`.
    pub fn on(socket: &Path) -> Daemon {
        let args = [
            "--chardev".to_string(),
            format!("socket,id=m,path={},server=on,wait=off", socket.display()),
            "--monitor".to_string(),
            "chardev=m".to_string(),
        ];
        Daemon::start(&args, socket)
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system's temp dir, never one
    /// another test of this process (or another process) has: the name
    /// holds the process id and a counter, and an existing directory is
    /// never reused.
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("qmp-rs-{tag}-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                // Left by an earlier process with the same id: take the next.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
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
    /// Connects, reads the greeting, sends `qmp_capabilities`. A
    /// connection closed before its greeting is dialled again (up to three
    /// times, as the client does: QEMU 10.0.2's storage daemon sometimes
    /// closes a connection that follows another's at once).
    pub fn connect(socket: &Path) -> std::io::Result<(RawQmp, serde_json::Value)> {
        let mut tries = 0;
        loop {
            match Self::connect_once(socket) {
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && tries < 3 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20 << tries));
                }
                r => return r,
            }
        }
    }

    fn connect_once(socket: &Path) -> std::io::Result<(RawQmp, serde_json::Value)> {
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

/// Spawns `f` on the current runtime and returns once it has been polled
/// once: a call it makes has been handed to its connection (queued, or
/// written, in the order of these spawns), so a test knows the call is
/// pending without sleeping.
pub async fn spawn_polled<F>(f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut f = std::pin::pin!(f);
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx))).await;
        let _ = tx.send(());
        match first {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => f.await,
        }
    });
    let _ = rx.await;
    task
}

/// The runtime's live tasks once they are back to `before` (a task
/// ended gets its last poll when the runtime comes to it), or their
/// count after 10 s: the caller asserts on it.
pub async fn tasks_settle(metrics: &tokio::runtime::RuntimeMetrics, before: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() > before && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    metrics.num_alive_tasks()
}

/// The boot sector of [`busy_disk`]: through the BIOS (`int 13h`), read
/// sector 2 into 0:8000h, write it back, forever. 24 bytes of code, then
/// the boot signature.
const BUSY_BOOT_CODE: [u8; 24] = [
    0x31, 0xc0, // xor ax, ax
    0x8e, 0xc0, // mov es, ax
    0xbb, 0x00, 0x80, // mov bx, 0x8000
    // loop:
    0xb8, 0x01, 0x02, // mov ax, 0x0201 (read one sector)
    0xb9, 0x02, 0x00, // mov cx, 0x0002 (cylinder 0, sector 2)
    0xb6, 0x00, // mov dh, 0 (head 0; dl: the boot drive)
    0xcd, 0x13, // int 0x13
    0xb8, 0x01, 0x03, // mov ax, 0x0301 (write one sector)
    0xcd, 0x13, // int 0x13
    0xeb, 0xef, // jmp loop
];

/// A 1 MiB raw disk image at `path` whose boot sector keeps the disk
/// busy: a QEMU that boots from it (as its only bootable disk) reads and
/// writes it through the firmware in a loop, so the device's
/// `query-blockstats` counters grow without a guest OS.
pub fn busy_disk(path: &Path) -> std::io::Result<()> {
    let mut image = vec![0u8; 1 << 20];
    image[..BUSY_BOOT_CODE.len()].copy_from_slice(&BUSY_BOOT_CODE);
    image[510] = 0x55;
    image[511] = 0xaa;
    std::fs::write(path, image)
}
