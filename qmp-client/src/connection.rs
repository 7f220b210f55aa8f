//! The one task that owns a connection: the reader, the writer, the
//! pending calls and the end of the connection.
//!
//! Calls reach the task over two bounded channels (in-band and
//! out-of-band). The task is one poll function (as tokio-postgres's
//! connection is): each turn it takes queued calls, writes, and reads
//! what came, a bounded amount of each, until none has work; it watches
//! [`crate::Client::close`] and the drop of the last client handle. A command is written only while its caller still
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

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
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
    name: Cow<'static, str>,
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

/// Work done per source in one turn, at most: messages read, calls
/// accepted from each channel.
const DRAIN: usize = 64;

/// Turns of [`Conn::poll`] with work done before the task yields to the
/// runtime (a flood of events never holds the thread).
const TURNS: usize = 16;

/// Messages read in one poll, at most: a burst of events yields to the
/// runtime every this many, far below a subscriber's default buffer
/// (1,024), so a subscriber on the same thread reads between (a burst of
/// 1,100 once filled a subscriber's queue in one poll).
const READ_PER_POLL: usize = 128;

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
        reader,
        mut writer,
        mut in_band,
        mut oob,
        handles_gone,
        shared,
        max_message,
        max_in_flight,
        in_band_ids,
    } = parts;
    let close = shared.close_requested.notified();
    tokio::pin!(close);
    let mut conn = Conn {
        reader,
        line: Vec::with_capacity(4096),
        pending: Waiting::default(),
        outbox: Outbox::new(in_band_ids),
        started: Vec::new(),
        handles_gone,
        shared: &shared,
        max_message,
        max_in_flight,
    };
    tracing::debug!("QMP connection up");
    let cause = loop {
        let turn = std::future::poll_fn(|cx| {
            if close.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Turn::End(Disconnect::ClosedByClient));
            }
            conn.poll(cx, &mut writer, &mut in_band, &mut oob)
        })
        .await;
        match turn {
            Turn::End(cause) => break cause,
            // Work is left: every other task runs first, a `block_on`
            // future too (a runtime polls that one only between rounds of
            // its tasks: a task that woke itself would be polled dozens
            // of times in a row).
            Turn::Yield => tokio::task::yield_now().await,
        }
    };
    let Conn {
        reader,
        pending,
        outbox,
        ..
    } = conn;
    end(cause, &shared, pending, outbox, &mut in_band, &mut oob);
    writer.shutdown().await;
    drop(writer);
    drop(reader);
}

/// How a poll of the connection ended.
enum Turn {
    /// The connection ended, for this reason.
    End(Disconnect),
    /// Work is left: yield to the runtime, then poll again.
    Yield,
}

/// The task's state between polls.
struct Conn<'a> {
    reader: BufReader<Reader>,
    /// The message being read.
    line: Vec<u8>,
    pending: Waiting,
    outbox: Outbox,
    /// Calls whose first byte a write just sent (kept for its room).
    started: Vec<Started>,
    handles_gone: oneshot::Receiver<()>,
    shared: &'a Shared,
    max_message: usize,
    max_in_flight: usize,
}

impl Conn<'_> {
    /// One poll of the task: turns of accepting calls, writing and
    /// reading, each source a bounded amount per turn (a flood of events
    /// never starves writing or new calls, nor the other way round),
    /// until none has work (every one has registered the waker) or
    /// [`TURNS`] turns have passed or [`READ_PER_POLL`] messages were
    /// read ([`Turn::Yield`]: the task yields, then polls again);
    /// [`Turn::End`] with why the connection ends.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        writer: &mut Writer,
        in_band: &mut mpsc::Receiver<Request>,
        oob: &mut mpsc::Receiver<Request>,
    ) -> Poll<Turn> {
        if Pin::new(&mut self.handles_gone).poll(cx).is_ready() {
            return Poll::Ready(Turn::End(Disconnect::HandlesDropped));
        }
        // A source that answered `Pending` has the waker and is not asked
        // again in this poll (nothing on this thread can fill it
        // meanwhile; another thread that does wakes the task). The reader
        // is asked again after a write: an in-process peer answers at
        // once.
        let (mut oob_idle, mut in_band_idle, mut read_idle) = (false, false, false);
        let mut read = 0;
        for _ in 0..TURNS {
            let mut worked = false;
            // Calls: out-of-band ones first; in-band ones while fewer
            // than `max_in_flight` are written and unanswered.
            match self.take_calls(cx, oob, &mut oob_idle, false) {
                Ok(took) => worked |= took,
                Err(cause) => return Poll::Ready(Turn::End(cause)),
            }
            match self.take_calls(cx, in_band, &mut in_band_idle, true) {
                Ok(took) => worked |= took,
                Err(cause) => return Poll::Ready(Turn::End(cause)),
            }
            if !self.outbox.is_empty() {
                let started = &mut self.started;
                match self
                    .outbox
                    .poll_write(cx, writer, &self.shared.counters, started)
                {
                    Poll::Ready(Ok(())) => {
                        // The clock only for the `debug` log.
                        let now = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
                        for s in started.drain(..) {
                            tracing::debug!(id = s.id, command = %s.name, "command sent");
                            self.shared.counters.sent.fetch_add(1, Ordering::Relaxed);
                            self.pending.started(s, now);
                        }
                        worked = true;
                        read_idle = false;
                    }
                    Poll::Ready(Err(error)) => {
                        return Poll::Ready(Turn::End(Disconnect::Io {
                            op: "writing",
                            error: error.into(),
                        }));
                    }
                    Poll::Pending => {}
                }
            }
            for _ in 0..DRAIN {
                if read_idle || read == READ_PER_POLL {
                    break;
                }
                match wire::poll_message(&mut self.reader, cx, &mut self.line, self.max_message) {
                    Poll::Ready(Ok(())) => {
                        let r = dispatch(
                            &self.line,
                            self.shared,
                            &mut self.pending,
                            &mut self.outbox.ids,
                        );
                        self.line.clear();
                        if let Err(cause) = r {
                            return Poll::Ready(Turn::End(cause));
                        }
                        worked = true;
                        read += 1;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Turn::End(Disconnect::from(e))),
                    Poll::Pending => read_idle = true,
                }
            }
            if !worked {
                return Poll::Pending;
            }
            if read == READ_PER_POLL {
                break;
            }
        }
        // Work is left: let the runtime run others first.
        Poll::Ready(Turn::Yield)
    }

    /// Takes up to [`DRAIN`] calls from `rx` into the outbox (in-band
    /// ones, `bounded`, only while fewer than `max_in_flight` are written
    /// and unanswered); whether it took any. `Err` when every handle is
    /// gone.
    fn take_calls(
        &mut self,
        cx: &mut Context<'_>,
        rx: &mut mpsc::Receiver<Request>,
        idle: &mut bool,
        bounded: bool,
    ) -> Result<bool, Disconnect> {
        let mut took = false;
        for _ in 0..DRAIN {
            if *idle
                || bounded && self.pending.in_band.len() + self.outbox.in_band >= self.max_in_flight
            {
                break;
            }
            match rx.poll_recv(cx) {
                Poll::Ready(Some(req)) => {
                    self.outbox.accept(req, &self.shared.counters);
                    took = true;
                }
                Poll::Ready(None) => return Err(Disconnect::HandlesDropped),
                Poll::Pending => *idle = true,
            }
        }
        Ok(took)
    }
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
