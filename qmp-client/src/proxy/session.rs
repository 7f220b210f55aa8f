//! One client's session: its greeting and negotiation, its commands
//! (in-band in turn, `exec-oob` side by side up to the budget), the log,
//! and its end: a client dropped for a budget is answered for every
//! command the proxy read from it before the connection is cut.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::task::JoinSet;

use super::log::{Log, Who};
use super::queue::Queue;
use super::{ProxyOptions, Registry};
use crate::client::Client;
use crate::error::Error;
use crate::peer::{Request, Session, error_reply, line, request, return_reply};
use crate::wire::JsonSplitter;

/// One client's connection.
pub(super) struct ClientSession {
    pub(super) n: u64,
    pub(super) qemu: Client,
    pub(super) registry: Registry,
    pub(super) opts: Arc<ProxyOptions>,
    pub(super) log: Option<Arc<Log>>,
}

/// How the reading loop ended.
enum End {
    /// The client closed its side (or can't be written to any more).
    Left,
    /// Over a budget: why.
    Dropped(String),
}

impl ClientSession {
    pub(super) async fn run(self, stream: UnixStream) {
        let cred = stream.peer_cred().ok();
        let who = Who {
            client: self.n,
            pid: cred.and_then(|c| c.pid()),
            uid: cred.map(|c| c.uid()),
        };
        let (mut reader, w) = stream.into_split();
        let o = &self.opts;
        let queue = Queue::new(o.client_buffer, o.client_bytes, o.drain);
        let writer = tokio::spawn(queue.clone().write_to(w));
        let _ends = CloseOnDrop(queue.clone());
        let g = self.qemu.greeting();
        let qemu_oob = g.oob;
        let caps: Vec<&str> = if qemu_oob { vec!["oob"] } else { Vec::new() };
        queue.owed(line(
            &json!({"QMP": {"version": g.version, "capabilities": caps}}),
        ));
        let mut splitter = JsonSplitter::default();
        let mut chunk = vec![0u8; 16 << 10];
        let mut session = Session::default();
        let mut oob = JoinSet::new();
        let end = loop {
            if let Some(why) = queue.dropping() {
                break End::Dropped(why);
            }
            if queue.gone() {
                break End::Left;
            }
            let Some(msg) = splitter.next_message() else {
                if splitter.pending() > o.max_message {
                    break End::Dropped(self.too_large(who, splitter.pending()));
                }
                tokio::select! {
                    biased;
                    () = queue.until_dropping() => {}
                    Some(_) = oob.join_next(), if !oob.is_empty() => {}
                    r = reader.read(&mut chunk) => match r {
                        Ok(0) | Err(_) => break End::Left,
                        Ok(k) => splitter.push(&chunk[..k]),
                    },
                }
                continue;
            };
            if msg.len() > o.max_message {
                break End::Dropped(self.too_large(who, msg.len()));
            }
            let req = match request(msg, false) {
                Ok(r) => r,
                Err((desc, id)) => {
                    if let Some(log) = &self.log {
                        log.unparsable(who, msg, msg.len(), &desc);
                    }
                    queue.owed(error_reply("GenericError", &desc, id.as_deref()));
                    continue;
                }
            };
            let id = req.id.as_deref();
            // Negotiation and the exec-oob rules, as QEMU answers them.
            let was = session.negotiated;
            if let Some(out) = session.gate(&req, qemu_oob) {
                if was {
                    self.note(who, &req, true);
                } else if session.negotiated {
                    self.registry
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(self.n, queue.clone());
                }
                queue.owed(out);
                continue;
            }
            let refused = self.refusal(&req);
            self.note(who, &req, refused.is_some());
            if let Some(desc) = refused {
                queue.owed(error_reply("GenericError", &desc, id));
                continue;
            }
            if req.oob {
                if oob.len() >= o.max_oob {
                    let why = format!(
                        "more than {} exec-oob commands in flight: the proxy's budget per client",
                        o.max_oob
                    );
                    queue.owed(error_reply(
                        "GenericError",
                        &format!("qmp proxy: {why}"),
                        id,
                    ));
                    break End::Dropped(why);
                }
                let owed = Owed::new(queue.clone(), &req);
                let qemu = self.qemu.clone();
                oob.spawn(async move {
                    let out = answer(&qemu, &req).await;
                    owed.pay(out);
                });
                continue;
            }
            let owed = Owed::new(queue.clone(), &req);
            let out = answer(&self.qemu, &req).await;
            let qemu_gone = out.is_none();
            owed.pay(out);
            if qemu_gone {
                // `serve` closes every client.
                break End::Left;
            }
        };
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.n);
        match end {
            End::Left => {
                // Nobody to answer: what runs in QEMU finishes there.
                oob.detach_all();
                queue.finish("the client closed its end");
            }
            End::Dropped(why) => {
                tracing::warn!(client = self.n, reason = %why, "proxy: client dropped");
                if let Some(log) = &self.log {
                    log.dropped(who, &why);
                }
                // Every command read and not run is answered.
                while let Some(msg) = splitter.next_message() {
                    let id = match request(msg, false) {
                        Ok(r) => r.id,
                        Err((_, id)) => id,
                    };
                    queue.owed(error_reply(
                        "GenericError",
                        &format!("qmp proxy: not run: {why}"),
                        id.as_deref(),
                    ));
                }
                // Commands in QEMU are answered, within the grace.
                let deadline = queue.deadline().unwrap_or_else(tokio::time::Instant::now);
                let all = async { while oob.join_next().await.is_some() {} };
                if tokio::time::timeout_at(deadline, all).await.is_err() {
                    // Each left unanswered says so as it is dropped.
                    oob.shutdown().await;
                }
                queue.close(Some(error_reply(
                    "GenericError",
                    &format!("qmp proxy: you are disconnected: {why}"),
                    None,
                )));
            }
        }
        drop(reader);
        let _ = writer.await;
    }

    /// A message over the budget: logged; why the client is dropped.
    fn too_large(&self, who: Who, bytes: usize) -> String {
        let max = self.opts.max_message;
        if let Some(log) = &self.log {
            log.unparsable(
                who,
                b"",
                bytes,
                &format!("message too large: over {max} bytes ({bytes} read)"),
            );
        }
        format!(
            "a message of more than {max} bytes: the proxy's budget per message \
             (QEMU reads its monitor a byte at a time, every client waiting)"
        )
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

    fn note(&self, who: Who, req: &Request, refused: bool) {
        if let Some(log) = &self.log {
            log.command(who, req, refused);
        }
    }
}

/// Ends the client's writer when the session ends, also when it is
/// aborted (QEMU gone): what is queued gets the grace to go out.
struct CloseOnDrop(Arc<Queue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.finish("the proxy's connection to QEMU ended");
    }
}

/// A reply the client is owed: paid with QEMU's answer, or, dropped
/// unpaid (the client was dropped and the wait for QEMU cut short), an
/// error that says the command may have run.
struct Owed {
    queue: Option<Arc<Queue>>,
    id: Option<Box<serde_json::value::RawValue>>,
}

impl Owed {
    fn new(queue: Arc<Queue>, req: &Request) -> Owed {
        Owed {
            queue: Some(queue),
            id: req.id.clone(),
        }
    }

    /// QEMU's answer (`None`: QEMU has gone, and every client with it).
    fn pay(mut self, out: Option<Vec<u8>>) {
        if let (Some(q), Some(out)) = (self.queue.take(), out) {
            q.owed(out);
        }
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        if let Some(q) = self.queue.take() {
            q.owed(error_reply(
                "GenericError",
                "qmp proxy: disconnected before QEMU answered (the command may have run)",
                self.id.as_deref(),
            ));
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
