//! One QEMU monitor, many clients: [`Proxy`] holds the monitor's
//! connection (a [`Client`]) and serves any number of clients on a Unix
//! socket of its own. Each client gets its own greeting and negotiates
//! its own capabilities (OOB where QEMU has it); its commands go to QEMU
//! under the proxy's ids and its replies come back under its own; every
//! event goes to every client; `exec-oob` stays out of band. One client's
//! end ends nobody else's session.
//!
//! A client's in-band commands run one after the other (QEMU runs in-band
//! commands in order anyway: the next is read from the client once the
//! last is answered, so a client that sends many waits in its own socket,
//! as with QEMU); clients run side by side.
//!
//! # Budgets
//!
//! Every client shares one monitor, so each has a budget
//! ([`ProxyOptions`]), and one over it is told why and dropped; the
//! others never wait for it:
//!
//! | budget | default | over it |
//! |---|---|---|
//! | a message's size (`max_message`) | 64 KiB | dropped |
//! | replies and events unread (`client_bytes`, `client_buffer`) | 4 MiB, 1,024 messages | dropped |
//! | `exec-oob` commands in flight (`max_oob`) | 8 | that command refused, then dropped |
//! | in-band commands in flight | 1 | the next waits, unread, in the client's socket |
//!
//! QEMU reads its monitor a byte per main-loop turn: 2.7 s per MB
//! measured on QEMU 10.0.2, during which no client's command is read, so
//! a message's budget is far below QEMU's own 16 MB limit.
//!
//! Nothing owed is lost: a dropped client gets QEMU's reply to every
//! command the proxy sent on its behalf, an error (`qmp proxy: not run:
//! ...`) for each command read and not sent, then a last error without
//! an id saying why (`qmp proxy: you are disconnected: ...`); it has
//! [`ProxyOptions::drain`] to read them, then the connection is cut.
//!
//! Out of file descriptors, the proxy answers a client it can't serve
//! with an error line (`qmp proxy: out of file descriptors`) and closes
//! it, instead of leaving it unanswered; it does not spin.
//!
//! # The log
//!
//! [`ProxyOptions::log`]: a file created with mode 0600 (only its owner
//! reads it), one JSON object per line, each with `t` (seconds since the
//! proxy started), `client` (its number), and the peer's `pid` and `uid`
//! (`null` where the socket doesn't tell), then one of:
//!
//! - a command: `command`, `arguments`, `oob`, `refused`;
//! - a message that is not a command: `unparsable` (why, in QEMU's
//!   words), `bytes`, and `excerpt` (its first 256 bytes) only when
//!   secrets are kept;
//! - a client dropped for a budget: `dropped` (why).
//!
//! Secrets are replaced by `"<redacted>"` (found by reading QAPI's
//! members):
//!
//! - a `secret` object's `data` (`object-add`, flat or under `props`),
//!   and the `value` of a `qom-set` of a `data` or `password` property;
//! - the `password` of `set_password` and `change-vnc-password`;
//! - the `secret` of `sev-inject-launch-secret`;
//! - a curl driver's `cookie` (`blockdev-add`, `blockdev-reopen`,
//!   `blockdev-create`);
//! - keys typed into the guest, which may spell a password: `send-key`'s
//!   `keys`, the `key` of `input-send-event`'s key events;
//! - the arguments of an HMP `object_add`, `set_password`, `change` or
//!   `sendkey` (`human-monitor-command`).
//!
//! Ids that name a secret object (`password-secret`, `key-secret`,
//! LUKS's `new-secret`) are not secrets and stay. An operator who needs
//! everything asks for it: [`ProxyOptions::log_secrets`] (`qmp proxy
//! --log-secrets`) keeps every argument as sent, and the first 256
//! bytes of each message that is not a command.
//! U+0080 to U+009F, U+2028 and U+2029 are written as `\u` escapes, so a
//! line is a line to every tool.

mod log;
mod queue;
mod session;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::net::UnixListener;

use crate::client::Client;
use crate::error::{Disconnect, Error, Result};
use crate::history::EventRecord;
use crate::peer::line;
use log::Log;
use queue::{Offer, Queue};
use session::ClientSession;

