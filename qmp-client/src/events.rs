//! Events: a history bounded by count and by bytes, with QEMU's
//! timestamps, and fan-out to any number of subscribers (a slow one loses
//! events, is told so, and never blocks anyone).
//!
//! The connection task owns the only strong broadcast sender; the hub
//! keeps a weak one to subscribe with. When the task ends, every
//! [`EventStream`] drains what it has and then gets
//! [`Error::Closed`] with the connection's cause.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use qmp_types::{AnyEvent, Event, Timestamp};
use tokio::sync::broadcast;

use crate::connection::Shared;
use crate::error::{Error, Result};

/// One event as received.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventRecord {
    /// Position in the connection's event sequence (0, 1, 2, ...).
    pub seq: u64,
    /// When QEMU sent it.
    pub timestamp: Timestamp,
    /// The event; [`AnyEvent::Malformed`] when QEMU's data did not fit a
    /// known event's type, [`AnyEvent::Unknown`] for a name the bindings
    /// don't know.
    pub event: AnyEvent,
    /// Size of the message on the wire, in bytes (what the history's byte
    /// bound counts).
    pub wire_size: usize,
}

impl EventRecord {
    /// This record's event as `E`: `Ok(None)` for another event,
    /// `Err(EventDecode)` when it is an `E` whose data did not decode.
    pub fn typed<E: Event<Any = AnyEvent>>(&self) -> Result<Option<&E>> {
        if let AnyEvent::Malformed { name, error, .. } = &self.event
            && name == E::NAME
        {
            return Err(Error::EventDecode {
                event: name.clone(),
                error: error.clone(),
            });
        }
        Ok(E::from_any_ref(&self.event))
    }
}

/// Where to start looking for events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Events QEMU stamped strictly after this time (microsecond
    /// resolution; QEMU's clock, which may differ from this host's).
    Time(Timestamp),
    /// Events at or after this position of the sequence (see
    /// [`crate::Client::event_cursor`]): immune to clock quirks.
    Cursor(u64),
}

impl Since {
    /// Whether `r` is within.
    pub fn admits(&self, r: &EventRecord) -> bool {
        match self {
            Since::Time(t) => r.timestamp > *t,
            Since::Cursor(c) => r.seq >= *c,
        }
    }

    /// Now, as a `Since::Time` (events stamped after this call).
    pub fn now() -> Since {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Since::Time(Timestamp {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            microseconds: i64::from(d.subsec_micros()),
        })
    }
}

pub(crate) struct Hub {
    history: Mutex<History>,
    tx: broadcast::WeakSender<Arc<EventRecord>>,
}

struct History {
    records: VecDeque<Arc<EventRecord>>,
    bytes: usize,
    max_count: usize,
    max_bytes: usize,
    next_seq: u64,
}

impl Hub {
    /// A hub and the strong sender the connection task keeps.
    pub(crate) fn new(
        max_count: usize,
        max_bytes: usize,
        subscriber_buffer: usize,
    ) -> (Hub, broadcast::Sender<Arc<EventRecord>>) {
        let (tx, _) = broadcast::channel(subscriber_buffer.max(1));
        let hub = Hub {
            history: Mutex::new(History {
                records: VecDeque::new(),
                bytes: 0,
                max_count,
                max_bytes,
                next_seq: 0,
            }),
            tx: tx.downgrade(),
        };
        (hub, tx)
    }

    /// Records an event: into the history (oldest dropped past either
    /// bound), then to every subscriber.
    pub(crate) fn publish(
        &self,
        tx: &broadcast::Sender<Arc<EventRecord>>,
        timestamp: Timestamp,
        event: AnyEvent,
        wire_size: usize,
    ) {
        let rec = {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            let rec = Arc::new(EventRecord {
                seq: h.next_seq,
                timestamp,
                event,
                wire_size,
            });
            h.next_seq += 1;
            if h.max_count > 0 && wire_size <= h.max_bytes {
                h.bytes += wire_size;
                h.records.push_back(rec.clone());
                while h.records.len() > h.max_count || h.bytes > h.max_bytes {
                    match h.records.pop_front() {
                        Some(old) => h.bytes -= old.wire_size,
                        None => break,
                    }
                }
            }
            rec
        };
        // No subscriber is not an error.
        let _ = tx.send(rec);
    }

    pub(crate) fn cursor(&self) -> u64 {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_seq
    }

    /// Bytes and events the history holds now.
    pub(crate) fn size(&self) -> (usize, usize) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        (h.records.len(), h.bytes)
    }

    pub(crate) fn find(
        &self,
        since: Since,
        f: &mut dyn FnMut(&EventRecord) -> bool,
    ) -> Vec<Arc<EventRecord>> {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.records
            .iter()
            .filter(|r| since.admits(r) && f(r))
            .cloned()
            .collect()
    }

    /// A new subscription; `None` once the connection has ended.
    pub(crate) fn subscribe(&self) -> Option<broadcast::Receiver<Arc<EventRecord>>> {
        self.tx.upgrade().map(|tx| tx.subscribe())
    }
}

