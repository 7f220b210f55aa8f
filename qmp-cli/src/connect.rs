//! Where to connect: a Unix socket, a TCP address, or a private QEMU
//! started for the run (`--spawn`) through the client's launcher.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use qmp_client::launch::{Flavor, Launcher, Qemu};
use qmp_client::{Client, Options};

use crate::error::{CliError, Result};

/// The connection flags every subcommand that talks to QEMU takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// QEMU's QMP Unix socket (`-qmp unix:PATH,server=on,wait=off`).
    #[arg(short, long, value_name = "PATH", env = "QMP_SOCKET", global = true)]
    pub socket: Option<PathBuf>,
    /// QEMU's QMP TCP address (`-qmp tcp:HOST:PORT,server=on,wait=off`).
    #[arg(
        long,
        value_name = "HOST:PORT",
        global = true,
        conflicts_with = "socket"
    )]
    pub tcp: Option<String>,
    /// Start a private QEMU on a socket in a temporary directory for this
    /// run, and stop it at the end: `qemu-storage-daemon` (the default),
    /// `qemu-system-x86_64` (with no guest, `-nodefaults -m 128`), or a
    /// command line in one word (`--spawn='qemu-system-x86_64 -m 256'`;
    /// a value needs the `=`).
    #[arg(
        long,
        value_name = "PROGRAM [ARGS]",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "qemu-storage-daemon",
        global = true,
        conflicts_with_all = ["socket", "tcp"]
    )]
    pub spawn: Option<String>,
    /// Seconds to wait for the connection and the QMP greeting.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, global = true)]
    pub connect_timeout: f64,
    /// Record the session to FILE: every message sent and received, as
    /// JSON lines (`{"t":..,"dir":"send"|"recv","msg":{..}}`), which
    /// `qmp_client::testing::MockQemu::replay` plays back in tests.
    #[arg(long, global = true, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,
    /// The most the recording may hold, in bytes; past it recording
    /// stops (with a last line, and a warning at the end of the run).
    #[arg(long, global = true, value_name = "BYTES", default_value_t = 64 << 20)]
    pub record_limit: u64,
}

/// A connection, and the private QEMU behind it when `--spawn` started
/// one (stopped when this is dropped).
pub struct Session {
    /// The client.
    pub client: Client,
    /// Stops the QEMU `--spawn` started, when dropped.
    pub spawned: Option<Spawned>,
}

/// The QEMU `--spawn` started, where both the end of the run and the
/// signal watcher can reach it (whichever comes first stops it).
static SPAWNED: Mutex<Option<Qemu>> = Mutex::new(None);

/// Files a signal that ends the run removes first (`qmp proxy`'s socket).
static REMOVE_ON_SIGNAL: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

/// Whether the signal watcher is installed (once per run).
static WATCHING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Removes `path` if a signal (SIGTERM, SIGHUP, SIGINT) ends the run, as
/// the end of the run does: `qmp proxy` leaves no socket behind.
pub fn remove_on_signal(path: std::path::PathBuf) -> Result<()> {
    REMOVE_ON_SIGNAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path);
    watch_signals(true)
}
/// Stops the QEMU `--spawn` started (kills it, removes its directory)
/// when dropped.
pub struct Spawned(());

impl Drop for Spawned {
    fn drop(&mut self) {
        stop_spawned();
    }
}

/// Stops the QEMU `--spawn` started, if it still runs.
fn stop_spawned() {
    let qemu = SPAWNED.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(qemu);
}