/// What the proxy lets clients do, what it keeps, and each client's
/// budget (see the module's docs).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyOptions {
    /// Only queries (`query-*`) and the commands in `allow` pass; others
    /// are refused with a `GenericError` that says so.
    pub read_only: bool,
    /// Commands let through in read-only mode besides queries.
    pub allow: Vec<String>,
    /// A log of who sent what (format in the module's docs), created
    /// with mode 0600.
    pub log: Option<PathBuf>,
    /// Log secrets too (passwords, `secret` data, cookies), for an
    /// operator who needs everything; off by default.
    pub log_secrets: bool,
    /// Messages (replies and events) a client may have unread before it
    /// is dropped.
    pub client_buffer: usize,
    /// Bytes of replies and events a client may have unread before it is
    /// dropped (one message always fits, however large).
    pub client_bytes: usize,
    /// Longest message accepted from a client, in bytes.
    pub max_message: usize,
    /// `exec-oob` commands a client may have in flight.
    pub max_oob: usize,
    /// How long a dropped client has to read what it is owed.
    pub drain: Duration,
}

impl Default for ProxyOptions {
    fn default() -> ProxyOptions {
        ProxyOptions {
            read_only: false,
            allow: Vec::new(),
            log: None,
            log_secrets: false,
            client_buffer: 1024,
            client_bytes: 4 << 20,
            max_message: 64 << 10,
            max_oob: 8,
            drain: Duration::from_secs(5),
        }
    }
}

/// The negotiated clients, which the fan-out sends events to.
type Registry = Arc<Mutex<HashMap<u64, Arc<Queue>>>>;

/// The proxy's listening socket and settings; [`Proxy::serve`] serves one
/// QEMU connection on it at a time.
pub struct Proxy {
    listener: UnixListener,
    path: PathBuf,
    opts: Arc<ProxyOptions>,
    log: Option<Arc<Log>>,
    next_client: AtomicU64,
    /// The clients being served events (those that negotiated).
    registry: Registry,
    /// A descriptor kept to be given up when the process has no other:
    /// then a client waiting to be accepted can be told, not left. Opened
    /// with the socket, so the proxy's descriptors are all open once it
    /// listens.
    reserve: Mutex<Option<std::fs::File>>,
}

impl Proxy {
    /// Listens at `path` (a socket left there by a proxy that was killed
    /// is replaced; anything else there is an error).
    pub fn bind(path: impl Into<PathBuf>, opts: ProxyOptions) -> Result<Proxy> {
        let path = path.into();
        let listener = listen(&path)?;
        let log = match &opts.log {
            Some(p) => Some(Arc::new(Log::create(p, opts.log_secrets)?)),
            None => None,
        };
        Ok(Proxy {
            listener,
            path,
            opts: Arc::new(opts),
            log,
            next_client: AtomicU64::new(1),
            registry: Registry::default(),
            reserve: Mutex::new(spare_descriptor()),
        })
    }

