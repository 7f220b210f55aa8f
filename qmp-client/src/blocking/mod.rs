//! The client for programs without an async runtime (CI runners, test
//! harnesses, build scripts): [`Client`] and [`GuestAgent`] run the async
//! client on a private runtime thread, as reqwest's blocking client does,
//! and offer the same typed calls as plain functions; events arrive as
//! an iterator ([`Events`]); jobs and migrations have handles of their
//! own ([`Job`], [`Migration`]). Anything else the async API has runs
//! through [`Client::block_on`].
//!
//! ```no_run
//! use std::time::Duration;
//! use qmp_client::blocking::Client;
//! use qmp_client::Options;
//! use qmp_types::*;
//!
//! # fn demo() -> qmp_client::Result<()> {
//! let qmp = Client::connect_unix("/run/vm.qmp", Options::default())?;
//! let status = qmp.execute(QueryStatus::new())?;
//! qmp.unplug("tab0", Duration::from_secs(10))?;
//! for event in qmp.events().take(3) {
//!     println!("{}", event?.event.name());
//! }
//! // Any async helper, on the private runtime:
//! qmp.block_on(|c| async move {
//!     c.start_job(BlockdevBackup::new("drive0", MirrorSyncMode::Full, "bk0").with_job_id("bk"))
//!         .await?
//!         .wait(Duration::from_secs(60))
//!         .await
//! })?;
//! # Ok(()) }
//! ```
//!
//! Calling it from inside an async runtime is refused with
//! [`Error::BlockingInAsync`] (blocking a runtime's thread would stall
//! it): use the async [`crate::Client`] there.

mod events;
mod handles;

pub use events::{Events, EventsOf, TypedEvents, Until};
pub use handles::{Job, Migration};

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qmp_types::rt::{Command, Qga, Qmp, Timestamp};
use qmp_types::{AnyEvent, DeviceDeleted, Event};

use crate::agent::{AgentOptions, ExecOutput};
use crate::error::{Error, Result};
use crate::history::{EventRecord, Since};
use crate::options::Options;
use crate::transaction::TransactionBuilder;
use crate::wire::Greeting;

/// The private runtime: a current-thread runtime driven by a thread of
/// its own; callers' futures run on their own threads through its
/// handle. It stops when the last handle goes.
struct Runtime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Runtime {
    fn new() -> Result<Arc<Runtime>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Io)?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("qmp-client-blocking".into())
            .spawn(move || {
                // Drives I/O and timers, and runs the connection's task,
                // until told to stop; then the runtime ends with it.
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(Error::Io)?;
        Ok(Arc::new(Runtime {
            handle,
            stop: Some(stop),
        }))
    }

    fn block_on<F: Future>(&self, f: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::BlockingInAsync);
        }
        Ok(self.handle.block_on(f))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Not joined: the last handle may be dropped anywhere.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A blocking QMP client: [`crate::Client`]'s calls as plain functions.
/// Clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: crate::Client,
    rt: Arc<Runtime>,
}

impl Client {
    /// Connects to QEMU's QMP Unix socket at `path` (as
    /// [`crate::Client::connect_unix`]).
    pub fn connect_unix(path: impl AsRef<Path>, opts: Options) -> Result<Client> {
        let rt = Runtime::new()?;
        let inner = rt.block_on(crate::Client::connect_unix(path.as_ref(), opts))??;
        Ok(Client { inner, rt })
    }

    /// Connects to a QMP TCP socket (`host:port`).
    pub fn connect_tcp(addr: &str, opts: Options) -> Result<Client> {
        let rt = Runtime::new()?;
        let inner = rt.block_on(crate::Client::connect_tcp(addr, opts))??;
        Ok(Client { inner, rt })
    }

    /// Connects to a QEMU started by [`crate::launch`].
    #[cfg(feature = "launch")]
    pub fn connect_to(qemu: &crate::launch::Qemu, opts: Options) -> Result<Client> {
        Client::connect_unix(qemu.socket(), opts)
    }

    /// Runs `f` with the async client on the private runtime and waits
    /// for it: any async helper (jobs, migrations, backups, ...).
    pub fn block_on<F, T>(&self, f: impl FnOnce(crate::Client) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.rt.block_on(f(self.inner.clone()))?
    }

    /// The async client behind this one (to hand to async code).
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// Runs a typed command; its typed reply.
    pub fn execute<C: Command<Protocol = Qmp>>(&self, cmd: C) -> Result<C::Returns> {
        self.rt.block_on(self.inner.execute(cmd))?
    }

    /// The connected QEMU's own schema ([`crate::Client::schema`]).
    pub fn schema(&self) -> Result<Arc<crate::introspect::Introspection>> {
        self.rt.block_on(self.inner.schema())?
    }

    /// Whether the connected QEMU has command `C` ([`crate::Client::has`]).
    pub fn has<C: Command<Protocol = Qmp>>(&self) -> Result<bool> {
        self.rt.block_on(self.inner.has::<C>())
    }

    /// Whether the connected QEMU has what `probe` asks
    /// ([`crate::Client::probe`]).
    pub fn probe(&self, probe: &crate::introspect::Probe) -> Result<bool> {
        self.rt.block_on(self.inner.probe(probe))?
    }

