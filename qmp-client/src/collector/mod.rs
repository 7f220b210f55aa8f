//! Watching many QEMUs: a [`Collector`] polls any number of monitors (QMP
//! sockets, a directory of sockets that come and go, or a `qmp proxy`'s
//! socket) on an interval and keeps typed time series of each: run
//! state, block I/O per device (`query-blockstats`), jobs with their
//! progress, migration progress, vCPU threads, the balloon, and a count
//! of every event by name. `qmp top` and `qmp exporter` show them.
//!
//! What it costs QEMU: one batch of queries per interval per monitor,
//! one query at a time, never a second batch while one is in flight
//! (a poll that outlasts the interval marks the monitor *slow* and the
//! ticks it covered are skipped, not queued). Queries the connected QEMU
//! lacks (the storage daemon has no `query-status`) are left out, by its
//! own schema. A monitor that goes away is marked *gone* and dialled
//! again each interval; nothing waits for it: [`Collector::snapshot`]
//! reads what the polls left, at once.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use qmp_client::collector::{Collector, CollectorOptions, IoRate, Source};
//!
//! let c = Collector::start(
//!     vec![Source::Directory("/run/vms".into())],
//!     CollectorOptions::default().with_interval(Duration::from_secs(1)),
//! );
//! c.changed().await; // a poll ended somewhere
//! for vm in c.snapshot() {
//!     let io = vm.rate().unwrap_or_default();
//!     println!("{} {:?} {:.0} IOPS", vm.name, vm.health, io.read_iops + io.write_iops);
//! }
//! # }
//! ```

mod monitor;
mod sample;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::options::Options;

pub use sample::{BlockIo, IoRate, Sample, Vcpu};

/// Where monitors are found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// One QMP socket (a QEMU's monitor, or a `qmp proxy` in front of
    /// one).
    Socket(PathBuf),
    /// Every socket in a directory, looked at each interval: a socket
    /// that appears is watched, one whose file goes is dropped.
    Directory(PathBuf),
}

/// Which queries a poll sends (each only when the connected QEMU has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Queries {
    /// `query-status`.
    pub status: bool,
    /// `query-blockstats`.
    pub block: bool,
    /// `query-jobs`.
    pub jobs: bool,
    /// `query-migrate`.
    pub migration: bool,
    /// `query-cpus-fast`.
    pub vcpus: bool,
    /// `query-balloon`.
    pub balloon: bool,
}

impl Default for Queries {
    fn default() -> Self {
        Queries {
            status: true,
            block: true,
            jobs: true,
            migration: true,
            vcpus: true,
            balloon: true,
        }
    }
}

impl Queries {
    /// No query at all (turn on the ones wanted).
    pub fn none() -> Queries {
        Queries {
            status: false,
            block: false,
            jobs: false,
            migration: false,
            vcpus: false,
            balloon: false,
        }
    }
}

/// How a [`Collector`] polls.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CollectorOptions {
    /// Time between polls of a monitor (1 s by default).
    pub interval: Duration,
    /// The queries of a poll.
    pub queries: Queries,
    /// Samples kept per monitor (120 by default: two minutes at 1 s).
    pub keep: usize,
    /// Events kept per monitor for [`MonitorView::recent_events`] (50).
    pub keep_events: usize,
    /// How each monitor is connected to.
    pub client: Options,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions {
            interval: Duration::from_secs(1),
            queries: Queries::default(),
            keep: 120,
            keep_events: 50,
            // The collector reads events as they come: a small history.
            client: Options::default()
                .with_connect_timeout(Duration::from_secs(2))
                .with_wait_for_socket(false)
                .with_history(16),
        }
    }
}

impl CollectorOptions {
    /// Sets [`CollectorOptions::interval`].
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`CollectorOptions::queries`].
    #[must_use]
    pub fn with_queries(mut self, queries: Queries) -> Self {
        self.queries = queries;
        self
    }

    /// Sets [`CollectorOptions::keep`].
    #[must_use]
    pub fn with_keep(mut self, keep: usize) -> Self {
        self.keep = keep;
        self
    }
}

/// How a monitor is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Not connected yet.
    Connecting,
    /// Polled in time.
    Up,
    /// Its last poll took longer than the interval (QEMU busy, or its
    /// monitor held by a long command): its samples come late.
    Slow,
    /// Not connected: why (it is dialled again each interval).
    Gone(String),
}

impl Health {
    /// A word for it: `up`, `slow`, `gone`, `connecting`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Connecting => "connecting",
            Health::Up => "up",
            Health::Slow => "slow",
            Health::Gone(_) => "gone",
        }
    }
}

/// One monitor as the collector last saw it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MonitorView {
    /// Its socket.
    pub path: PathBuf,
    /// The VM's name (`-name`, through `query-name`), else the socket's
    /// file name without its extension.
    pub name: String,
    /// How it is doing.
    pub health: Health,
    /// The QEMU version it greeted with, once connected.
    pub version: Option<String>,
    /// Its samples, oldest first.
    pub samples: Vec<Arc<Sample>>,
    /// Events received, by name, since the collector began watching it.
    pub events: BTreeMap<String, u64>,
    /// The last events received (when, name), oldest first.
    pub recent_events: Vec<(SystemTime, String)>,
    /// Polls done, and polls that took longer than the interval.
    pub polls: u64,
    /// Polls that took longer than the interval.
    pub slow_polls: u64,
    /// Times it was (re)connected.
    pub connects: u64,
}

impl MonitorView {
    /// The newest sample.
    pub fn last(&self) -> Option<&Sample> {
        self.samples.last().map(|s| &**s)
    }

