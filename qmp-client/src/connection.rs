//! The one task that owns a connection: the reader, the writer, the
//! pending calls and the end of the connection.
//!
//! Calls reach the task over two bounded channels (in-band and
//! out-of-band). The task `select!`s over incoming bytes, queued
//! commands, writability, [`crate::Client::close`] and the drop of the
//! last client handle. A command is written only while its caller still
//! waits: one whose caller timed out or dropped its future before its
//! first byte reached the socket is discarded, never sent later. At most
//! [`crate::Options::max_in_flight`] in-band commands are written and not
//! yet answered, so QEMU's in-band queue never fills and an `exec-oob`
//! command always gets through.
//!
//! When the task ends (EOF, an I/O error, a protocol error, `close()`,
//! the last handle dropped) it records the cause, fails every pending and
//! queued call with it, wakes every waiter and event stream, shuts the
//! socket down and drops it. Nothing of the connection outlives it.

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};

use crate::client::{UnknownMembers, UnknownRecord};
use crate::error::{Disconnect, Error, ErrorClass};
use crate::events::{EventRecord, Hub};
use crate::wire::{self, Incoming};

/// What a call gets back: the raw `return`, or an error.
pub(crate) type Reply = Result<Box<RawValue>, Error>;

/// A command on its way to QEMU.
pub(crate) struct Request {
    pub(crate) name: Box<str>,
    /// The command without its `id` and closing brace (see
    /// [`wire::encode_command`]); the task adds them.
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) oob: bool,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// Counters of a connection (see [`crate::Client::stats`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) replies: AtomicU64,
    pub(crate) late_replies: AtomicU64,
    pub(crate) stray_replies: AtomicU64,
    pub(crate) abandoned: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) malformed_events: AtomicU64,
    pub(crate) unknown_members: AtomicU64,
}

/// What the connection task shares with client handles and event
/// streams. It holds no sender of the task's channels, so it keeps
/// nothing alive.
pub(crate) struct Shared {
    pub(crate) hub: Hub,
    pub(crate) cause: OnceLock<Disconnect>,
    pub(crate) closed: watch::Receiver<bool>,
    pub(crate) close_requested: Notify,
    pub(crate) counters: Counters,
    /// What to do with members the bindings don't know.
    pub(crate) unknown_policy: UnknownMembers,
    /// The latest unknown members met (at most [`KEPT_UNKNOWN`]).
    pub(crate) unknown: std::sync::Mutex<std::collections::VecDeque<UnknownRecord>>,
}

/// Unknown members kept for [`crate::Client::unknown_members`], at most.
pub(crate) const KEPT_UNKNOWN: usize = 256;