/// A subscription to every event of the connection, from the moment it
/// was made. It does not keep the connection open.
///
/// Read it with [`EventStream::next`], or as a `futures_core::Stream`
/// (items as `next` returns them; the stream ends after the
/// [`Error::Closed`] item).
pub struct EventStream {
    state: State,
    shared: Arc<Shared>,
    /// The stream has yielded its `Closed` item.
    ended: bool,
}

type Recv = broadcast::Receiver<Arc<EventRecord>>;
type Pending = std::pin::Pin<
    Box<dyn Future<Output = (Result<Arc<EventRecord>, broadcast::error::RecvError>, Recv)> + Send>,
>;

/// Where the receiver is: idle, inside a pending receive, or gone (the
/// connection ended and everything before was read).
enum State {
    Idle(Recv),
    Receiving(Pending),
    Closed,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("open", &!matches!(self.state, State::Closed))
            .finish()
    }
}

impl EventStream {
    pub(crate) fn new(shared: Arc<Shared>) -> EventStream {
        let state = match shared.hub.subscribe() {
            Some(rx) => State::Idle(rx),
            None => State::Closed,
        };
        EventStream {
            state,
            shared,
            ended: false,
        }
    }

    /// The next event. `Err(EventsLost(n))` when this subscriber fell
    /// behind by `n` events (the history may still have them); the stream
    /// goes on after it. `Err(Closed(cause))` once the connection has
    /// ended and every event that arrived before has been read.
    pub async fn next(&mut self) -> Result<Arc<EventRecord>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Arc<EventRecord>>> {
        loop {
            match std::mem::replace(&mut self.state, State::Closed) {
                State::Closed => return Poll::Ready(Err(self.shared.closed_error())),
                State::Idle(mut rx) => {
                    self.state = State::Receiving(Box::pin(async move {
                        let r = rx.recv().await;
                        (r, rx)
                    }));
                }
                State::Receiving(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.state = State::Receiving(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready((r, rx)) => {
                        return Poll::Ready(match r {
                            Ok(r) => {
                                self.state = State::Idle(rx);
                                Ok(r)
                            }
                            Err(broadcast::error::RecvError::Lagged(n)) => {
                                self.state = State::Idle(rx);
                                Err(Error::EventsLost(n))
                            }
                            Err(broadcast::error::RecvError::Closed) => {
                                Err(self.shared.closed_error())
                            }
                        });
                    }
                },
            }
        }
    }

    /// The next event of type `E`, skipping others (losses are reported).
    /// An `E` whose data did not decode gives `Err(EventDecode)`.
    pub async fn next_of<E: Event<Any = AnyEvent> + Clone>(&mut self) -> Result<(Timestamp, E)> {
        loop {
            let r = self.next().await?;
            if let Some(e) = r.typed::<E>()? {
                return Ok((r.timestamp, e.clone()));
            }
        }
    }
}

/// Waits for the first event of type `E` admitted by `since` and matching
/// `pred`: the history first, then live events. The subscription is made
/// before the history is read, so nothing falls in between. An `E` that
/// did not decode ends the wait with `Err(EventDecode)`.
pub(crate) async fn wait_for<E: Event<Any = AnyEvent> + Clone>(
    shared: &Shared,
    since: Since,
    pred: &(dyn Fn(&E) -> bool + Sync),
) -> Result<(Timestamp, E)> {
    let from_history = || -> Result<Option<(Timestamp, E)>> {
        let mut check = |r: &EventRecord| match r.typed::<E>() {
            Ok(Some(e)) => pred(e),
            Ok(None) => false,
            Err(_) => true,
        };
        match shared.hub.find(since, &mut check).into_iter().next() {
            Some(r) => Ok(r.typed::<E>()?.map(|e| (r.timestamp, e.clone()))),
            None => Ok(None),
        }
    };
    let Some(mut rx) = shared.hub.subscribe() else {
        // Ended already: what the history has, or why it ended.
        return from_history()?.ok_or_else(|| shared.closed_error());
    };
    loop {
        if let Some(found) = from_history()? {
            return Ok(found);
        }
        loop {
            match rx.recv().await {
                Ok(r) => {
                    if since.admits(&r)
                        && let Some(e) = r.typed::<E>()?
                        && pred(e)
                    {
                        return Ok((r.timestamp, e.clone()));
                    }
                }
                // Fell behind: look in the history again.
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => {
                    return from_history()?.ok_or_else(|| shared.closed_error());
                }
            }
        }
    }
}

impl futures_core::Stream for EventStream {
    type Item = Result<Arc<EventRecord>>;

    /// Each event (or loss report) as [`EventStream::next`] gives it; the
    /// [`Error::Closed`] item last, then the end.
    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(this.poll_event(cx));
        if matches!(item, Err(Error::Closed(_))) {
            this.ended = true;
        }
        Poll::Ready(Some(item))
    }
}