    /// [`Client::execute`] with its own timeout.
    pub fn execute_timeout<C: Command<Protocol = Qmp>>(
        &self,
        cmd: C,
        timeout: Duration,
    ) -> Result<C::Returns> {
        self.rt.block_on(self.inner.execute_timeout(cmd, timeout))?
    }

    /// Runs a command out of band (`exec-oob`).
    pub fn execute_oob<C: Command<Protocol = Qmp>>(&self, cmd: C) -> Result<C::Returns> {
        self.rt.block_on(self.inner.execute_oob(cmd))?
    }

    /// Runs a command by name with JSON arguments, unchecked.
    pub fn execute_raw(&self, name: &str, args: serde_json::Value) -> Result<serde_json::Value> {
        self.rt.block_on(self.inner.execute_raw(name, args))?
    }

    /// Runs an HMP command line (its errors are [`Error::Hmp`]).
    pub fn human(&self, command_line: &str) -> Result<String> {
        self.rt.block_on(self.inner.human(command_line))?
    }

    /// Runs a transaction.
    pub fn transaction(&self, t: TransactionBuilder) -> Result<()> {
        self.rt.block_on(self.inner.transaction(t))?
    }

    /// QEMU's greeting, with what was negotiated.
    pub fn greeting(&self) -> &Greeting {
        self.inner.greeting()
    }

    /// The connected QEMU's version.
    pub fn qemu_version(&self) -> qmp_types::rt::QemuVersion {
        self.inner.qemu_version()
    }

    /// A cursor: events from now on (see [`crate::Client::event_cursor`]).
    pub fn event_cursor(&self) -> Since {
        self.inner.event_cursor()
    }

    /// Every event from now on, as an iterator that blocks for the next.
    pub fn events(&self) -> Events {
        Events {
            stream: self.inner.events(),
            rt: self.rt.clone(),
            ended: false,
        }
    }

    /// The event history admitted by `since`.
    pub fn history(&self, since: Since) -> Vec<Arc<EventRecord>> {
        self.inner.history(since)
    }

    /// The events of type `E` admitted by `since` (see
    /// [`crate::Client::events_of`]): narrow them with
    /// [`EventsOf::matching`], then look in the history, wait for one, or
    /// follow them.
    pub fn events_of<'a, E: Event<Any = AnyEvent> + Clone>(&self, since: Since) -> EventsOf<'a, E> {
        EventsOf {
            inner: self.inner.events_of(since),
            rt: self.rt.clone(),
        }
    }

    /// Waits for an event `E` that `pred` accepts, history first.
    #[deprecated(note = "use `events_of::<E>(since).matching(pred).wait(timeout)`")]
    pub fn wait_for<E, F>(&self, since: Since, timeout: Duration, pred: F) -> Result<(Timestamp, E)>
    where
        E: Event<Any = AnyEvent> + Clone,
        F: Fn(&E) -> bool + Sync,
    {
        let pred = &pred;
        self.events_of::<E>(since)
            .matching(move |e| pred(e))
            .wait(timeout)
    }

    /// `device_del`, then its `DEVICE_DELETED` (see
    /// [`crate::Client::unplug`]).
    pub fn unplug(&self, id: &str, timeout: Duration) -> Result<DeviceDeleted> {
        self.rt.block_on(self.inner.unplug(id, timeout))?
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Ends the connection; pending calls get [`Error::Closed`].
    pub fn close(&self) {
        self.inner.close();
    }
}

/// A blocking guest agent client: [`crate::agent::GuestAgent`]'s calls as
/// plain functions.
#[derive(Clone)]
pub struct GuestAgent {
    inner: crate::agent::GuestAgent,
    rt: Arc<Runtime>,
}

impl GuestAgent {
    /// Connects to the agent's Unix socket and synchronises.
    pub fn connect_unix(path: impl AsRef<Path>, opts: AgentOptions) -> Result<GuestAgent> {
        let rt = Runtime::new()?;
        let inner = rt.block_on(crate::agent::GuestAgent::connect_unix(path.as_ref(), opts))??;
        Ok(GuestAgent { inner, rt })
    }

    /// Runs a typed agent command; its typed reply.
    pub fn execute<C: Command<Protocol = Qga>>(&self, cmd: C) -> Result<C::Returns> {
        self.rt.block_on(self.inner.execute(cmd))?
    }

    /// [`GuestAgent::execute`] with its own timeout.
    pub fn execute_timeout<C: Command<Protocol = Qga>>(
        &self,
        cmd: C,
        timeout: Duration,
    ) -> Result<C::Returns> {
        self.rt.block_on(self.inner.execute_timeout(cmd, timeout))?
    }

    /// Runs a program in the guest and waits for it: its output and exit
    /// code (see [`crate::agent::GuestAgent::exec`]).
    pub fn exec(&self, cmd: qmp_types::qga::GuestExecCommand) -> Result<ExecOutput> {
        self.rt.block_on(self.inner.exec(cmd))?
    }

    /// Runs `f` with the async agent client on the private runtime (files,
    /// freezing, ...).
    pub fn block_on<F, T>(&self, f: impl FnOnce(crate::agent::GuestAgent) -> F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.rt.block_on(f(self.inner.clone()))?
    }
}
