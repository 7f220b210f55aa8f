//! The typed events API: [`Client::events_of`] selects the events of one
//! type `E` from a point on ([`Since`]), narrowed by any number of
//! filters, and then
//!
//! - [`EventsOf::found`]: those the history holds now;
//! - [`EventsOf::wait`]: the first one, history first, then live;
//! - [`EventsOf::stream`]: all of them, history first, then live, each
//!   once, in QEMU's order, a subscriber that fell behind looking in the
//!   history again before it reports a loss.
//!
//! One generic set for every event QEMU has (the per-event `wait_*`
//! helpers it replaces are deprecated). Take the cursor
//! ([`Client::event_cursor`]) before sending the command that causes the
//! event: QEMU often sends it before the reply.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_types::{AnyEvent, Event, Timestamp};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::history::{EventRecord, Missed, Since, Subscription};
use crate::state::Shared;

/// A filter on events of type `E`.
type Filter<'a, E> = Box<dyn Fn(&E) -> bool + Send + Sync + 'a>;

/// The events of type `E` admitted by a [`Since`] and accepted by every
/// filter given to [`EventsOf::matching`] (from [`Client::events_of`]).
///
/// ```no_run
/// # async fn demo(qmp: qmp_client::Client) -> qmp_client::Result<()> {
/// use std::time::Duration;
/// use qmp_types::{DeviceDel, DeviceDeleted};
///
/// let since = qmp.event_cursor();
/// qmp.execute(DeviceDel::new("disk1")).await?;
/// let (_, deleted) = qmp
///     .events_of::<DeviceDeleted>(since)
///     .matching(|e| e.device.as_deref() == Some("disk1"))
///     .wait(Duration::from_secs(10))
///     .await?;
/// println!("{} is gone", deleted.path);
/// # Ok(()) }
/// ```
pub struct EventsOf<'a, E> {
    shared: Arc<Shared>,
    since: Since,
    filters: Vec<Filter<'a, E>>,
}

impl<E> std::fmt::Debug for EventsOf<'_, E>
where
    E: Event,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsOf")
            .field("event", &E::NAME)
            .field("since", &self.since)
            .field("filters", &self.filters.len())
            .finish()
    }
}

impl Client {
    /// The events of type `E` admitted by `since` (see [`EventsOf`]):
    /// narrow them with [`EventsOf::matching`], then look in the history
    /// ([`EventsOf::found`]), wait for one ([`EventsOf::wait`]) or follow
    /// them all ([`EventsOf::stream`]).
    pub fn events_of<'a, E: Event<Any = AnyEvent> + Clone>(&self, since: Since) -> EventsOf<'a, E> {
        EventsOf {
            shared: self.shared().clone(),
            since,
            filters: Vec::new(),
        }
    }
}

impl<'a, E: Event<Any = AnyEvent> + Clone> EventsOf<'a, E> {
    /// Only the events `filter` accepts (on top of earlier filters).
    pub fn matching(mut self, filter: impl Fn(&E) -> bool + Send + Sync + 'a) -> Self {
        self.filters.push(Box::new(filter));
        self
    }

    /// Whether `r` is selected: admitted, an `E` that every filter
    /// accepts, or an `E` whose data did not decode (so that a wait
    /// reports it rather than waiting on).
    fn selects(&self, r: &EventRecord) -> bool {
        self.since.admits(r)
            && match r.typed::<E>() {
                Ok(Some(e)) => self.filters.iter().all(|f| f(e)),
                Ok(None) => false,
                Err(_) => true,
            }
    }

    /// The selected events the history holds now, oldest first. An `E`
    /// whose data did not decode is left out here (it is in
    /// [`Client::history`] as [`AnyEvent::Malformed`]); waits and streams
    /// report it as [`Error::EventDecode`].
    pub fn found(&self) -> Vec<(Timestamp, E)> {
        self.shared
            .hub
            .find(self.since, &mut |r| self.selects(r))
            .iter()
            .filter_map(|r| match r.typed::<E>() {
                Ok(Some(e)) => Some((r.timestamp, e.clone())),
                _ => None,
            })
            .collect()
    }

