//! Events: a bounded history with QEMU's timestamps, fan-out to any
//! number of subscribers (a slow one loses events, reported, and never
//! blocks anyone), and waiting for an event that can't miss one that
//! arrived before the command's reply.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use qmp_types::{AnyEvent, Event, Timestamp};
use tokio::sync::broadcast;

use crate::error::{Error, Result};

/// One event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Position in the connection's event sequence (0, 1, 2, ...).
    pub seq: u64,
    /// When QEMU sent it.
    pub timestamp: Timestamp,
    /// The event.
    pub event: AnyEvent,
}

/// Where to start looking for events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Events QEMU stamped strictly after this time (the seed's `after`,
    /// at microsecond resolution).
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
    tx: broadcast::Sender<Arc<EventRecord>>,
}

struct History {
    records: VecDeque<Arc<EventRecord>>,
    capacity: usize,
    next_seq: u64,
}

impl Hub {
    pub(crate) fn new(history: usize, subscriber_buffer: usize) -> Hub {
        let (tx, _) = broadcast::channel(subscriber_buffer.max(1));
        Hub {
            history: Mutex::new(History {
                records: VecDeque::new(),
                capacity: history,
                next_seq: 0,
            }),
            tx,
        }
    }

    pub(crate) fn publish(&self, timestamp: Timestamp, event: AnyEvent) {
        let rec = {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            let rec = Arc::new(EventRecord {
                seq: h.next_seq,
                timestamp,
                event,
            });
            h.next_seq += 1;
            if h.capacity > 0 {
                if h.records.len() == h.capacity {
                    h.records.pop_front();
                }
                h.records.push_back(rec.clone());
            }
            rec
        };
        // No subscriber is not an error.
        let _ = self.tx.send(rec);
    }

    pub(crate) fn cursor(&self) -> u64 {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_seq
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

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.tx.subscribe()
    }
}

/// A subscription to every event of the connection.
#[derive(Debug)]
pub struct EventStream {
    rx: broadcast::Receiver<Arc<EventRecord>>,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<Arc<EventRecord>>) -> EventStream {
        EventStream { rx }
    }

    /// The next event. `Err(EventsLost(n))` when this subscriber fell
    /// behind by `n` events (they are still in the history); the stream
    /// goes on after it. `Err(Closed)` once the connection is closed and
    /// every event has been read.
    pub async fn next(&mut self) -> Result<Arc<EventRecord>> {
        match self.rx.recv().await {
            Ok(r) => Ok(r),
            Err(broadcast::error::RecvError::Lagged(n)) => Err(Error::EventsLost(n)),
            Err(broadcast::error::RecvError::Closed) => Err(Error::Closed(None)),
        }
    }

    /// The next event of type `E`, skipping others (losses are reported).
    pub async fn next_of<E: Event + Clone>(&mut self) -> Result<(Timestamp, E)> {
        loop {
            let r = self.next().await?;
            if let Some(e) = E::from_any_ref(&r.event) {
                return Ok((r.timestamp, e.clone()));
            }
        }
    }
}

/// Waits for the first event of type `E` admitted by `since` and matching
/// `pred`: the history first, then live events. The subscription is made
/// before the history is read, so nothing falls in between.
pub(crate) async fn wait_for<E: Event + Clone>(
    hub: &Hub,
    closed: &tokio::sync::watch::Receiver<bool>,
    since: Since,
    pred: &(dyn Fn(&E) -> bool + Sync),
) -> Result<(Timestamp, E)> {
    let mut rx = hub.subscribe();
    let mut closed = closed.clone();
    loop {
        let mut check = |r: &EventRecord| E::from_any_ref(&r.event).is_some_and(pred);
        if let Some(r) = hub.find(since, &mut check).into_iter().next()
            && let Some(e) = E::from_any_ref(&r.event)
        {
            return Ok((r.timestamp, e.clone()));
        }
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(r) => {
                        if since.admits(&r)
                            && let Some(e) = E::from_any_ref(&r.event)
                            && pred(e)
                        {
                            return Ok((r.timestamp, e.clone()));
                        }
                    }
                    // Fell behind: look in the history again.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return Err(Error::Closed(None)),
                },
                _ = closed.wait_for(|c| *c) => {
                    // Drain what arrived before the close, then give up.
                    let mut check = |r: &EventRecord| E::from_any_ref(&r.event).is_some_and(pred);
                    if let Some(r) = hub.find(since, &mut check).into_iter().next()
                        && let Some(e) = E::from_any_ref(&r.event)
                    {
                        return Ok((r.timestamp, e.clone()));
                    }
                    return Err(Error::Closed(None));
                }
            }
        }
    }
}
