//! Starting a private QEMU: `qemu-system-*` or `qemu-storage-daemon`
//! with its QMP monitor on a socket in a temporary directory of its own
//! (feature `launch`, on by default).
//!
//! ```no_run
//! # async fn demo() -> qmp_client::Result<()> {
//! use qmp_client::{launch::Launcher, Options};
//! let qemu = Launcher::storage_daemon().start().await?;
//! let client = qemu.connect(Options::default()).await?;
//! let v = client.execute(qmp_types::QueryVersion::new()).await?;
//! println!("QEMU {}.{}", v.qemu.major, v.qemu.minor);
//! qemu.shutdown(); // or just drop it: killed by its PID, directory removed
//! # Ok(()) }
//! ```
//!
//! The socket is polled (1 ms, doubling to 20 ms) until it accepts a
//! connection and QEMU's main loop answers on it, with a deadline; that
//! probe is then closed, so the socket is free for any client. QEMU's stderr and stdout are kept (the last 64
//! KiB of each); stderr is part of the error when QEMU exits before its socket is up.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::Result;
use crate::options::Options;

/// How long one readiness probe waits for QEMU's greeting and its reply
/// to `qmp_capabilities` before it is dropped and QEMU dialled again.
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// How long a QEMU that exited at start gets for its stderr to be read to
/// the end.
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// How much of QEMU's stderr (and of its stdout) is kept.
const OUTPUT_KEEP: usize = 64 << 10;

pub use crate::error::LaunchError;

/// How the program takes its QMP monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flavor {
    /// `qemu-system-*`: `-qmp unix:PATH,server=on,wait=off`.
    System,
    /// `qemu-storage-daemon`: `--chardev socket,... --monitor chardev=...`.
    StorageDaemon,
    /// `qemu-ga`, the guest agent, run on this machine: `-m unix-listen
    /// -p PATH`, its state directory and pid file in the private
    /// directory. Speak to it with [`crate::agent::GuestAgent`].
    GuestAgent,
}

/// Guest agent commands that would change the machine the agent runs on
/// (here: this host): [`Launcher::guest_agent`] disables them (`-b`).
pub const HOST_CHANGING_AGENT_COMMANDS: &[&str] = &[
    "guest-shutdown",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
    "guest-fsfreeze-freeze",
    "guest-fsfreeze-freeze-list",
    "guest-fstrim",
    "guest-set-time",
    "guest-set-user-password",
    "guest-set-vcpus",
    "guest-set-memory-blocks",
    "guest-ssh-add-authorized-keys",
    "guest-ssh-remove-authorized-keys",
    "guest-network-get-route",
];

/// Builds a QEMU command line with a private QMP socket.
#[derive(Debug, Clone)]
pub struct Launcher {
    program: PathBuf,
    flavor: Flavor,
    args: Vec<OsString>,
    start_timeout: Duration,
    /// The variable that names another binary, and the Debian package.
    hint: (Option<&'static str>, Option<&'static str>),
}

impl Launcher {
    /// `qemu-storage-daemon` (Debian/Ubuntu package `qemu-utils`), or the
    /// binary `QMP_QEMU_STORAGE_DAEMON` names.
    pub fn storage_daemon() -> Launcher {
        Launcher::from_env(
            "QMP_QEMU_STORAGE_DAEMON",
            "qemu-storage-daemon",
            "qemu-utils",
            Flavor::StorageDaemon,
        )
    }

    /// `qemu-system-x86_64` (Debian/Ubuntu package `qemu-system-x86`), or
    /// the binary `QMP_QEMU_SYSTEM_X86_64` names, with `-display none`.
    /// No guest is needed for QMP: see [`Launcher::guestless`].
    pub fn system_x86_64() -> Launcher {
        Launcher::from_env(
            "QMP_QEMU_SYSTEM_X86_64",
            "qemu-system-x86_64",
            "qemu-system-x86",
            Flavor::System,
        )
        .args(["-display", "none"])
    }

    /// `qemu-ga` (Debian/Ubuntu package `qemu-guest-agent`), or the binary
    /// `QMP_QEMU_GA` names, listening on the private socket. It runs on
    /// this machine, so the commands in [`HOST_CHANGING_AGENT_COMMANDS`]
    /// are disabled; other commands (`guest-exec`, `guest-file-*`) act on
    /// this machine as the user running it.
    pub fn guest_agent() -> Launcher {
        Launcher::from_env(
            "QMP_QEMU_GA",
            "qemu-ga",
            "qemu-guest-agent",
            Flavor::GuestAgent,
        )
    }

