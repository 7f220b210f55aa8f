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
//! QMP answers in-band commands in the order it read them; `exec-oob`
//! ones may overtake them. So an `exec-oob` command always carries an id
//! and its reply is found by it, while in-band commands go without one
//! (unless [`crate::Options::in_band_ids`]) and a reply without an id is
//! the oldest in-band call's. A message QEMU fails to parse is answered
//! without an id among the in-band replies: the client sends nothing it
//! would fail to parse ([`wire::encode_checked`]), so each command gets
//! exactly one reply and the order holds.
//!
//! When the task ends (EOF, an I/O error, a protocol error, `close()`,
//! the last handle dropped) it records the cause, fails every pending and
//! queued call with it, wakes every waiter and event stream, shuts the
//! socket down and drops it. Nothing of the connection outlives it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::value::RawValue;
use tokio::io::BufReader;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Disconnect, Error};
use crate::history;
use crate::outbox::{Ids, Outbox, Reply, Request, Started};
use crate::state::Shared;
use crate::transport::{Reader, Writer};
use crate::wire::{self, Incoming};

/// A call whose command was written, awaiting its reply.
struct Pending {
    name: Box<str>,
    reply: oneshot::Sender<Reply>,
    /// When it was written, for the `debug` log of the time it took
    /// (read only when that level is enabled).
    sent: Option<Instant>,
}

/// Calls written and not yet answered.
#[derive(Default)]
struct Waiting {
    /// In-band calls, oldest first (QMP answers them in this order), with
    /// their id if they were sent with one.
    in_band: VecDeque<(Option<u64>, Pending)>,
    /// Out-of-band calls, by id.
    oob: HashMap<u64, Pending>,
}

impl Waiting {
    fn len(&self) -> usize {
        self.in_band.len() + self.oob.len()
    }

    fn started(&mut self, s: Started, now: Option<Instant>) {
        let p = Pending {
            name: s.name,
            reply: s.reply,
            sent: now,
        };
        match (s.oob, s.id) {
            (true, Some(id)) => {
                self.oob.insert(id, p);
            }
            (_, id) => self.in_band.push_back((id, p)),
        }
    }

    /// The call a reply answers: by its id (an integer, as this client
    /// sends), or, without one, the oldest in-band call if that went
    /// without one too. `Ok(None)`: an id that matches no call.
    fn take(&mut self, id: Option<&str>) -> Result<Option<(Option<u64>, Pending)>, ()> {
        match id {
            None => match self.in_band.front() {
                Some((None, _)) => Ok(self.in_band.pop_front()),
                _ => Err(()),
            },
            Some(raw) => {
                let Ok(id) = raw.parse::<u64>() else {
                    return Ok(None);
                };
                if let Some(p) = self.oob.remove(&id) {
                    return Ok(Some((Some(id), p)));
                }
                let at = self.in_band.iter().position(|(i, _)| *i == Some(id));
                Ok(at.and_then(|at| self.in_band.remove(at)))
            }
        }
    }

    fn drain(self) -> impl Iterator<Item = Pending> {
        self.in_band
            .into_iter()
            .map(|(_, p)| p)
            .chain(self.oob.into_values())
    }
}

/// Messages handled per turn of the read branch, at most, when more are
/// already buffered.
const DRAIN: usize = 64;

/// Everything the task needs, handed over by the handshake.
pub(crate) struct Parts {
    pub(crate) reader: BufReader<Reader>,
    pub(crate) writer: Writer,
    pub(crate) in_band: mpsc::Receiver<Request>,
    pub(crate) oob: mpsc::Receiver<Request>,
    /// Fires (with an error) when the last client handle is dropped.
    pub(crate) handles_gone: oneshot::Receiver<()>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) max_message: usize,
    pub(crate) max_in_flight: usize,
    /// See [`crate::Options::in_band_ids`].
    pub(crate) in_band_ids: bool,
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
        shared,
        max_message,
        max_in_flight,
        in_band_ids,
    } = parts;
    let mut pending = Waiting::default();
    let mut outbox = Outbox::new(in_band_ids);
    let mut line = Vec::with_capacity(4096);
    let close = shared.close_requested.notified();
    tokio::pin!(close);
    tracing::debug!("QMP connection up");
    let cause = loop {
        let room = pending.in_band.len() + outbox.in_band < max_in_flight;
        let writing = !outbox.is_empty();
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
                    r = dispatch(&line, &shared, &mut pending, &mut outbox.ids);
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
                        // The clock only for the `debug` log.
                        let now = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
                        for s in started {
                            tracing::debug!(id = s.id, command = %s.name, "command sent");
                            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
                            pending.started(s, now);
                        }
                    }
                    Err(error) => break Disconnect::Io { op: "writing", error: error.into() },
                }
            }
            r = oob.recv() => match r {
                Some(req) => outbox.accept(req, &shared.counters),
                None => break Disconnect::HandlesDropped,
            },
            r = in_band.recv(), if room => match r {
                Some(req) => outbox.accept(req, &shared.counters),
                None => break Disconnect::HandlesDropped,
            },
        }
    };
    end(cause, &shared, pending, outbox, &mut in_band, &mut oob);
    writer.shutdown().await;
    drop(writer);
    drop(reader);
}

/// Tells everyone why the connection ended.
fn end(
    cause: Disconnect,
    shared: &Shared,
    pending: Waiting,
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
    shared.finish(cause.clone());
    shared.hub.close();
    for p in pending.drain() {
        let _ = p.reply.send(Err(Error::Closed(cause.clone())));
    }
    outbox.fail_all(|| Error::Closed(cause.clone()));
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
    pending: &mut Waiting,
    ids: &mut Ids,
) -> Result<(), Disconnect> {
    let mut msg: Incoming<'_> = serde_json::from_slice(line).map_err(|e| {
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
        shared
            .hub
            .publish(ts, event, line.len(), history::estimated_size(line));
        return Ok(());
    }
    let Some(reply) = msg.take_outcome() else {
        return Err(Disconnect::Protocol(format!(
            "unexpected message: {}",
            wire::excerpt(line)
        )));
    };
    // An id of `null` is no id: this client never sends one.
    let raw_id = msg.id.map(RawValue::get).filter(|id| *id != "null");
    let found = pending.take(raw_id).map_err(|()| {
        // A reply without an id while the oldest in-band call has one (or
        // there is none): nothing tells which call it belongs to.
        let what = match &reply {
            Err((class, desc)) => format!("{class}: {desc}"),
            Ok(_) => "a reply".to_string(),
        };
        Disconnect::Protocol(format!(
            "QEMU sent a reply without an id that no call waits for ({what})"
        ))
    })?;
    let Some((id, p)) = found else {
        shared
            .counters
            .stray_replies
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(id = raw_id, "reply matches no call");
        return Ok(());
    };
    if let Some(id) = id {
        ids.give_back(id);
    }
    shared.counters.replies.fetch_add(1, Ordering::Relaxed);
    let took = p.sent.map(|t| t.elapsed());
    let reply = wire::reply_result(&p.name, reply);
    tracing::debug!(id, command = %p.name, ok = reply.is_ok(), ?took, "reply received");
    if p.reply.send(reply).is_err() {
        shared.counters.late_replies.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(id, command = %p.name, "reply to a call that gave up");
    }
    Ok(())
}