    /// Where clients connect.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clients connected that have negotiated their capabilities.
    pub fn clients(&self) -> usize {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Serves clients through `qemu` until that connection ends; then
    /// every client's connection is closed (so each learns QEMU is gone)
    /// and the cause is returned. Call it again with a new connection to
    /// go on (clients connect again).
    pub async fn serve(&self, qemu: Client) -> Disconnect {
        let registry = self.registry.clone();
        let fanout = tokio::spawn(fan_out(qemu.clone(), registry.clone()));
        let mut clients = tokio::task::JoinSet::new();
        let mut reserve = self
            .reserve
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .or_else(spare_descriptor);
        // Accepting paused (out of descriptors) until then, or until a
        // client leaves.
        let mut paused: Option<tokio::time::Instant> = None;
        let cause = loop {
            let resume = async {
                if let Some(at) = paused {
                    tokio::time::sleep_until(at).await;
                }
            };
            tokio::select! {
                c = self.listener.accept(), if paused.is_none() => match c {
                    Ok((stream, _)) => {
                        let n = self.next_client.fetch_add(1, Ordering::Relaxed);
                        let session = ClientSession {
                            n,
                            qemu: qemu.clone(),
                            registry: registry.clone(),
                            opts: self.opts.clone(),
                            log: self.log.clone(),
                        };
                        clients.spawn(session.run(stream));
                    }
                    Err(e) if out_of_descriptors(&e) => {
                        let told = reserve.take().is_some() && self.turn_away().await;
                        reserve = spare_descriptor();
                        if !told || reserve.is_none() {
                            tracing::warn!(error = %e, "proxy: out of file descriptors; accepting paused");
                            paused = Some(tokio::time::Instant::now() + Duration::from_millis(250));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy: accept failed; accepting paused");
                        paused = Some(tokio::time::Instant::now() + Duration::from_millis(250));
                    }
                },
                () = resume, if paused.is_some() => {
                    paused = None;
                    reserve = reserve.or_else(spare_descriptor);
                }
                cause = qemu.closed() => break match cause {
                    Error::Closed(d) => d,
                    other => Disconnect::Protocol(other.to_string()),
                },
                Some(_) = clients.join_next(), if !clients.is_empty() => {
                    paused = None;
                    reserve = reserve.or_else(spare_descriptor);
                }
            }
        };
        fanout.abort();
        *self.reserve.lock().unwrap_or_else(|p| p.into_inner()) = reserve;
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        // Each session, aborted, closes its client's connection once what
        // is queued for it is written (within the drain).
        clients.shutdown().await;
        cause
    }

    /// With a descriptor freed: the client waiting first is told the
    /// proxy is out of descriptors, and closed; whether there was one.
    async fn turn_away(&self) -> bool {
        let waiting = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match self.listener.poll_accept(cx) {
                std::task::Poll::Ready(Ok((s, _))) => Some(s),
                _ => None,
            })
        })
        .await;
        if let Some(s) = waiting {
            tracing::warn!("proxy: out of file descriptors; a client was turned away");
            let _ = s.try_write(&peer_error(
                "qmp proxy: out of file descriptors (RLIMIT_NOFILE); try again later",
            ));
            return true;
        }
        false
    }
}

/// A descriptor held in reserve (`/dev/null`), if one can be had.
fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// EMFILE, ENFILE, or the kernel out of memory for a socket.
fn out_of_descriptors(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM]
        .iter()
        .any(|n| e.raw_os_error() == Some(*n as i32))
}

fn peer_error(desc: &str) -> Vec<u8> {
    crate::peer::error_reply("GenericError", desc, None)
}

/// Every event, to every negotiated client; one over its budget is
/// dropped (its session tells it and ends it).
async fn fan_out(qemu: Client, registry: Registry) {
    let mut events = qemu.events();
    loop {
        let record = match events.next().await {
            Ok(r) => r,
            Err(Error::EventsLost(n)) => {
                tracing::warn!(lost = n, "proxy: events lost");
                continue;
            }
            Err(_) => return,
        };
        let line = Bytes::from(event_line(&record));
        let mut reg = registry.lock().unwrap_or_else(|p| p.into_inner());
        reg.retain(|_, q| matches!(q.event(line.clone()), Offer::Queued));
    }
}

/// An event as QEMU sent it.
fn event_line(r: &EventRecord) -> Vec<u8> {
    let data = r
        .event
        .serialize_data(serde_json::value::Serializer)
        .unwrap_or(Value::Null);
    let mut o = Map::new();
    o.insert("event".into(), Value::from(r.event.name()));
    if !data.is_null() {
        o.insert("data".into(), data);
    }
    o.insert(
        "timestamp".into(),
        serde_json::to_value(r.timestamp).unwrap_or(Value::Null),
    );
    line(&Value::Object(o))
}

/// Listens on `path`. A socket there that nobody listens on any more (a
/// proxy killed before it could remove it: connecting is refused) is
/// replaced; one that is served, or any other file, is not touched.
fn listen(path: &Path) -> Result<UnixListener> {
    let failed = |source: std::io::Error| Error::Listen {
        path: path.to_path_buf(),
        source,
    };
    match UnixListener::bind(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            use std::os::unix::fs::FileTypeExt;
            let is_socket =
                std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
            let refused = std::os::unix::net::UnixStream::connect(path)
                .is_err_and(|c| c.kind() == std::io::ErrorKind::ConnectionRefused);
            if !(is_socket && refused) {
                return Err(failed(std::io::Error::new(
                    e.kind(),
                    format!(
                        "{e}: something is there, and {}",
                        if is_socket {
                            "it is served (another proxy?)"
                        } else {
                            "it is not a socket"
                        }
                    ),
                )));
            }
            std::fs::remove_file(path).map_err(failed)?;
            UnixListener::bind(path).map_err(failed)
        }
        r => r.map_err(failed),
    }
}