    /// A QEMU unpacked from Debian packages (`dpkg -x PKG.deb root`)
    /// rather than installed, to run another version beside the
    /// installed one: `root/usr/bin/qemu-storage-daemon`, or
    /// `root/usr/bin/qemu-system-x86_64` with `-display none` and its
    /// firmware from `-L root/usr/share/qemu -L /usr/share/seabios`.
    /// (`cargo xtask test` unpacks Debian 12's QEMU 7.2 this way.)
    pub fn unpacked(root: impl AsRef<Path>, flavor: Flavor) -> Launcher {
        let root = root.as_ref();
        match flavor {
            Flavor::System => Launcher::new(root.join("usr/bin/qemu-system-x86_64"), flavor)
                .arg("-L")
                .arg(root.join("usr/share/qemu"))
                .args(["-L", "/usr/share/seabios", "-display", "none"]),
            Flavor::StorageDaemon => {
                Launcher::new(root.join("usr/bin/qemu-storage-daemon"), flavor)
            }
            Flavor::GuestAgent => Launcher::new(root.join("usr/bin/qemu-ga"), flavor),
        }
    }

    /// Any binary: `flavor` says how it takes its QMP monitor.
    pub fn new(program: impl Into<PathBuf>, flavor: Flavor) -> Launcher {
        Launcher {
            program: program.into(),
            flavor,
            args: Vec::new(),
            start_timeout: Duration::from_secs(10),
            hint: (None, None),
        }
    }

