//! The event history of a connection, bounded by count and by bytes,
//! with QEMU's timestamps ([`EventRecord`], [`Since`]), and each
//! subscriber's queue, bounded the same way: a subscriber that doesn't
//! read loses its oldest events (and is told how many), never holds more
//! than its bounds, and never blocks the connection.
//!
//! Sizes are estimates of memory, not wire bytes: a decoded event can be
//! many times its JSON (`[0,0,0]` is 2 bytes a value on the wire and a
//! machine word or more decoded), so each value counts for
//! [`VALUE_COST`] bytes beside the message's own bytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use qmp_types::{AnyEvent, Event, Timestamp};
use tokio::sync::Notify;

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
    /// Size of the message on the wire, in bytes.
    pub wire_size: usize,
    /// Estimated memory the decoded event holds, in bytes (what the
    /// history's and subscribers' byte bounds count): the message's bytes
    /// and 32 bytes for each JSON value in it.
    pub size: usize,
}

/// Bytes a decoded JSON value is counted for, beyond its text: a
/// `serde_json::Value` is 32 bytes, a typed member rarely more.
pub(crate) const VALUE_COST: usize = 32;

/// The estimated memory of a decoded message (see [`EventRecord::size`]):
/// its bytes and [`VALUE_COST`] for each value in it. Counts separators and
/// openings, strings included, so it errs on the large side. Linear, no
/// allocation.
pub(crate) fn estimated_size(line: &[u8]) -> usize {
    let values = line
        .iter()
        .filter(|&&b| matches!(b, b',' | b'[' | b'{' | b':'))
        .count()
        + 1;
    line.len().saturating_add(values.saturating_mul(VALUE_COST))
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

/// The history and the subscribers of one connection.
pub(crate) struct Hub {
    history: Mutex<History>,
    subscribers: Mutex<Subscribers>,
}

struct History {
    records: VecDeque<Arc<EventRecord>>,
    bytes: usize,
    max_count: usize,
    max_bytes: usize,
    next_seq: u64,
}

struct Subscribers {
    queues: Vec<Weak<Queue>>,
    /// Set when the connection ends: no new subscriber, and every queue
    /// is told.
    closed: bool,
    max_count: usize,
    max_bytes: usize,
}

/// One subscriber's events not yet read.
struct Queue {
    state: Mutex<QueueState>,
    /// Wakes the subscriber (a permit is kept when none waits).
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    records: VecDeque<Arc<EventRecord>>,
    bytes: usize,
    /// Events dropped since the subscriber last heard of a loss.
    lost: u64,
    closed: bool,
}

/// Why [`Subscription::recv`] gave no event.
pub(crate) enum Missed {
    /// This many events were dropped (the subscriber fell behind its
    /// bounds); the stream goes on.
    Lagged(u64),
    /// The connection ended and everything before was read.
    Closed,
}

/// A subscriber's end: every event from the moment it was made, within
/// its bounds.
pub(crate) struct Subscription {
    queue: Arc<Queue>,
}

impl Subscription {
    /// The next event; a loss report first when events were dropped.
    pub(crate) async fn recv(&self) -> std::result::Result<Arc<EventRecord>, Missed> {
        loop {
            {
                let mut s = self.queue.state.lock().unwrap_or_else(|e| e.into_inner());
                if s.lost > 0 {
                    return Err(Missed::Lagged(std::mem::take(&mut s.lost)));
                }
                if let Some(r) = s.records.pop_front() {
                    s.bytes -= r.size;
                    return Ok(r);
                }
                if s.closed {
                    return Err(Missed::Closed);
                }
            }
            self.queue.ready.notified().await;
        }
    }
}

impl Hub {
    /// A hub: the history's bounds, and each subscriber's.
    pub(crate) fn new(
        max_count: usize,
        max_bytes: usize,
        subscriber_count: usize,
        subscriber_bytes: usize,
    ) -> Hub {
        Hub {
            history: Mutex::new(History {
                records: VecDeque::new(),
                bytes: 0,
                max_count,
                max_bytes,
                next_seq: 0,
            }),
            subscribers: Mutex::new(Subscribers {
                queues: Vec::new(),
                closed: false,
                max_count: subscriber_count.max(1),
                max_bytes: subscriber_bytes,
            }),
        }
    }

    /// Records an event: into the history (oldest dropped past either
    /// bound), then to every subscriber (each dropping its oldest past its
    /// bounds; the newest is always kept, however large).
    pub(crate) fn publish(
        &self,
        timestamp: Timestamp,
        event: AnyEvent,
        wire_size: usize,
        size: usize,
    ) {
        let rec = {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            let rec = Arc::new(EventRecord {
                seq: h.next_seq,
                timestamp,
                event,
                wire_size,
                size,
            });
            h.next_seq += 1;
            if h.max_count > 0 && size <= h.max_bytes {
                h.bytes += size;
                h.records.push_back(rec.clone());
                while h.records.len() > h.max_count || h.bytes > h.max_bytes {
                    match h.records.pop_front() {
                        Some(old) => h.bytes -= old.size,
                        None => break,
                    }
                }
            }
            rec
        };
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        let (max_count, max_bytes) = (subs.max_count, subs.max_bytes);
        subs.queues.retain(|w| {
            let Some(q) = w.upgrade() else {
                return false;
            };
            {
                let mut s = q.state.lock().unwrap_or_else(|e| e.into_inner());
                s.bytes += rec.size;
                s.records.push_back(rec.clone());
                while s.records.len() > 1 && (s.records.len() > max_count || s.bytes > max_bytes) {
                    if let Some(old) = s.records.pop_front() {
                        s.bytes -= old.size;
                        s.lost += 1;
                    }
                }
            }
            q.ready.notify_one();
            true
        });
    }

    /// Ends every subscription (after what it holds is read) and refuses
    /// new ones.
    pub(crate) fn close(&self) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.closed = true;
        for q in subs.queues.drain(..).filter_map(|w| w.upgrade()) {
            q.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
            q.ready.notify_one();
        }
    }

    pub(crate) fn cursor(&self) -> u64 {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_seq
    }

    /// Events and (estimated) bytes the history holds now.
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

    /// The records `f` selects, with the position of the oldest record the
    /// history holds and the position the next event will have, read
    /// together (nothing can arrive in between).
    pub(crate) fn find_from(
        &self,
        f: &mut dyn FnMut(&EventRecord) -> bool,
    ) -> (Vec<Arc<EventRecord>>, u64, u64) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let found = h.records.iter().filter(|r| f(r)).cloned().collect();
        let oldest = h.records.front().map_or(h.next_seq, |r| r.seq);
        (found, oldest, h.next_seq)
    }

    /// A new subscription; `None` once the connection has ended.
    pub(crate) fn subscribe(&self) -> Option<Subscription> {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        if subs.closed {
            return None;
        }
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
        });
        subs.queues.push(Arc::downgrade(&queue));
        Some(Subscription { queue })
    }
}
