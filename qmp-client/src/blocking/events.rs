//! Events for the blocking client: every event as an iterator
//! ([`Events`]), and the typed events API ([`EventsOf`], [`TypedEvents`]),
//! each blocking on the client's private runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_types::rt::Timestamp;
use qmp_types::{AnyEvent, Event};

use super::Runtime;
use crate::error::{Error, Result};
use crate::events::EventStream;
use crate::history::EventRecord;

/// Events as an iterator (from [`super::Client::events`]): `next` blocks until
/// an event comes; it ends after the connection's end was reported.
pub struct Events {
    pub(super) stream: EventStream,
    pub(super) rt: Arc<Runtime>,
    /// The connection's end was reported.
    pub(super) ended: bool,
}

/// Whether `item` ends an iterator over events: the connection's end (told
/// once, then no more), or a call from inside an async runtime.
fn is_end<T>(item: &Result<T>) -> bool {
    matches!(item, Err(Error::Closed(_) | Error::BlockingInAsync))
}

impl Events {
    /// The next event, or [`Error::Timeout`] when none comes within
    /// `timeout`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Arc<EventRecord>> {
        // The timer is made inside: it needs the runtime.
        let stream = &mut self.stream;
        let next = async move { tokio::time::timeout(timeout, stream.next()).await };
        match self.rt.block_on(next)? {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                what: "the next event".into(),
                after: timeout,
            }),
        }
    }

    /// `item`, noting the connection's end (told once, then no more).
    fn noting_end(&mut self, item: Result<Arc<EventRecord>>) -> Result<Arc<EventRecord>> {
        self.ended |= is_end(&item);
        item
    }

    /// The events that come until `deadline`, as an iterator that then
    /// ends: "follow for N seconds" without a loop of one's own. Lost
    /// events and the connection's end come through as errors (the end
    /// once, then the iterator ends).
    ///
    /// ```no_run
    /// # fn demo(qmp: qmp_client::blocking::Client) -> qmp_client::Result<()> {
    /// use std::time::{Duration, Instant};
    /// let until = Instant::now() + Duration::from_secs(5);
    /// for event in qmp.events().until(until) {
    ///     println!("{}", event?.event.name());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn until(&mut self, deadline: std::time::Instant) -> Until<'_> {
        Until {
            events: self,
            deadline,
        }
    }
}

/// The events of [`Events::until`]: those that come before its deadline.
pub struct Until<'a> {
    events: &'a mut Events,
    deadline: std::time::Instant,
}

impl Iterator for Until<'_> {
    type Item = Result<Arc<EventRecord>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.events.ended {
            return None;
        }
        let left = self
            .deadline
            .checked_duration_since(std::time::Instant::now())?;
        match self.events.next_timeout(left) {
            Err(Error::Timeout { .. }) => None,
            item => Some(self.events.noting_end(item)),
        }
    }
}

impl Iterator for Events {
    type Item = Result<Arc<EventRecord>>;

    /// The next event; the connection's end once (as an error), then
    /// `None`.
    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let item = self.rt.block_on(self.stream.next()).and_then(|r| r);
        Some(self.noting_end(item))
    }
}

/// The events of type `E` admitted by a cursor and accepted by filters
/// (from [`super::Client::events_of`]; as [`crate::EventsOf`], blocking).
pub struct EventsOf<'a, E> {
    pub(super) inner: crate::EventsOf<'a, E>,
    pub(super) rt: Arc<Runtime>,
}

impl<E: Event> std::fmt::Debug for EventsOf<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<'a, E: Event<Any = AnyEvent> + Clone> EventsOf<'a, E> {
    /// Only the events `filter` accepts (on top of earlier filters).
    pub fn matching(self, filter: impl Fn(&E) -> bool + Send + Sync + 'a) -> Self {
        EventsOf {
            inner: self.inner.matching(filter),
            rt: self.rt,
        }
    }

    /// The selected events the history holds now (see
    /// [`crate::EventsOf::found`]).
    pub fn found(&self) -> Vec<(Timestamp, E)> {
        self.inner.found()
    }

    /// The first selected event, history first, then live; [`Error::Timeout`]
    /// after `timeout` (see [`crate::EventsOf::wait`]).
    pub fn wait(&self, timeout: Duration) -> Result<(Timestamp, E)> {
        self.rt.block_on(self.inner.wait(timeout))?
    }

    /// Every selected event, history first, then live, as an iterator that
    /// blocks for the next (see [`crate::EventsOf::stream`]).
    pub fn stream(self) -> TypedEvents<'a, E> {
        TypedEvents {
            inner: self.inner.stream(),
            rt: self.rt,
            ended: false,
        }
    }
}

/// The selected events of an [`EventsOf`], as an iterator (from
/// [`EventsOf::stream`]); it ends after the connection's end was reported.
pub struct TypedEvents<'a, E> {
    inner: crate::TypedEvents<'a, E>,
    rt: Arc<Runtime>,
    ended: bool,
}

impl<E: Event> std::fmt::Debug for TypedEvents<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<E: Event<Any = AnyEvent> + Clone> TypedEvents<'_, E> {
    /// The next selected event if one comes before `deadline`, else
    /// `None`; lost events and the connection's end come through as
    /// errors.
    pub fn next_until(&mut self, deadline: Instant) -> Option<Result<(Timestamp, E)>> {
        if self.ended {
            return None;
        }
        let item = match self.rt.block_on(self.inner.next_until(deadline)) {
            Ok(item) => item?,
            Err(e) => Err(e),
        };
        self.ended |= is_end(&item);
        Some(item)
    }
}

impl<E: Event<Any = AnyEvent> + Clone> Iterator for TypedEvents<'_, E> {
    type Item = Result<(Timestamp, E)>;

    /// The next selected event; the connection's end once (as an error),
    /// then `None`.
    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let item = self.rt.block_on(self.inner.next()).and_then(|r| r);
        self.ended |= is_end(&item);
        Some(item)
    }
}