    /// I/O per second between the last two samples.
    pub fn rate(&self) -> Option<IoRate> {
        match self.samples.as_slice() {
            [.., a, b] => Some(IoRate::between(a, b)),
            _ => None,
        }
    }

    /// I/O per second between each pair of samples, oldest first.
    pub fn rates(&self) -> Vec<IoRate> {
        self.samples
            .windows(2)
            .map(|w| IoRate::between(&w[0], &w[1]))
            .collect()
    }
}

/// What a monitor's task and the readers share.
#[derive(Debug)]
struct MonitorState {
    view: MonitorView,
    samples: VecDeque<Arc<Sample>>,
    recent: VecDeque<(SystemTime, String)>,
    /// When the poll under way began.
    poll_started: Option<std::time::Instant>,
}

/// Shared between the collector's tasks and its handle.
struct Shared {
    opts: CollectorOptions,
    monitors: Mutex<BTreeMap<PathBuf, Watched>>,
    changed: Notify,
}

struct Watched {
    state: Arc<Mutex<MonitorState>>,
    task: JoinHandle<()>,
    /// Found in a directory (dropped when its file goes).
    scanned: bool,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls monitors and keeps their time series (see the [module
/// docs](self)). Dropping it stops every task it started.
pub struct Collector {
    shared: Arc<Shared>,
    scanner: Option<JoinHandle<()>>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(t) = &self.scanner {
            t.abort();
        }
        self.shared
            .monitors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl Collector {
    /// Starts watching `sources` (inside a tokio runtime).
    pub fn start(sources: Vec<Source>, opts: CollectorOptions) -> Collector {
        let shared = Arc::new(Shared {
            opts,
            monitors: Mutex::new(BTreeMap::new()),
            changed: Notify::new(),
        });
        let mut dirs = Vec::new();
        for s in sources {
            match s {
                Source::Socket(p) => watch(&shared, p, false),
                Source::Directory(d) => dirs.push(d),
            }
        }
        let scanner = (!dirs.is_empty()).then(|| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(shared.opts.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    scan(&shared, &dirs);
                }
            })
        });
        Collector { shared, scanner }
    }

    /// Watches one more socket.
    pub fn add(&self, path: impl Into<PathBuf>) {
        watch(&self.shared, path.into(), false);
    }

    /// Every monitor as last seen, by socket path. Never waits for a
    /// monitor.
    pub fn snapshot(&self) -> Vec<MonitorView> {
        let watched: Vec<Arc<Mutex<MonitorState>>> = self
            .shared
            .monitors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|w| w.state.clone())
            .collect();
        watched
            .iter()
            .map(|s| {
                let st = s.lock().unwrap_or_else(|p| p.into_inner());
                let mut v = st.view.clone();
                // A poll still under way past the interval: slow now.
                if st
                    .poll_started
                    .is_some_and(|t| t.elapsed() > self.shared.opts.interval)
                {
                    v.health = Health::Slow;
                }
                v.samples = st.samples.iter().cloned().collect();
                v.recent_events = st.recent.iter().cloned().collect();
                v
            })
            .collect()
    }

    /// Waits until a poll ends, a monitor comes or goes, or an event
    /// arrives (for a display that redraws on news). The news counted
    /// are those after this call, not after the first poll of the
    /// future: call it, then look at [`Collector::snapshot`], then await.
    pub fn changed(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.shared.changed.notified()
    }

    /// The options it polls with.
    pub fn options(&self) -> &CollectorOptions {
        &self.shared.opts
    }
}

/// Starts watching `path` unless it is watched already.
fn watch(shared: &Arc<Shared>, path: PathBuf, scanned: bool) {
    let mut monitors = shared.monitors.lock().unwrap_or_else(|p| p.into_inner());
    if insert(shared, &mut monitors, path, scanned) {
        drop(monitors);
        shared.changed.notify_waiters();
    }
}

/// Adds `path` to `monitors` with its task, unless it is there already;
/// whether it was added.
fn insert(
    shared: &Arc<Shared>,
    monitors: &mut BTreeMap<PathBuf, Watched>,
    path: PathBuf,
    scanned: bool,
) -> bool {
    if monitors.contains_key(&path) {
        return false;
    }
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let state = Arc::new(Mutex::new(MonitorState {
        view: MonitorView {
            path: path.clone(),
            name,
            health: Health::Connecting,
            version: None,
            samples: Vec::new(),
            events: BTreeMap::new(),
            recent_events: Vec::new(),
            polls: 0,
            slow_polls: 0,
            connects: 0,
        },
        samples: VecDeque::new(),
        recent: VecDeque::new(),
        poll_started: None,
    }));
    let task = tokio::spawn(monitor::run(shared.clone(), path.clone(), state.clone()));
    monitors.insert(
        path,
        Watched {
            state,
            task,
            scanned,
        },
    );
    true
}

/// One look at the directories: new sockets watched, vanished ones
/// dropped.
fn scan(shared: &Arc<Shared>, dirs: &[PathBuf]) {
    use std::os::unix::fs::FileTypeExt;
    let mut present = std::collections::BTreeSet::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        for e in entries.flatten() {
            // A symbolic link to a socket counts.
            let path = e.path();
            if std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_socket()) {
                present.insert(path);
            }
        }
    }
    let mut monitors = shared.monitors.lock().unwrap_or_else(|p| p.into_inner());
    let before = monitors.len();
    monitors.retain(|p, w| !w.scanned || present.contains(p));
    let mut changed = monitors.len() != before;
    for p in present {
        changed |= insert(shared, &mut monitors, p, true);
    }
    drop(monitors);
    if changed {
        shared.changed.notify_waiters();
    }
}
