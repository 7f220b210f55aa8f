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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::BufReader;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Disconnect, Error};
use crate::history;
use crate::outbox::{Ids, Outbox, Reply, Request};
use crate::state::Shared;
use crate::transport::{Reader, Writer};
use crate::wire::{self, Incoming};

/// A call whose command was written, awaiting its reply.
struct Pending {
    name: Box<str>,
    reply: oneshot::Sender<Reply>,
    sent: Instant,
    oob: bool,
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
                    r = dispatch(&line, &shared, &mut pending, &mut pending_in_band, &mut outbox.ids);
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
    shared.finish(cause.clone());
    shared.hub.close();
    for (_, p) in pending {
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
    pending: &mut HashMap<u64, Pending>,
    pending_in_band: &mut usize,
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
    let reply = wire::reply_result(&p.name, reply);
    tracing::debug!(id, command = %p.name, ok = reply.is_ok(), ?took, "reply received");
    if p.reply.send(reply).is_err() {
        shared.counters.late_replies.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(id, command = %p.name, "reply to a call that gave up");
    }
    Ok(())
}