impl Shared {
    /// Counts, logs and keeps unknown members met decoding `source` (a
    /// command's reply or an event).
    pub(crate) fn report_unknown(&self, source: &str, found: Vec<qmp_types::rt::UnknownMember>) {
        if found.is_empty() {
            return;
        }
        self.counters
            .unknown_members
            .fetch_add(found.len() as u64, Ordering::Relaxed);
        let mut kept = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        for member in found {
            tracing::warn!(%source, member = %member.key, r#type = member.type_name, "member unknown to the bindings (a QEMU newer than they cover?)");
            if kept.len() == KEPT_UNKNOWN {
                kept.pop_front();
            }
            kept.push_back(UnknownRecord {
                source: source.to_string(),
                member,
            });
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.cause.get().is_some()
    }

    pub(crate) fn closed_error(&self) -> Error {
        Error::Closed(
            self.cause
                .get()
                .cloned()
                .unwrap_or(Disconnect::HandlesDropped),
        )
    }
}

/// The write half: a Unix socket (which can pass fds) or any stream.
pub(crate) enum Writer {
    Unix(tokio::net::unix::OwnedWriteHalf),
    Other(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Writer {
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Unix(u) => u.write_all(bytes).await,
            Writer::Other(o) => {
                o.write_all(bytes).await?;
                o.flush().await
            }
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self {
            Writer::Unix(u) => Pin::new(u).poll_write_vectored(cx, bufs),
            Writer::Other(o) => match Pin::new(&mut **o).poll_write_vectored(cx, bufs) {
                Poll::Ready(Ok(n)) => {
                    // A buffered writer must not sit on a command.
                    match Pin::new(&mut **o).poll_flush(cx) {
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        _ => Poll::Ready(Ok(n)),
                    }
                }
                other => other,
            },
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Writer::Unix(_) => Poll::Ready(Ok(())),
            Writer::Other(o) => Pin::new(&mut **o).poll_flush(cx),
        }
    }

    /// Sends `bytes` with `fds` (SCM_RIGHTS) in one `sendmsg`; how many
    /// bytes went.
    fn poll_send_fds(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
        fds: &[OwnedFd],
    ) -> Poll<std::io::Result<usize>> {
        let Writer::Unix(u) = self else {
            return Poll::Ready(Err(std::io::Error::other("fd passing needs a Unix socket")));
        };
        let stream: &tokio::net::UnixStream = u.as_ref();
        let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        loop {
            match stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            let r = stream.try_io(tokio::io::Interest::WRITABLE, || {
                let iov = [IoSlice::new(bytes)];
                let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
                nix::sys::socket::sendmsg::<()>(
                    stream.as_raw_fd(),
                    &iov,
                    &cmsg,
                    nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                    None,
                )
                .map_err(std::io::Error::from)
            });
            match r {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    async fn shutdown(&mut self) {
        let r = match self {
            Writer::Unix(u) => tokio::time::timeout(SHUTDOWN_GRACE, u.shutdown()).await,
            Writer::Other(o) => tokio::time::timeout(SHUTDOWN_GRACE, o.shutdown()).await,
        };
        if let Ok(Err(e)) = r {
            tracing::trace!(error = %e, "socket shutdown failed");
        }
    }
}

/// Messages handled per turn of the read branch, at most, when more are
/// already buffered.
const DRAIN: usize = 64;

/// How long the task lets the socket's shutdown take at the end.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

/// A command being written.
struct Entry {
    bytes: Vec<u8>,
    /// Bytes already written.
    offset: usize,
    fds: Vec<OwnedFd>,
    /// Until the first byte is written: the caller's reply channel.
    started: Option<Started>,
    oob: bool,
}

/// What becomes a pending call once the first byte is written.
struct Started {
    id: u64,
    name: Box<str>,
    reply: oneshot::Sender<Reply>,
    oob: bool,
}

/// A call whose command was written, awaiting its reply.
struct Pending {
    name: Box<str>,
    reply: oneshot::Sender<Reply>,
    sent: Instant,
    oob: bool,
}

/// Command ids. An id is taken when a command enters the outbox and
/// given back when its reply arrives (or when it is discarded unsent), so
/// ids stay as small as the number of commands outstanding: QEMU reads
/// the socket a byte at a time, and every byte of a command costs it a
/// system call.
#[derive(Default)]
struct Ids {
    free: Vec<u64>,
    next: u64,
}

impl Ids {
    fn take(&mut self) -> u64 {
        self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn give_back(&mut self, id: u64) {
        self.free.push(id);
    }
}

/// Commands accepted from the channels and not yet fully written.
#[derive(Default)]
struct Outbox {
    entries: VecDeque<Entry>,
    /// In-band entries among them.
    in_band: usize,
    ids: Ids,
}

impl Outbox {
    fn push(&mut self, r: Request) {
        if !r.oob {
            self.in_band += 1;
        }
        let id = self.ids.take();
        let mut bytes = r.bytes;
        wire::finish_command(&mut bytes, id);
        let entry = Entry {
            bytes,
            offset: 0,
            fds: r.fds,
            started: Some(Started {
                id,
                name: r.name,
                reply: r.reply,
                oob: r.oob,
            }),
            oob: r.oob,
        };
        if r.oob {
            // Out-of-band goes before every in-band command not started.
            let at = self
                .entries
                .iter()
                .position(|e| e.offset == 0 && !e.oob)
                .unwrap_or(self.entries.len());
            self.entries.insert(at, entry);
        } else {
            self.entries.push_back(entry);
        }
    }

    /// Drops entries not started whose caller is gone.
    fn prune(&mut self, counters: &Counters) {
        let before = self.entries.len();
        let mut in_band_gone = 0;
        let ids = &mut self.ids;
        self.entries.retain(|e| {
            let gone = match &e.started {
                Some(s) if e.offset == 0 && s.reply.is_closed() => {
                    ids.give_back(s.id);
                    true
                }
                _ => false,
            };
            if gone && !e.oob {
                in_band_gone += 1;
            }
            !gone
        });
        self.in_band -= in_band_gone;
        counters
            .abandoned
            .fetch_add((before - self.entries.len()) as u64, Ordering::Relaxed);
    }

    /// One write (a `writev`, or a `sendmsg` for an entry with fds) of
    /// what is queued; returns the calls that started with it.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        w: &mut Writer,
        counters: &Counters,
    ) -> Poll<std::io::Result<Vec<Started>>> {
        self.prune(counters);
        let Some(front) = self.entries.front() else {
            return match w.poll_flush(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(Vec::new())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            };
        };
        let n = if front.offset == 0 && !front.fds.is_empty() {
            match w.poll_send_fds(cx, &front.bytes, &front.fds) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        } else {
            let mut slices = Vec::with_capacity(self.entries.len().min(64));
            for (i, e) in self.entries.iter().enumerate() {
                if i > 0 && !e.fds.is_empty() || slices.len() == 64 {
                    break;
                }
                slices.push(IoSlice::new(&e.bytes[e.offset..]));
            }
            match w.poll_write_vectored(cx, &slices) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        };
        let mut left = n;
        let mut started = Vec::new();
        while left > 0 {
            let Some(e) = self.entries.front_mut() else {
                break;
            };
            if let Some(s) = e.started.take() {
                started.push(s);
            }
            if e.offset == 0 {
                // Its fds went with its first byte.
                e.fds.clear();
            }
            let take = left.min(e.bytes.len() - e.offset);
            e.offset += take;
            left -= take;
            if e.offset == e.bytes.len()
                && let Some(done) = self.entries.pop_front()
                && !done.oob
            {
                self.in_band -= 1;
            }
        }
        Poll::Ready(Ok(started))
    }
}

/// Everything the task needs, handed over by the handshake.
pub(crate) struct Parts {
    pub(crate) reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    pub(crate) writer: Writer,
    pub(crate) in_band: mpsc::Receiver<Request>,
    pub(crate) oob: mpsc::Receiver<Request>,
    /// Fires (with an error) when the last client handle is dropped.
    pub(crate) handles_gone: oneshot::Receiver<()>,
    pub(crate) events: broadcast::Sender<Arc<EventRecord>>,
    pub(crate) closed: watch::Sender<bool>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) max_message: usize,
    pub(crate) max_in_flight: usize,
}

/// The connection task. Returns when the connection has ended and every
/// waiter has been told why.
pub(crate) async fn run(parts: Parts) {
    let Parts {
        mut reader,
        mut writer,
        mut in_band,
        mut oob,
        mut handles_gone,
        events,
        closed,
        shared,
        max_message,
        max_in_flight,
    } = parts;
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut pending_in_band = 0usize;
    let mut outbox = Outbox::default();
    let mut line = Vec::with_capacity(4096);
    let close = shared.close_requested.notified();
    tokio::pin!(close);
    tracing::debug!("QMP connection up");
    let cause = loop {
        let room = pending_in_band + outbox.in_band < max_in_flight;
        let writing = !outbox.entries.is_empty();
        // Not `biased`: under a flood of events the read branch is always
        // ready, and a fixed order would starve writing and new calls.
        tokio::select! {
            () = &mut close => break Disconnect::ClosedByClient,
            _ = &mut handles_gone => break Disconnect::HandlesDropped,
            r = wire::read_message(&mut reader, &mut line, max_message) => {
                if let Err(e) = r {
                    break Disconnect::from(e);
                }
                // This message, then those already buffered (a few, so
                // that writing gets its turn during a flood of events).
                let mut r = Ok(());
                for turn in 1..=DRAIN {
                    r = dispatch(&line, &shared, &events, &mut pending, &mut pending_in_band, &mut outbox.ids);
                    line.clear();
                    if r.is_err() || turn == DRAIN {
                        break;
                    }
                    match wire::buffered_message(&mut reader, &mut line, max_message) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            r = Err(Disconnect::from(e));
                            break;
                        }
                    }
                }
                if let Err(cause) = r {
                    break cause;
                }
            }
            r = std::future::poll_fn(|cx| outbox.poll_write(cx, &mut writer, &shared.counters)), if writing => {
                match r {
                    Ok(started) => {
                        let now = Instant::now();
                        for s in started {
                            tracing::debug!(id = s.id, command = %s.name, "command sent");
                            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
                            let p = Pending { name: s.name, reply: s.reply, sent: now, oob: s.oob };
                            if !p.oob {
                                pending_in_band += 1;
                            }
                            pending.insert(s.id, p);
                        }
                    }
                    Err(error) => break Disconnect::Io { op: "writing", error: error.into() },
                }
            }
            r = oob.recv() => match r {
                Some(req) => accept(req, &mut outbox, &shared.counters),
                None => break Disconnect::HandlesDropped,
            },
            r = in_band.recv(), if room => match r {
                Some(req) => accept(req, &mut outbox, &shared.counters),
                None => break Disconnect::HandlesDropped,
            },
        }
    };
    end(
        cause,
        &shared,
        &closed,
        pending,
        outbox,
        &mut in_band,
        &mut oob,
    );
    drop(events);
    writer.shutdown().await;
    drop(writer);
    drop(reader);
}

fn accept(req: Request, outbox: &mut Outbox, counters: &Counters) {
    if req.reply.is_closed() {
        counters.abandoned.fetch_add(1, Ordering::Relaxed);
        return;
    }
    outbox.push(req);
}

/// Tells everyone why the connection ended.
fn end(
    cause: Disconnect,
    shared: &Shared,
    closed: &watch::Sender<bool>,
    pending: HashMap<u64, Pending>,
    outbox: Outbox,
    in_band: &mut mpsc::Receiver<Request>,
    oob: &mut mpsc::Receiver<Request>,
) {
    match &cause {
        Disconnect::ClosedByClient | Disconnect::HandlesDropped | Disconnect::PeerClosed => {
            tracing::debug!(%cause, pending = pending.len(), "QMP connection ended");
        }
        _ => tracing::warn!(%cause, pending = pending.len(), "QMP connection ended"),
    }
    let _ = shared.cause.set(cause.clone());
    closed.send_replace(true);
    for (_, p) in pending {
        let _ = p.reply.send(Err(Error::Closed(cause.clone())));
    }
    for e in outbox.entries {
        if let Some(s) = e.started {
            let _ = s.reply.send(Err(Error::Closed(cause.clone())));
        }
    }
    for rx in [in_band, oob] {
        rx.close();
        while let Ok(req) = rx.try_recv() {
            let _ = req.reply.send(Err(Error::Closed(cause.clone())));
        }
    }
}

/// Handles one message from QEMU. `Err` ends the connection.
fn dispatch(
    line: &[u8],
    shared: &Shared,
    events: &broadcast::Sender<Arc<EventRecord>>,
    pending: &mut HashMap<u64, Pending>,
    pending_in_band: &mut usize,
    ids: &mut Ids,
) -> Result<(), Disconnect> {
    let msg: Incoming<'_> = serde_json::from_slice(line).map_err(|e| {
        Disconnect::Protocol(format!("garbled message ({e}): {}", wire::excerpt(line)))
    })?;
    if let Some(name) = msg.event {
        let (ts, event) = wire::typed_event(
            &name,
            msg.data,
            msg.timestamp,
            shared.unknown_policy,
            &mut |found| shared.report_unknown(&name, found),
        )
        .map_err(|e| {
            Disconnect::Protocol(format!("garbled event ({e}): {}", wire::excerpt(line)))
        })?;
        shared.counters.events.fetch_add(1, Ordering::Relaxed);
        if let qmp_types::AnyEvent::Malformed { error, .. } = &event {
            shared
                .counters
                .malformed_events
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(event = %name, %error, "event data does not fit its type; kept as AnyEvent::Malformed");
        } else {
            tracing::trace!(event = %name, "event");
        }
        shared.hub.publish(events, ts, event, line.len());
        return Ok(());
    }
    let reply: Result<Box<RawValue>, (ErrorClass, String)> = match (msg.ret, msg.error) {
        (Some(r), _) => Ok(r),
        (None, Some(e)) => Err((ErrorClass::from_wire(&e.class), e.desc)),
        (None, None) => {
            return Err(Disconnect::Protocol(format!(
                "unexpected message: {}",
                wire::excerpt(line)
            )));
        }
    };
    let Some(raw_id) = msg.id else {
        // Every command this client sends has an id: an error without one
        // is QEMU's JSON parser failing on what it read, and nothing
        // tells which call it belongs to or what QEMU will make of the
        // rest of the stream.
        let what = match &reply {
            Err((class, desc)) => format!("{class}: {desc}"),
            Ok(_) => "a reply without an id".to_string(),
        };
        return Err(Disconnect::Protocol(format!(
            "QEMU could not parse a command it read ({what})"
        )));
    };
    let found = raw_id
        .get()
        .parse::<u64>()
        .ok()
        .and_then(|id| pending.remove(&id).map(|p| (id, p)));
    let Some((id, p)) = found else {
        shared
            .counters
            .stray_replies
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(id = raw_id.get(), "reply matches no call");
        return Ok(());
    };
    if !p.oob {
        *pending_in_band -= 1;
    }
    ids.give_back(id);
    shared.counters.replies.fetch_add(1, Ordering::Relaxed);
    let took = p.sent.elapsed();
    let reply = reply.map_err(|(class, desc)| Error::Qmp {
        command: p.name.to_string(),
        class,
        desc,
    });
    tracing::debug!(id, command = %p.name, ok = reply.is_ok(), ?took, "reply received");
    if p.reply.send(reply).is_err() {
        shared.counters.late_replies.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(id, command = %p.name, "reply to a call that gave up");
    }
    Ok(())
}
