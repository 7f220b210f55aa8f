//! What a client has to read: its replies and events, bounded by count
//! and by bytes, and the task that writes them to it. A client past
//! either bound is being dropped: it gets no more events, what it is owed
//! (replies to commands the proxy read) still goes in, then a last line
//! saying why, and the writer has [`super::ProxyOptions::drain`] to get
//! it all out before the connection is cut.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// A client's queue.
pub(super) struct Queue {
    state: Mutex<State>,
    /// Something to write, or the end.
    ready: Notify,
    /// When the client must have read everything, once it is dropped.
    deadline: watch::Sender<Option<Instant>>,
    max_count: usize,
    max_bytes: usize,
    drain: Duration,
}

#[derive(Default)]
struct State {
    lines: VecDeque<Bytes>,
    /// Bytes in `lines` and the line being written.
    bytes: usize,
    /// Why the client is being dropped, once it is.
    dropping: Option<String>,
    /// Nothing more goes in (the last line is in).
    closed: bool,
    /// The writer has ended.
    gone: bool,
}

/// Whether an event went in.
pub(super) enum Offer {
    /// Queued.
    Queued,
    /// Not queued: the client is gone, being dropped, or (now) over its
    /// budget.
    Refused,
}

impl Queue {
    pub(super) fn new(max_count: usize, max_bytes: usize, drain: Duration) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            deadline: watch::Sender::new(None),
            max_count: max_count.max(1),
            max_bytes,
            drain,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why, if `s` is over a bound with `extra` more bytes and a line.
    fn over(&self, s: &State, extra: usize) -> Option<String> {
        if s.lines.is_empty() && s.bytes == 0 {
            // One line always fits, however large.
            return None;
        }
        if s.lines.len() >= self.max_count {
            return Some(format!(
                "{} messages unread: the proxy's budget is {} per client",
                s.lines.len() + 1,
                self.max_count
            ));
        }
        (s.bytes + extra > self.max_bytes).then(|| {
            format!(
                "{} bytes of replies and events unread: the proxy's budget is {} per client",
                s.bytes + extra,
                self.max_bytes
            )
        })
    }

    /// An event: queued if the client is within its budget; one that
    /// would take it over starts its drop instead.
    pub(super) fn event(&self, line: Bytes) -> Offer {
        let mut s = self.lock();
        if s.closed || s.gone || s.dropping.is_some() {
            return Offer::Refused;
        }
        if let Some(why) = self.over(&s, line.len()) {
            self.start_drop(&mut s, why);
            return Offer::Refused;
        }
        s.bytes += line.len();
        s.lines.push_back(line);
        drop(s);
        self.ready.notify_one();
        Offer::Queued
    }

    /// A reply the client is owed: queued whatever the budget says
    /// (then the client is dropped if it is over).
    pub(super) fn owed(&self, line: impl Into<Bytes>) {
        let line = line.into();
        let mut s = self.lock();
        if s.closed || s.gone {
            return;
        }
        if let Some(why) = self.over(&s, line.len()) {
            self.start_drop(&mut s, why);
        }
        s.bytes += line.len();
        s.lines.push_back(line);
        drop(s);
        self.ready.notify_one();
    }

    /// Drops the client for `why` (the first reason given stands).
    fn start_drop(&self, s: &mut State, why: String) {
        if s.dropping.is_none() {
            s.dropping = Some(why);
            self.deadline
                .send_replace(Some(Instant::now() + self.drain));
        }
    }

    /// Why the client is being dropped, if it is.
    pub(super) fn dropping(&self) -> Option<String> {
        self.lock().dropping.clone()
    }

    /// Until the client is being dropped (or the writer has ended).
    pub(super) async fn until_dropping(&self) {
        let mut rx = self.deadline.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// The end of a drop's grace: `None` while the client is not dropped.
    pub(super) fn deadline(&self) -> Option<Instant> {
        *self.deadline.borrow()
    }

    /// Queues `last` (if any) and closes: the writer ends once all is
    /// written.
    pub(super) fn close(&self, last: Option<Vec<u8>>) {
        let mut s = self.lock();
        if let Some(l) = last.filter(|_| !s.gone && !s.closed) {
            s.bytes += l.len();
            s.lines.push_back(l.into());
        }
        s.closed = true;
        drop(s);
        self.ready.notify_one();
    }

    /// The session's end without a reason to give the client: what is
    /// queued gets the drain's grace, no more (a client that never reads
    /// holds nothing), and nothing more goes in.
    pub(super) fn finish(&self, why: &str) {
        let mut s = self.lock();
        self.start_drop(&mut s, why.to_string());
        drop(s);
        self.close(None);
    }

    /// Whether the writer has ended (the client can't be written to).
    pub(super) fn gone(&self) -> bool {
        self.lock().gone
    }

    /// Writes the queue to `w` until it is closed and empty, writing
    /// fails, or a drop's grace runs out; then shuts the write half
    /// (the client reads the end).
    pub(super) async fn write_to(self: Arc<Queue>, mut w: OwnedWriteHalf) {
        let mut deadline = self.deadline.subscribe();
        loop {
            let next = {
                let mut s = self.lock();
                match s.lines.pop_front() {
                    Some(l) => Some(l),
                    None if s.closed => break,
                    None => None,
                }
            };
            let Some(line) = next else {
                // Woken by a line, the close, or (nothing to write)
                // a drop: then wait for the close.
                self.ready.notified().await;
                continue;
            };
            let grace = async {
                let _ = deadline.wait_for(Option::is_some).await;
                let at = *deadline.borrow();
                if let Some(at) = at {
                    tokio::time::sleep_until(at).await;
                }
            };
            let written = tokio::select! {
                r = w.write_all(&line) => r.is_ok(),
                () = grace => false,
            };
            self.lock().bytes -= line.len();
            if !written {
                break;
            }
        }
        {
            let mut s = self.lock();
            s.gone = true;
            s.lines.clear();
            s.bytes = 0;
        }
        // Readers of `until_dropping` learn the writer ended.
        self.deadline.send_if_modified(|d| {
            if d.is_none() {
                *d = Some(Instant::now());
                true
            } else {
                false
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
    }
}
