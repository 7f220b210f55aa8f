//! The event history of a connection, bounded by count and by bytes,
//! with QEMU's timestamps, and the broadcast channel its subscribers read
//! ([`EventRecord`], [`Since`]).
//!
//! The connection task owns the only strong broadcast sender; the hub
//! keeps a weak one to subscribe with, so it keeps nothing alive.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use qmp_types::{AnyEvent, Event, Timestamp};
use tokio::sync::broadcast;

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

/// The history and the subscribers' channel of one connection.
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

    /// Events and bytes the history holds now.
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