/// Stops the spawned QEMU when the run is ended by a signal: SIGTERM and
/// SIGHUP always, SIGINT (Ctrl-C) when `ctrl_c` (commands that handle
/// Ctrl-C themselves end normally instead). `qmp` then exits with 128 and
/// the signal's number. Must run inside the runtime; the handlers are
/// installed before it returns.
fn watch_signals(ctrl_c: bool) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    if WATCHING.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    let install =
        |k: SignalKind| signal(k).map_err(|e| CliError::Io(format!("can't watch signals: {e}")));
    let mut term = install(SignalKind::terminate())?;
    let mut hup = install(SignalKind::hangup())?;
    let mut int = if ctrl_c {
        Some(install(SignalKind::interrupt())?)
    } else {
        None
    };
    tokio::spawn(async move {
        let interrupt = async {
            match &mut int {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let (n, name) = tokio::select! {
            _ = term.recv() => (15, "SIGTERM"),
            _ = hup.recv() => (1, "SIGHUP"),
            _ = interrupt => (2, "SIGINT"),
        };
        let files =
            std::mem::take(&mut *REMOVE_ON_SIGNAL.lock().unwrap_or_else(|e| e.into_inner()));
        for f in files {
            let _ = std::fs::remove_file(f);
        }
        let spawned = SPAWNED.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        stop_spawned();
        if spawned {
            eprintln!("qmp: {name}; the QEMU this run started is stopped");
        } else {
            eprintln!("qmp: {name}");
        }
        std::process::exit(128 + n);
    });
    Ok(())
}

impl Target {
    /// Connects (starting QEMU first for `--spawn`); Ctrl-C, SIGTERM and
    /// SIGHUP stop a spawned QEMU before `qmp` exits.
    pub async fn connect(&self) -> Result<Session> {
        self.connect_watching(true).await
    }

    /// Keeps `client` to check its recording at the end of the run.
    fn recorded(&self, client: &Client) {
        if self.record.is_some() {
            RECORDED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(client.clone());
        }
    }

    /// [`Target::connect`] for a command that ends normally on Ctrl-C
    /// (its own handler then drops the session, which stops QEMU).
    pub async fn connect_keeping_ctrl_c(&self) -> Result<Session> {
        self.connect_watching(false).await
    }

    async fn connect_watching(&self, ctrl_c: bool) -> Result<Session> {
        let timeout = Duration::try_from_secs_f64(self.connect_timeout)
            .map_err(|_| CliError::Usage("--connect-timeout must be a positive number".into()))?;
        let mut opts = Options::default()
            .with_connect_timeout(timeout)
            .with_record_limit(self.record_limit);
        opts.record.clone_from(&self.record);
        let busy = |e: qmp_client::Error| {
            if e.is_timeout() {
                CliError::Busy(e)
            } else {
                e.into()
            }
        };
        if let Some(path) = &self.socket {
            let client = Client::connect_unix(path, opts).await.map_err(busy)?;
            self.recorded(&client);
            return Ok(Session {
                client,
                spawned: None,
            });
        }
        if let Some(addr) = &self.tcp {
            let client = Client::connect_tcp(addr, opts).await.map_err(busy)?;
            self.recorded(&client);
            return Ok(Session {
                client,
                spawned: None,
            });
        }
        if let Some(line) = &self.spawn {
            let launcher = launcher(line)?.start_timeout(timeout);
            // Before QEMU starts: a signal from now on stops it.
            watch_signals(ctrl_c)?;
            let qemu = launcher.start().await?;
            eprintln!(
                "qmp: started {} (pid {}) on {}",
                line.split_whitespace().next().unwrap_or("QEMU"),
                qemu.pid(),
                qemu.socket().display()
            );
            let connected = qemu.connect(opts).await;
            *SPAWNED.lock().unwrap_or_else(|e| e.into_inner()) = Some(qemu);
            let spawned = Spawned(());
            let client = connected?;
            self.recorded(&client);
            return Ok(Session {
                client,
                spawned: Some(spawned),
            });
        }
        Err(CliError::Usage(
            "where is QEMU? give --socket PATH (or set QMP_SOCKET), --tcp HOST:PORT, or --spawn to start one".into(),
        ))
    }
}

/// The connections this run records (`--record`), checked at its end.
static RECORDED: Mutex<Vec<Client>> = Mutex::new(Vec::new());

/// How the run's recordings went: a recording cut short by its limit is a
/// warning on stderr; one that failed to write is the run's error
/// (exit code 4), as nothing would say it otherwise.
pub fn check_recordings() -> Result<()> {
    let clients = std::mem::take(&mut *RECORDED.lock().unwrap_or_else(|e| e.into_inner()));
    let mut failed = None;
    for c in clients {
        match c.recording() {
            Ok(()) => {}
            Err(e @ qmp_client::Error::RecordFull { .. }) => {
                eprintln!("qmp: warning: {e} (--record-limit)");
            }
            Err(e) => failed = Some(CliError::Io(e.to_string())),
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The launcher for a `--spawn` command line.
fn launcher(line: &str) -> Result<Launcher> {
    let mut words = line.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| CliError::Usage("--spawn needs a program".into()))?;
    let rest: Vec<&str> = words.collect();
    let l = match program {
        "qemu-storage-daemon" => Launcher::storage_daemon(),
        "qemu-system-x86_64" if rest.is_empty() => Launcher::system_x86_64().guestless(),
        "qemu-system-x86_64" => Launcher::system_x86_64(),
        p if p.contains("storage-daemon") => Launcher::new(p, Flavor::StorageDaemon),
        p if p.contains("qemu-system") => {
            let l = Launcher::new(p, Flavor::System).args(["-display", "none"]);
            if rest.is_empty() { l.guestless() } else { l }
        }
        p => {
            return Err(CliError::Usage(format!(
                "--spawn '{p}': not a qemu-storage-daemon or qemu-system-* binary"
            )));
        }
    };
    Ok(l.args(rest))
}
