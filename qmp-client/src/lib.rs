//! An async (tokio) QMP client over the typed commands and events of
//! [`qmp_types`].
//!
//! ```no_run
//! # async fn demo() -> qmp_client::Result<()> {
//! use qmp_client::{Client, Options};
//! use qmp_types::{QueryStatus, DeviceDel, DeviceDeleted};
//! use std::time::Duration;
//!
//! let client = Client::connect_unix("/run/qemu/vm.qmp", Options::default()).await?;
//! let status = client.execute(QueryStatus::new()).await?;
//! println!("{:?}", status.status);
//! let since = client.event_cursor();
//! client.execute(DeviceDel::new("tab0")).await?;
//! client.wait_device_deleted("tab0", since, Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! One connection serves any number of tasks: each command carries an
//! `id`, replies are matched by it and commands are pipelined. Dropping a
//! call's future never desynchronises the connection. Events go to a
//! bounded history and to every subscriber.

mod error;
mod events;
mod transaction;

pub use error::{Error, ErrorClass, Result};
pub use events::{EventRecord, EventStream, Since};
pub use transaction::TransactionBuilder;

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qmp_types::{AnyEvent, Command, Event, Timestamp, VersionInfo};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deadline for connecting and for the greeting and capabilities
    /// negotiation.
    pub connect_timeout: Duration,
    /// Default per-call timeout (`None`: wait as long as it takes).
    pub call_timeout: Option<Duration>,
    /// Ask for out-of-band execution when QEMU offers it.
    pub oob: bool,
    /// Events kept in the history.
    pub history: usize,
    /// Events a subscriber may fall behind before it loses some.
    pub subscriber_buffer: usize,
    /// Largest message accepted from QEMU, in bytes.
    pub max_message: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(10),
            call_timeout: None,
            oob: false,
            history: 1024,
            subscriber_buffer: 1024,
            max_message: 64 << 20,
        }
    }
}

/// What QEMU said when we connected.
#[derive(Debug, Clone, PartialEq)]
pub struct Greeting {
    /// QEMU's version and package.
    pub version: VersionInfo,
    /// Capabilities offered (`oob`).
    pub capabilities: Vec<String>,
    /// Whether out-of-band execution was negotiated.
    pub oob: bool,
}

type Reply = Result<Box<RawValue>>;

struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    next_id: AtomicU64,
    hub: events::Hub,
    closed_tx: watch::Sender<bool>,
    closed_rx: watch::Receiver<bool>,
    close_reason: Mutex<Option<String>>,
    /// Replies whose id matched no pending call (a dropped call's, or
    /// garbage).
    stray_replies: AtomicU64,
}

impl Shared {
    fn close(&self, reason: String) {
        {
            let mut r = self.close_reason.lock().unwrap_or_else(|e| e.into_inner());
            if r.is_none() {
                *r = Some(reason.clone());
            }
        }
        let _ = self.closed_tx.send(true);
        let pending: Vec<_> = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.drain().collect()
        };
        for (_, tx) in pending {
            let _ = tx.send(Err(Error::Closed(Some(reason.clone()))));
        }
    }

    fn closed_error(&self) -> Error {
        Error::Closed(
            self.close_reason
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    fn is_closed(&self) -> bool {
        *self.closed_rx.borrow()
    }
}

struct WriteOp {
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// A QMP connection, cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<WriteOp>,
    greeting: Arc<Greeting>,
    opts: Arc<Options>,
    unix: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("greeting", &self.greeting)
            .field("closed", &self.shared.is_closed())
            .finish()
    }
}

/// Removes a pending call's entry when its future is dropped.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

#[derive(Deserialize)]
struct WireError {
    class: String,
    desc: String,
}

/// Any message from QEMU; members decoded lazily.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(rename = "return", default)]
    ret: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<WireError>,
    #[serde(default)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    timestamp: Option<Timestamp>,
}

