//! One QEMU monitor, many clients: [`Proxy`] holds the monitor's
//! connection (a [`Client`]) and serves any number of clients on a Unix
//! socket of its own. Each client gets its own greeting and negotiates
//! its own capabilities (OOB where QEMU has it); its commands go to QEMU
//! under the proxy's ids and its replies come back under its own; every
//! event goes to every client; `exec-oob` stays out of band. One client's
//! end ends nobody else's session; a client that stops reading while
//! events come is dropped, so that nobody else stalls.
//!
//! A client's in-band commands run one after the other (QEMU runs in-band
//! commands in order anyway); clients run side by side.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::client::Client;
use crate::error::{Disconnect, Error, Result};
use crate::history::EventRecord;
use crate::peer::{Request, Session, error_reply, line, request, return_reply};
use crate::wire::JsonSplitter;

/// What the proxy lets clients do, and what it keeps.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyOptions {
    /// Only queries (`query-*`) and the commands in `allow` pass; others
    /// are refused with a `GenericError` that says so.
    pub read_only: bool,
    /// Commands let through in read-only mode besides queries.
    pub allow: Vec<String>,
    /// A log of who sent what: one JSON line per command (`t` seconds
    /// since the proxy started, `client` number, the peer's `pid` and
    /// `uid`, `command`, `arguments`, `oob`, `refused`).
    pub log: Option<PathBuf>,
    /// Messages (replies and events) a client may have unread before it
    /// is dropped.
    pub client_buffer: usize,
    /// Longest line accepted from a client, in bytes.
    pub max_message: usize,
}

impl Default for ProxyOptions {
    fn default() -> ProxyOptions {
        ProxyOptions {
            read_only: false,
            allow: Vec::new(),
            log: None,
            client_buffer: 1024,
            max_message: 16 << 20,
        }
    }
}

/// A connected client, as the fan-out sees it.
struct Downstream {
    tx: mpsc::Sender<Vec<u8>>,
    /// The task writing to the client: aborted, it drops the write half,
    /// and the client sees the end of the connection; the reading side
    /// then stops at its next reply.
    writer: AbortHandle,
}

impl Downstream {
    fn drop_connection(&self) {
        self.writer.abort();
    }
}

type Registry = Arc<Mutex<HashMap<u64, Downstream>>>;

/// The proxy's listening socket and settings; [`Proxy::serve`] serves one
/// QEMU connection on it at a time.
pub struct Proxy {
    listener: UnixListener,
    path: PathBuf,
    opts: ProxyOptions,
    log: Option<Arc<Mutex<std::fs::File>>>,
    start: Instant,
    next_client: AtomicU64,
    /// The clients being served events (those that negotiated).
    registry: Registry,
}