    fn from_env(
        var: &'static str,
        default: &str,
        package: &'static str,
        flavor: Flavor,
    ) -> Launcher {
        let program = std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(default), PathBuf::from);
        Launcher {
            hint: (Some(var), Some(package)),
            ..Launcher::new(program, flavor)
        }
    }

    /// A small machine with no guest and no default devices
    /// (`-nodefaults -machine accel=tcg -m 128`), for `qemu-system-*`:
    /// QMP, devices, block jobs and events all work without a guest OS.
    #[must_use]
    pub fn guestless(self) -> Self {
        self.args(["-nodefaults", "-machine", "accel=tcg", "-m", "128"])
    }

    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// How long to wait for the socket (10 s by default).
    #[must_use]
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }

    /// The program that will run.
    pub fn program(&self) -> &Path {
        &self.program
    }

    fn not_found(&self) -> LaunchError {
        let program = self.program.display().to_string();
        let hint = match self.hint {
            (Some(var), Some(pkg)) => format!(
                "install it (Debian/Ubuntu: `apt-get install {pkg}`) or set {var} to the binary to use"
            ),
            _ => "check the path".to_string(),
        };
        LaunchError::NotFound { program, hint }
    }

    /// [`Launcher::start`] for a program without a tokio runtime (it
    /// makes a small one for the wait).
    pub fn start_blocking(self) -> std::result::Result<Qemu, LaunchError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LaunchError::Runtime)?;
        rt.block_on(self.start())
    }

    /// Starts QEMU and waits until its QMP socket accepts a connection.
    pub async fn start(self) -> std::result::Result<Qemu, LaunchError> {
        let dir = tempfile::Builder::new()
            .prefix("qmp-")
            .tempdir()
            .map_err(LaunchError::TempDir)?;
        let socket = dir.path().join("qmp.sock");
        let mut cmd = Command::new(&self.program);
        match self.flavor {
            Flavor::System => {
                cmd.arg("-qmp")
                    .arg(format!("unix:{},server=on,wait=off", socket.display()));
            }
            Flavor::GuestAgent => {
                cmd.args(["-m", "unix-listen", "-p"])
                    .arg(&socket)
                    .arg("-t")
                    .arg(dir.path())
                    .arg("-f")
                    .arg(dir.path().join("qemu-ga.pid"))
                    .arg("-b")
                    .arg(HOST_CHANGING_AGENT_COMMANDS.join(","));
            }
            Flavor::StorageDaemon => {
                cmd.arg("--chardev")
                    .arg(format!(
                        "socket,id=qmp-rs-monitor,path={},server=on,wait=off",
                        socket.display()
                    ))
                    .arg("--monitor")
                    .arg("chardev=qmp-rs-monitor");
            }
        }
        // Its own process group, so that whatever QEMU starts ends with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(&self.args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let program = self.program.display().to_string();
        let mut child = cmd.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                self.not_found()
            } else {
                LaunchError::Spawn {
                    program: program.clone(),
                    source,
                }
            }
        })?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let reader = child
            .stderr
            .take()
            .map(|pipe| keep_tail(pipe, stderr.clone()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        // Its reader ends with the pipe; nothing waits for it.
        let _ = child
            .stdout
            .take()
            .map(|pipe| keep_tail(pipe, stdout.clone()));
        let mut qemu = Qemu {
            child,
            socket,
            program,
            stderr,
            stderr_reader: reader,
            stdout,
            dir,
            group_killed: false,
        };
        let deadline = Instant::now() + self.start_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Ok(Some(status)) = qemu.child.try_wait() {
                // What it started may still hold its stderr open: end them,
                // then give the reader a moment, never the runtime thread.
                qemu.kill_group();
                qemu.stderr_settled(STDERR_GRACE).await;
                return Err(LaunchError::Exited {
                    program: qemu.program.clone(),
                    status,
                    stderr: qemu.stderr(),
                });
            }
            // Each probe gets a few seconds: one QEMU left without a
            // greeting (seen once under a full test run, a socket silent
            // for a minute) is dropped and dialled again, not waited on
            // until the deadline.
            let probe_deadline = deadline.min(Instant::now() + PROBE_WAIT);
            if let Ok(probe) = tokio::net::UnixStream::connect(&qemu.socket).await
                && ready(probe, self.flavor, probe_deadline).await
            {
                tracing::debug!(program = %qemu.program, pid = qemu.pid(), socket = %qemu.socket.display(), "QEMU started");
                return Ok(qemu);
            }
            if Instant::now() >= deadline {
                return Err(LaunchError::Timeout {
                    program: qemu.program.clone(),
                    after: self.start_timeout,
                    stderr: qemu.stderr(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// Whether a connection to the socket shows QEMU up. QEMU's monitor
/// greets from its I/O thread as soon as the socket exists, before every
/// option was taken (a bad `-device` still makes it exit), but answers
/// `qmp_capabilities` only from its main loop: that answer is the sign.
/// The guest agent, which doesn't greet, is up once it accepts.
async fn ready(probe: tokio::net::UnixStream, flavor: Flavor, deadline: Instant) -> bool {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    if flavor == Flavor::GuestAgent {
        return true;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let exchange = async {
        let (r, mut w) = probe.into_split();
        let mut r = tokio::io::BufReader::new(r);
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 || !line.contains("\"QMP\"") {
            return None;
        }
        w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
            .await
            .ok()?;
        loop {
            line.clear();
            if r.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            if line.contains("\"return\"") {
                return Some(());
            }
        }
    };
    matches!(tokio::time::timeout(left, exchange).await, Ok(Some(())))
}

/// A QEMU this process started. Dropping it kills QEMU by its PID,
/// reaps it and removes its temporary directory.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    socket: PathBuf,
    program: String,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    /// Whether its process group was sent SIGKILL already.
    group_killed: bool,
    dir: tempfile::TempDir,
}

impl Qemu {
    /// The QMP socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// QEMU's private directory (its working directory; a place for
    /// images and other sockets). Removed when QEMU is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What QEMU printed on stderr so far (the last 64 KiB).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// What QEMU printed on stdout so far (the last 64 KiB): output some
    /// HMP commands write there instead of answering (`qemu-io`'s, for
    /// one), and anything a `-serial stdio` or `-monitor stdio` prints.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Whether QEMU has exited, and how.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// A QMP client for it. (QEMU's monitors serve one client at a
    /// time: a second connection waits until the first is closed.)
    pub async fn connect(&self, opts: Options) -> Result<Client> {
        Client::connect_unix(&self.socket, opts).await
    }

    /// A guest agent client for it (a QEMU started with
    /// [`Launcher::guest_agent`]).
    pub async fn connect_agent(
        &self,
        opts: crate::agent::AgentOptions,
    ) -> Result<crate::agent::GuestAgent> {
        crate::agent::GuestAgent::connect_unix(&self.socket, opts).await
    }

    /// Kills QEMU (SIGKILL, by its PID), reaps it and removes its
    /// directory; returns how it ended.
    pub fn shutdown(mut self) -> std::io::Result<ExitStatus> {
        self.kill()
    }

    fn kill(&mut self) -> std::io::Result<ExitStatus> {
        self.kill_group();
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        self.child.kill()?;
        self.child.wait()
    }

    /// SIGKILL to QEMU's process group (QEMU leads it: whatever it started
    /// goes too), once.
    fn kill_group(&mut self) {
        if self.group_killed {
            return;
        }
        self.group_killed = true;
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // ESRCH: nothing left in the group.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Waits up to `grace` for the stderr reader to see the end of the
    /// pipe (without blocking the runtime), so the error holds all of it.
    async fn stderr_settled(&mut self, grace: Duration) {
        let until = Instant::now() + grace;
        while let Some(t) = &self.stderr_reader {
            if t.is_finished() {
                if let Some(t) = self.stderr_reader.take() {
                    let _ = t.join();
                }
                return;
            }
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A thread that reads `pipe` to its end, keeping the last
/// [`OUTPUT_KEEP`] bytes in `keep`.
fn keep_tail(
    mut pipe: impl Read + Send + 'static,
    keep: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut k = keep.lock().unwrap_or_else(|e| e.into_inner());
            k.extend_from_slice(&buf[..n]);
            if k.len() > OUTPUT_KEEP {
                let cut = k.len() - OUTPUT_KEEP;
                k.drain(..cut);
            }
        }
    })
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            tracing::warn!(pid = self.pid(), error = %e, "could not stop QEMU");
        }
    }
}

impl From<LaunchError> for std::io::Error {
    fn from(e: LaunchError) -> std::io::Error {
        std::io::Error::other(e)
    }
}