enum Writer {
    Unix(tokio::net::unix::OwnedWriteHalf),
    Other(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Client {
    /// Connects to QEMU's QMP Unix socket at `path`.
    pub async fn connect_unix(path: impl AsRef<Path>, opts: Options) -> Result<Client> {
        let path = path.as_ref();
        let stream =
            tokio::time::timeout(opts.connect_timeout, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| Error::Connect {
                    address: path.display().to_string(),
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "dial timed out"),
                })?
                .map_err(|source| Error::Connect {
                    address: path.display().to_string(),
                    source,
                })?;
        let (r, w) = stream.into_split();
        Client::handshake(Box::new(r), Writer::Unix(w), opts).await
    }

    /// Connects to QEMU's QMP TCP socket at `addr` (`host:port`).
    pub async fn connect_tcp(addr: &str, opts: Options) -> Result<Client> {
        let stream =
            tokio::time::timeout(opts.connect_timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| Error::Connect {
                    address: addr.to_string(),
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "dial timed out"),
                })?
                .map_err(|source| Error::Connect {
                    address: addr.to_string(),
                    source,
                })?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        Client::handshake(Box::new(r), Writer::Other(Box::new(w)), opts).await
    }

    /// Speaks QMP over any byte stream (one end of a socketpair handed to a
    /// QEMU this program spawned, a pipe pair, ...). File descriptors can't
    /// be passed over it.
    pub async fn from_stream<S>(stream: S, opts: Options) -> Result<Client>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        Client::handshake(Box::new(r), Writer::Other(Box::new(w)), opts).await
    }

    /// Speaks QMP over a connected Unix stream (e.g. from a socketpair);
    /// file descriptors can be passed.
    pub async fn from_unix_stream(stream: tokio::net::UnixStream, opts: Options) -> Result<Client> {
        let (r, w) = stream.into_split();
        Client::handshake(Box::new(r), Writer::Unix(w), opts).await
    }

    async fn handshake(
        reader: Box<dyn AsyncRead + Send + Unpin>,
        writer: Writer,
        opts: Options,
    ) -> Result<Client> {
        let deadline = opts.connect_timeout;
        let mut reader = BufReader::with_capacity(8 << 10, reader);
        let mut writer = writer;
        let work = async {
            let line = read_message(&mut reader, opts.max_message).await?;
            let greeting = parse_greeting(&line)?;
            let oob = opts.oob && greeting.capabilities.iter().any(|c| c == "oob");
            let cmd = if oob {
                r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#
            } else {
                r#"{"execute":"qmp_capabilities"}"#
            };
            write_plain(&mut writer, format!("{cmd}\n").as_bytes()).await?;
            // Events can't come before capabilities are negotiated.
            let line = read_message(&mut reader, opts.max_message).await?;
            let msg: Incoming<'_> = serde_json::from_slice(&line)
                .map_err(|e| Error::Protocol(format!("bad reply to qmp_capabilities: {e}")))?;
            if let Some(e) = msg.error {
                return Err(Error::Qmp {
                    command: "qmp_capabilities".into(),
                    class: ErrorClass::from_wire(&e.class),
                    desc: e.desc,
                });
            }
            if msg.ret.is_none() {
                return Err(Error::Protocol("no reply to qmp_capabilities".into()));
            }
            Ok(Greeting { oob, ..greeting })
        };
        let greeting =
            tokio::time::timeout(deadline, work)
                .await
                .map_err(|_| Error::Timeout {
                    what: "the QMP greeting".into(),
                    after: deadline,
                })??;
        let (closed_tx, closed_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            hub: events::Hub::new(opts.history, opts.subscriber_buffer),
            closed_tx,
            closed_rx,
            close_reason: Mutex::new(None),
            stray_replies: AtomicU64::new(0),
        });
        let (wtx, wrx) = mpsc::unbounded_channel();
        let unix = matches!(writer, Writer::Unix(_));
        tokio::spawn(write_loop(writer, wrx, shared.clone()));
        tokio::spawn(read_loop(reader, shared.clone(), opts.max_message));
        Ok(Client {
            shared,
            writer: wtx,
            greeting: Arc::new(greeting),
            opts: Arc::new(opts),
            unix,
        })
    }

    /// What QEMU said on connect.
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Waits until the connection is closed (e.g. after `quit`).
    pub async fn closed(&self) {
        let mut rx = self.shared.closed_rx.clone();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Replies that matched no pending call so far (replies to dropped
    /// calls, or unknown ids).
    pub fn stray_replies(&self) -> u64 {
        self.shared.stray_replies.load(Ordering::Relaxed)
    }

    /// Executes a typed command; returns its typed reply.
    pub async fn execute<C: Command>(&self, cmd: C) -> Result<C::Returns> {
        self.execute_inner(&cmd, "execute", Vec::new(), self.opts.call_timeout)
            .await
    }

    /// [`Client::execute`] with its own timeout.
    pub async fn execute_timeout<C: Command>(
        &self,
        cmd: C,
        timeout: Duration,
    ) -> Result<C::Returns> {
        self.execute_inner(&cmd, "execute", Vec::new(), Some(timeout))
            .await
    }

    /// Executes an `allow-oob` command out of band (`exec-oob`): QEMU runs
    /// it at once, even while other commands are in progress.
    pub async fn execute_oob<C: Command>(&self, cmd: C) -> Result<C::Returns> {
        if !self.greeting.oob {
            return Err(Error::OobNotAvailable(
                C::NAME.into(),
                "OOB was not negotiated (Options::oob)",
            ));
        }
        if !C::META.allow_oob {
            return Err(Error::OobNotAvailable(
                C::NAME.into(),
                "the command doesn't allow it",
            ));
        }
        self.execute_inner(&cmd, "exec-oob", Vec::new(), self.opts.call_timeout)
            .await
    }

    /// Executes a command passing file descriptors with it (SCM_RIGHTS),
    /// for `getfd` and `add-fd`. Unix sockets only.
    pub async fn execute_with_fds<C: Command>(
        &self,
        cmd: C,
        fds: Vec<OwnedFd>,
    ) -> Result<C::Returns> {
        if !self.unix {
            return Err(Error::FdPassingUnsupported);
        }
        self.execute_inner(&cmd, "execute", fds, self.opts.call_timeout)
            .await
    }

    /// Executes a command by name with JSON arguments, for commands the
    /// bindings lack; returns the raw `return` value.
    pub async fn execute_raw(
        &self,
        name: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let args = serde_json::value::to_raw_value(&arguments)
            .map_err(|e| Error::Protocol(format!("arguments don't encode: {e}")))?;
        let raw = self
            .call(name, "execute", &args, Vec::new(), self.opts.call_timeout)
            .await?;
        decode(name, &raw)
    }

    /// Runs a human monitor (HMP) command line; returns its output.
    pub async fn human(&self, command_line: &str) -> Result<String> {
        self.execute(qmp_types::HumanMonitorCommand::new(command_line))
            .await
    }

    /// Runs a transaction (see [`TransactionBuilder`]).
    pub async fn transaction(&self, t: TransactionBuilder) -> Result<()> {
        self.execute(t.build()).await
    }

    async fn execute_inner<C: Command>(
        &self,
        cmd: &C,
        verb: &'static str,
        fds: Vec<OwnedFd>,
        timeout: Option<Duration>,
    ) -> Result<C::Returns> {
        let args = serde_json::value::to_raw_value(cmd)
            .map_err(|e| Error::Protocol(format!("{} arguments don't encode: {e}", C::NAME)))?;
        let raw = self.call(C::NAME, verb, &args, fds, timeout).await?;
        decode_reply::<C::Returns>(C::NAME, &raw)
    }

    async fn call(
        &self,
        name: &str,
        verb: &'static str,
        args: &RawValue,
        fds: Vec<OwnedFd>,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>> {
        if self.shared.is_closed() {
            return Err(self.shared.closed_error());
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut bytes = Vec::with_capacity(64 + name.len() + args.get().len());
        bytes.extend_from_slice(b"{\"");
        bytes.extend_from_slice(verb.as_bytes());
        bytes.extend_from_slice(b"\":");
        serde_json::to_writer(&mut bytes, name).map_err(|e| Error::Protocol(e.to_string()))?;
        let a = args.get();
        if a != "{}" && a != "null" {
            bytes.extend_from_slice(b",\"arguments\":");
            bytes.extend_from_slice(a.as_bytes());
        }
        bytes.extend_from_slice(b",\"id\":");
        bytes.extend_from_slice(id.to_string().as_bytes());
        bytes.extend_from_slice(b"}\n");
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        // Closed between the check and the insert: don't wait forever.
        if self.shared.is_closed() {
            return Err(self.shared.closed_error());
        }
        if self.writer.send(WriteOp { bytes, fds }).is_err() {
            return Err(self.shared.closed_error());
        }
        let reply = match timeout {
            Some(t) => tokio::time::timeout(t, rx)
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("the reply to {name}"),
                    after: t,
                })?,
            None => rx.await,
        };
        match reply {
            Ok(r) => r,
            Err(_) => Err(self.shared.closed_error()),
        }
        .map_err(|e| match e {
            Error::Qmp { class, desc, .. } => Error::Qmp {
                command: name.to_string(),
                class,
                desc,
            },
            other => other,
        })
    }

    /// The position the next event will have: pass `Since::Cursor(c)` to
    /// wait for events that arrive after this call.
    pub fn event_cursor(&self) -> Since {
        Since::Cursor(self.shared.hub.cursor())
    }

    /// Subscribes to every event from now on.
    pub fn events(&self) -> EventStream {
        EventStream::new(self.shared.hub.subscribe())
    }

    /// Events in the history of type `E` admitted by `since` (the seed's
    /// `FindEvents`).
    pub fn find_events<E: Event + Clone>(&self, since: Since) -> Vec<(Timestamp, E)> {
        let mut f = |r: &EventRecord| E::from_any_ref(&r.event).is_some();
        self.shared
            .hub
            .find(since, &mut f)
            .iter()
            .filter_map(|r| E::from_any_ref(&r.event).map(|e| (r.timestamp, e.clone())))
            .collect()
    }

    /// Every event in the history admitted by `since`.
    pub fn history(&self, since: Since) -> Vec<Arc<EventRecord>> {
        self.shared.hub.find(since, &mut |_| true)
    }

    /// Waits for an event of type `E` admitted by `since` that matches
    /// `pred`, looking at the history first (QEMU often sends an event
    /// before the reply to the command that caused it).
    pub async fn wait_for<E, F>(
        &self,
        since: Since,
        timeout: Duration,
        pred: F,
    ) -> Result<(Timestamp, E)>
    where
        E: Event + Clone,
        F: Fn(&E) -> bool + Sync,
    {
        tokio::time::timeout(
            timeout,
            events::wait_for::<E>(&self.shared.hub, &self.shared.closed_rx, since, &pred),
        )
        .await
        .map_err(|_| Error::Timeout {
            what: format!("event {}", E::NAME),
            after: timeout,
        })?
    }

    /// Waits for events of type `E` admitted by `since` (the seed's
    /// `GetEvents`): all of them in the history, or the first to arrive.
    pub async fn get_events<E: Event + Clone>(
        &self,
        since: Since,
        timeout: Duration,
    ) -> Result<Vec<(Timestamp, E)>> {
        let found = self.find_events::<E>(since);
        if !found.is_empty() {
            return Ok(found);
        }
        Ok(vec![self.wait_for::<E, _>(since, timeout, |_| true).await?])
    }

    /// Waits for `DEVICE_DELETED` of device `id` (qdev id or QOM path).
    pub async fn wait_device_deleted(
        &self,
        id: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceDeleted> {
        self.wait_for::<qmp_types::DeviceDeleted, _>(since, timeout, |e| {
            e.device.as_deref() == Some(id) || e.path == id
        })
        .await
        .map(|(_, e)| e)
    }

    /// Waits for `JOB_STATUS_CHANGE` of job `id` to `status`.
    pub async fn wait_job_status_change(
        &self,
        id: &str,
        status: qmp_types::JobStatus,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::JobStatusChange> {
        self.wait_for::<qmp_types::JobStatusChange, _>(since, timeout, |e| {
            e.id == id && e.status == status
        })
        .await
        .map(|(_, e)| e)
    }

    /// Waits for `DEVICE_TRAY_MOVED` of `device` (qdev id or block
    /// device name); `open`: `Some(true)` opened, `Some(false)` closed,
    /// `None` either.
    pub async fn wait_device_tray_moved(
        &self,
        device: &str,
        open: Option<bool>,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceTrayMoved> {
        self.wait_for::<qmp_types::DeviceTrayMoved, _>(since, timeout, |e| {
            (e.id == device || e.device == device) && open.is_none_or(|o| e.tray_open == o)
        })
        .await
        .map(|(_, e)| e)
    }

    /// Waits for the tray of `device` to open.
    pub async fn wait_device_tray_opened(
        &self,
        device: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceTrayMoved> {
        self.wait_device_tray_moved(device, Some(true), since, timeout)
            .await
    }

    /// Waits for the tray of `device` to close.
    pub async fn wait_device_tray_closed(
        &self,
        device: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceTrayMoved> {
        self.wait_device_tray_moved(device, Some(false), since, timeout)
            .await
    }

    /// Waits for `RESUME` (the machine runs again).
    pub async fn wait_machine_resume(&self, since: Since, timeout: Duration) -> Result<Timestamp> {
        self.wait_for::<qmp_types::Resume, _>(since, timeout, |_| true)
            .await
            .map(|(t, _)| t)
    }

    /// `BLOCK_JOB_COMPLETED` of job `device` in the history, if any (the
    /// seed's `FindBlockJobCompletedEvent`).
    pub fn find_block_job_completed(
        &self,
        device: &str,
        since: Since,
    ) -> Option<(Timestamp, qmp_types::BlockJobCompleted)> {
        self.find_events::<qmp_types::BlockJobCompleted>(since)
            .into_iter()
            .find(|(_, e)| e.device == device)
    }

    /// `BLOCK_JOB_ERROR` of job `device` in the history, if any.
    pub fn find_block_job_error(
        &self,
        device: &str,
        since: Since,
    ) -> Option<(Timestamp, qmp_types::BlockJobError)> {
        self.find_events::<qmp_types::BlockJobError>(since)
            .into_iter()
            .find(|(_, e)| e.device == device)
    }

    /// Waits for `BLOCK_JOB_COMPLETED` of job `device`.
    pub async fn wait_block_job_completed(
        &self,
        device: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::BlockJobCompleted> {
        self.wait_for::<qmp_types::BlockJobCompleted, _>(since, timeout, |e| e.device == device)
            .await
            .map(|(_, e)| e)
    }

    /// Closes the connection: pending calls fail with `Closed`.
    pub fn close(&self) {
        self.shared.close("closed by the client".into());
    }
}

fn parse_greeting(line: &[u8]) -> Result<Greeting> {
    #[derive(Deserialize)]
    struct Inner {
        version: VersionInfo,
        #[serde(default)]
        capabilities: Vec<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct G {
        #[serde(rename = "QMP")]
        qmp: Inner,
    }
    let g: G = serde_json::from_slice(line).map_err(|e| {
        Error::Protocol(format!(
            "bad greeting ({e}): {}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        ))
    })?;
    Ok(Greeting {
        version: g.qmp.version,
        capabilities: g
            .qmp
            .capabilities
            .into_iter()
            .filter_map(|c| c.as_str().map(String::from))
            .collect(),
        oob: false,
    })
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, raw: &RawValue) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        Error::Decode {
            what: what.to_string(),
            path,
            source: e.into_inner(),
        }
    })
}

/// A reply's `return`: `{}` also stands for `()`.
fn decode_reply<T: serde::de::DeserializeOwned>(what: &str, raw: &RawValue) -> Result<T> {
    match decode::<T>(what, raw) {
        Ok(v) => Ok(v),
        Err(e) => {
            if raw.get().trim() == "{}"
                && let Ok(v) = serde_json::from_str::<T>("null")
            {
                return Ok(v);
            }
            Err(e)
        }
    }
}

/// Reads one message (a line); errors on EOF, on a message over `max`.
async fn read_message<R: AsyncRead + Unpin>(r: &mut BufReader<R>, max: usize) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            if line.is_empty() {
                return Err(Error::Closed(Some("end of stream".into())));
            }
            return Err(Error::Protocol(format!(
                "connection closed in the middle of a message ({} bytes read)",
                line.len()
            )));
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                line.extend_from_slice(&buf[..i]);
                r.consume(i + 1);
                if line.iter().all(u8::is_ascii_whitespace) {
                    line.clear();
                    continue;
                }
                return Ok(line);
            }
            None => {
                let n = buf.len();
                line.extend_from_slice(buf);
                r.consume(n);
            }
        }
        if line.len() > max {
            return Err(Error::Protocol(format!("message over {max} bytes")));
        }
    }
}

async fn read_loop(
    mut reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    shared: Arc<Shared>,
    max: usize,
) {
    let reason = loop {
        let line = match read_message(&mut reader, max).await {
            Ok(l) => l,
            Err(Error::Closed(r)) => break r.unwrap_or_else(|| "end of stream".into()),
            Err(e) => break e.to_string(),
        };
        if let Err(e) = dispatch(&line, &shared) {
            break e.to_string();
        }
        if shared.is_closed() {
            return;
        }
    };
    shared.close(reason);
}

fn typed_event(
    name: &str,
    data: Option<&RawValue>,
    ts: Option<Timestamp>,
) -> Result<(Timestamp, AnyEvent)> {
    let data = data.map_or("{}", |d| d.get());
    let event = AnyEvent::deserialize_data(name, &mut serde_json::Deserializer::from_str(data))
        .or_else(|_| {
            // Known name, data this version can't read: keep it raw.
            serde_json::from_str(data).map(|data| AnyEvent::Unknown {
                name: name.to_string(),
                data,
            })
        })
        .map_err(|e| Error::Protocol(format!("event {name}: {e}")))?;
    let ts = ts.unwrap_or(Timestamp {
        seconds: -1,
        microseconds: -1,
    });
    Ok((ts, event))
}

/// Decodes one event message as the connection does (exposed for
/// benchmarks and tools that read QMP logs).
pub fn parse_event(line: &[u8]) -> Result<(Timestamp, AnyEvent)> {
    let msg: Incoming<'_> = serde_json::from_slice(line)
        .map_err(|e| Error::Protocol(format!("garbled message ({e})")))?;
    match msg.event {
        Some(name) => typed_event(&name, msg.data, msg.timestamp),
        None => Err(Error::Protocol("not an event".into())),
    }
}

fn dispatch(line: &[u8], shared: &Shared) -> Result<()> {
    let msg: Incoming<'_> = serde_json::from_slice(line).map_err(|e| {
        Error::Protocol(format!(
            "garbled message ({e}): {}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        ))
    })?;
    if let Some(name) = msg.event {
        let (ts, event) = typed_event(&name, msg.data, msg.timestamp)?;
        shared.hub.publish(ts, event);
        return Ok(());
    }
    let reply: Reply = match (msg.ret, msg.error) {
        (Some(r), _) => Ok(r),
        (None, Some(e)) => Err(Error::Qmp {
            command: String::new(),
            class: ErrorClass::from_wire(&e.class),
            desc: e.desc,
        }),
        (None, None) => {
            return Err(Error::Protocol(format!(
                "unexpected message: {}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            )));
        }
    };
    let id = msg.id.and_then(|i| i.get().parse::<u64>().ok());
    let tx = id.and_then(|id| {
        shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    });
    match tx {
        Some(tx) => {
            let _ = tx.send(reply);
        }
        None => {
            shared.stray_replies.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

async fn write_plain(w: &mut Writer, bytes: &[u8]) -> std::io::Result<()> {
    match w {
        Writer::Unix(u) => u.write_all(bytes).await,
        Writer::Other(o) => {
            o.write_all(bytes).await?;
            o.flush().await
        }
    }
}

async fn write_with_fds(w: &mut Writer, bytes: &[u8], fds: &[OwnedFd]) -> std::io::Result<()> {
    let Writer::Unix(u) = w else {
        return Err(std::io::Error::other("fd passing needs a Unix socket"));
    };
    let stream: &tokio::net::UnixStream = u.as_ref();
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let sent = stream
        .async_io(tokio::io::Interest::WRITABLE, || {
            let iov = [std::io::IoSlice::new(bytes)];
            let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
            nix::sys::socket::sendmsg::<()>(
                stream.as_raw_fd(),
                &iov,
                &cmsg,
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(std::io::Error::from)
        })
        .await?;
    u.write_all(&bytes[sent..]).await
}

async fn write_loop(mut w: Writer, mut rx: mpsc::UnboundedReceiver<WriteOp>, shared: Arc<Shared>) {
    let mut batch = Vec::new();
    let mut closed = shared.closed_rx.clone();
    loop {
        let op = tokio::select! {
            op = rx.recv() => op,
            _ = closed.wait_for(|c| *c) => None,
        };
        let Some(op) = op else { return };
        let res = if op.fds.is_empty() {
            // Coalesce what is queued into one write.
            batch.clear();
            batch.extend_from_slice(&op.bytes);
            let mut with_fds = None;
            while batch.len() < (256 << 10) {
                match rx.try_recv() {
                    Ok(next) if next.fds.is_empty() => batch.extend_from_slice(&next.bytes),
                    Ok(next) => {
                        with_fds = Some(next);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let mut res = write_plain(&mut w, &batch).await;
            if res.is_ok()
                && let Some(op) = with_fds
            {
                res = write_with_fds(&mut w, &op.bytes, &op.fds).await;
            }
            res
        } else {
            write_with_fds(&mut w, &op.bytes, &op.fds).await
        };
        if let Err(e) = res {
            shared.close(format!("write failed: {e}"));
            return;
        }
    }
}