impl Proxy {
    /// Listens at `path` (which must not exist).
    pub fn bind(path: impl Into<PathBuf>, opts: ProxyOptions) -> Result<Proxy> {
        let path = path.into();
        let listener = listen(&path)?;
        let log = match &opts.log {
            Some(p) => Some(Arc::new(Mutex::new(std::fs::File::create(p).map_err(
                |source| Error::Record {
                    path: p.clone(),
                    source,
                },
            )?))),
            None => None,
        };
        Ok(Proxy {
            listener,
            path,
            opts,
            log,
            start: Instant::now(),
            next_client: AtomicU64::new(1),
            registry: Registry::default(),
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
        let cause = loop {
            tokio::select! {
                c = self.listener.accept() => match c {
                    Ok((stream, _)) => {
                        let n = self.next_client.fetch_add(1, Ordering::Relaxed);
                        let session = ClientSession {
                            n,
                            qemu: qemu.clone(),
                            registry: registry.clone(),
                            opts: self.opts.clone(),
                            log: self.log.clone(),
                            start: self.start,
                        };
                        clients.spawn(session.run(stream));
                    }
                    Err(e) => tracing::warn!(error = %e, "proxy: accept failed"),
                },
                cause = qemu.closed() => break match cause {
                    Error::Closed(d) => d,
                    other => Disconnect::Protocol(other.to_string()),
                },
                Some(_) = clients.join_next(), if !clients.is_empty() => {}
            }
        };
        fanout.abort();
        for (_, d) in registry.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            d.drop_connection();
        }
        clients.shutdown().await;
        cause
    }
}

/// Every event, to every negotiated client; one that has too much unread
/// is dropped.
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
        let line = event_line(&record);
        let mut reg = registry.lock().unwrap_or_else(|p| p.into_inner());
        reg.retain(|n, d| match d.tx.try_send(line.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(client = n, "proxy: client does not read; dropped");
                d.drop_connection();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
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

/// One client's connection.
struct ClientSession {
    n: u64,
    qemu: Client,
    registry: Registry,
    opts: ProxyOptions,
    log: Option<Arc<Mutex<std::fs::File>>>,
    start: Instant,
}

impl ClientSession {
    async fn run(self, stream: UnixStream) {
        let cred = stream.peer_cred().ok();
        let (r, mut w) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(self.opts.client_buffer.max(1));
        let writer = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if w.write_all(&b).await.is_err() {
                    return;
                }
            }
            let _ = w.shutdown().await;
        });
        let qemu_oob = self.qemu.greeting().oob;
        let g = self.qemu.greeting();
        let caps: Vec<&str> = if qemu_oob { vec!["oob"] } else { Vec::new() };
        let greeting = json!({"QMP": {"version": g.version, "capabilities": caps}});
        if tx.send(line(&greeting)).await.is_err() {
            return;
        }
        let mut reader = r;
        let mut splitter = JsonSplitter::default();
        let mut chunk = vec![0u8; 16 << 10];
        let mut session = Session::default();
        loop {
            let Some(buf) = splitter.next_message() else {
                if splitter.pending() > self.opts.max_message {
                    let _ = tx
                        .send(error_reply(
                            "GenericError",
                            "JSON parse error, message too large",
                            None,
                        ))
                        .await;
                    break;
                }
                match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => splitter.push(&chunk[..n]),
                }
                continue;
            };
            let req = match request(buf, false) {
                Ok(r) => r,
                Err((desc, id)) => {
                    let _ = tx
                        .send(error_reply("GenericError", &desc, id.as_deref()))
                        .await;
                    continue;
                }
            };
            let id = req.id.as_deref();
            // Negotiation and the exec-oob rules, as QEMU answers them.
            let was = session.negotiated;
            let out = match session.gate(&req, qemu_oob) {
                Some(out) => {
                    if was {
                        self.note(&req, cred.as_ref(), true);
                    } else if session.negotiated {
                        self.register(&tx, &writer);
                    }
                    Some(out)
                }
                None => {
                    let refused = self.refusal(&req);
                    self.note(&req, cred.as_ref(), refused.is_some());
                    refused.map(|desc| error_reply("GenericError", &desc, id))
                }
            };
            if let Some(out) = out {
                if tx.send(out).await.is_err() {
                    break;
                }
                continue;
            }
            if req.oob {
                let (qemu, tx) = (self.qemu.clone(), tx.clone());
                tokio::spawn(async move {
                    let out = answer(&qemu, &req).await;
                    if let Some(out) = out {
                        let _ = tx.send(out).await;
                    }
                });
                continue;
            }
            match answer(&self.qemu, &req).await {
                Some(out) => {
                    if tx.send(out).await.is_err() {
                        break;
                    }
                }
                // QEMU has gone: `serve` closes every client.
                None => break,
            }
        }
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.n);
        drop(tx);
        let _ = writer.await;
    }

    /// Events start once the client has negotiated.
    fn register(&self, tx: &mpsc::Sender<Vec<u8>>, writer: &tokio::task::JoinHandle<()>) {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                self.n,
                Downstream {
                    tx: tx.clone(),
                    writer: writer.abort_handle(),
                },
            );
    }

    /// Why the proxy refuses `req` (read-only mode), if it does.
    fn refusal(&self, req: &Request) -> Option<String> {
        if self.opts.read_only
            && !req.name.starts_with("query-")
            && !self.opts.allow.contains(&req.name)
        {
            return Some(format!(
                "qmp proxy: {} is not allowed (read-only: queries and --allow only)",
                req.name
            ));
        }
        None
    }

    fn note(&self, req: &Request, cred: Option<&tokio::net::unix::UCred>, refused: bool) {
        let Some(log) = &self.log else { return };
        let args = Value::Object(req.args.clone().unwrap_or_default());
        let entry = json!({
            "t": (self.start.elapsed().as_secs_f64() * 1e6).round() / 1e6,
            "client": self.n,
            "pid": cred.and_then(|c| c.pid()),
            "uid": cred.map(|c| c.uid()),
            "command": req.name,
            "arguments": args,
            "oob": req.oob,
            "refused": refused,
        });
        let mut f = log.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(f, "{entry}") {
            tracing::warn!(error = %e, "proxy: writing the log failed");
        }
    }
}

/// QEMU's answer to `req`, as a line for the client; `None` when QEMU
/// has gone.
async fn answer(qemu: &Client, req: &Request) -> Option<Vec<u8>> {
    let id = req.id.as_deref();
    let args = Value::Object(req.args.clone().unwrap_or_default());
    let args = match serde_json::value::to_raw_value(&args) {
        Ok(a) => a,
        Err(e) => return Some(error_reply("GenericError", &format!("qmp proxy: {e}"), id)),
    };
    match qemu.execute_json(&req.name, req.oob, &args).await {
        Ok(raw) => Some(return_reply(raw.get(), id)),
        Err(Error::Qmp { class, desc, .. }) => Some(error_reply(class.as_str(), &desc, id)),
        Err(Error::Closed(_)) => None,
        Err(e) => Some(error_reply("GenericError", &format!("qmp proxy: {e}"), id)),
    }
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