    /// The first selected event: from the history if it holds one, else
    /// the first to arrive. [`Error::Timeout`] after `timeout`;
    /// [`Error::EventDecode`] for an `E` whose data did not decode;
    /// [`Error::Closed`] when the connection ends first.
    pub async fn wait(&self, timeout: Duration) -> Result<(Timestamp, E)> {
        let select = |r: &EventRecord| self.selects(r);
        let found = crate::events::wait_for_record(
            &self.shared,
            self.since,
            timeout,
            || format!("event {}", E::NAME),
            &select,
        )
        .await?;
        decoded(&found)
    }

    /// Every selected event, as a stream: those in the history first, then
    /// live ones, each once, in the order QEMU sent them.
    pub fn stream(self) -> TypedEvents<'a, E> {
        let sub = self.shared.hub.subscribe();
        let mut stream = TypedEvents {
            query: self,
            sub,
            pending: VecDeque::new(),
            next_seq: 0,
        };
        stream.refill();
        stream
    }
}

/// The event of a record a query selected.
fn decoded<E: Event<Any = AnyEvent> + Clone>(r: &EventRecord) -> Result<(Timestamp, E)> {
    match r.typed::<E>()? {
        Some(e) => Ok((r.timestamp, e.clone())),
        // A query selects only an `E` or one that did not decode.
        None => Err(Error::EventDecode {
            event: E::NAME.to_string(),
            error: format!("got {} instead", r.event.name()),
        }),
    }
}

/// The selected events of an [`EventsOf`], history first, then live (from
/// [`EventsOf::stream`]).
pub struct TypedEvents<'a, E> {
    query: EventsOf<'a, E>,
    /// `None` when the connection had ended when the stream was made.
    sub: Option<Subscription>,
    /// Selected records from the history, not yet given out.
    pending: VecDeque<Arc<EventRecord>>,
    /// Every record before this position was looked at.
    next_seq: u64,
}

impl<E: Event> std::fmt::Debug for TypedEvents<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedEvents")
            .field("query", &self.query)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl<'a, E: Event<Any = AnyEvent> + Clone> TypedEvents<'a, E> {
    /// Looks in the history from `next_seq` on; returns how many events
    /// the history no longer had (dropped before they were looked at).
    fn refill(&mut self) -> u64 {
        let from = self.next_seq;
        let query = &self.query;
        let mut select = |r: &EventRecord| r.seq >= from && query.selects(r);
        let (found, oldest, next) = query.shared.hub.find_from(&mut select);
        self.pending.extend(found);
        self.next_seq = next;
        oldest.saturating_sub(from)
    }

    /// The next selected event. `Err(EventsLost(n))` when `n` events were
    /// dropped before this stream looked at them (it goes on after);
    /// `Err(EventDecode)` for an `E` whose data did not decode (it goes on
    /// after); `Err(Closed(cause))` once the connection has ended and
    /// every event before was given out.
    pub async fn next(&mut self) -> Result<(Timestamp, E)> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return decoded(&r);
            }
            let Some(sub) = &self.sub else {
                return Err(self.query.shared.closed_error());
            };
            match sub.recv().await {
                Ok(r) => {
                    if r.seq < self.next_seq {
                        continue;
                    }
                    self.next_seq = r.seq + 1;
                    if self.query.selects(&r) {
                        return decoded(&r);
                    }
                }
                Err(Missed::Lagged(_)) => {
                    let lost = self.refill();
                    if lost > 0 {
                        return Err(Error::EventsLost(lost));
                    }
                }
                Err(Missed::Closed) => {
                    self.sub = None;
                    self.refill();
                }
            }
        }
    }

    /// The next selected event if one comes before `deadline`, else
    /// `None`.
    pub async fn next_until(&mut self, deadline: Instant) -> Option<Result<(Timestamp, E)>> {
        tokio::time::timeout_at(deadline.into(), self.next())
            .await
            .ok()
    }
}
