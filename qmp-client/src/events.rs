//! Reading events: [`EventStream`] (every event from the moment it was
//! made; a slow subscriber loses events, is told so, and never blocks
//! anyone) and the wait behind [`crate::EventsOf::wait`] (history first,
//! then live events). When the connection ends, every stream drains what
//! it has and then gets [`Error::Closed`] with the connection's cause.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use qmp_types::{AnyEvent, Event, Timestamp};

use crate::error::{Error, Result};
use crate::history::{EventRecord, Missed, Since, Subscription};
use crate::state::Shared;

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

type Recv = Subscription;
type Pending = std::pin::Pin<
    Box<dyn Future<Output = (std::result::Result<Arc<EventRecord>, Missed>, Recv)> + Send>,
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

    /// The next event if one comes before `deadline`, else `None`: "follow
    /// until then" without a timer of one's own.
    ///
    /// ```no_run
    /// # async fn demo(qmp: qmp_client::Client) -> qmp_client::Result<()> {
    /// use std::time::{Duration, Instant};
    /// let mut events = qmp.events();
    /// let until = Instant::now() + Duration::from_secs(5);
    /// while let Some(event) = events.next_until(until).await {
    ///     println!("{}", event?.event.name());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_until(
        &mut self,
        deadline: std::time::Instant,
    ) -> Option<Result<Arc<EventRecord>>> {
        tokio::time::timeout_at(deadline.into(), self.next())
            .await
            .ok()
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Arc<EventRecord>>> {
        loop {
            match std::mem::replace(&mut self.state, State::Closed) {
                State::Closed => return Poll::Ready(Err(self.shared.closed_error())),
                State::Idle(rx) => {
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
                            Err(Missed::Lagged(n)) => {
                                self.state = State::Idle(rx);
                                Err(Error::EventsLost(n))
                            }
                            Err(Missed::Closed) => Err(self.shared.closed_error()),
                        });
                    }
                },
            }
        }
    }

    /// The next event of type `E`, skipping others (losses are reported).
    /// An `E` whose data did not decode gives `Err(EventDecode)`.
    #[deprecated(note = "use `Client::events_of::<E>(client.event_cursor()).stream()`")]
    pub async fn next_of<E: Event<Any = AnyEvent> + Clone>(&mut self) -> Result<(Timestamp, E)> {
        loop {
            let r = self.next().await?;
            if let Some(e) = r.typed::<E>()? {
                return Ok((r.timestamp, e.clone()));
            }
        }
    }
}

/// [`first_record`] within `timeout`, else [`Error::Timeout`] naming
/// `what`.
pub(crate) async fn wait_for_record(
    shared: &Shared,
    since: Since,
    timeout: Duration,
    what: impl FnOnce() -> String,
    pred: &(dyn Fn(&EventRecord) -> bool + Sync),
) -> Result<Arc<EventRecord>> {
    tokio::time::timeout(timeout, first_record(shared, since, pred))
        .await
        .map_err(|_| Error::Timeout {
            what: what(),
            after: timeout,
        })?
}

/// Waits for the first event admitted by `since` for which `pred` holds:
/// the history first, then live events. The subscription is made before
/// the history is read, so nothing falls in between; a subscriber that
/// falls behind looks in the history again. The end of the connection
/// ends the wait with [`Error::Closed`] (after a last look at the
/// history).
async fn first_record(
    shared: &Shared,
    since: Since,
    pred: &(dyn Fn(&EventRecord) -> bool + Sync),
) -> Result<Arc<EventRecord>> {
    let from_history = || {
        let mut check = |r: &EventRecord| pred(r);
        shared.hub.find(since, &mut check).into_iter().next()
    };
    let Some(rx) = shared.hub.subscribe() else {
        // Ended already: what the history has, or why it ended.
        return from_history().ok_or_else(|| shared.closed_error());
    };
    loop {
        if let Some(found) = from_history() {
            return Ok(found);
        }
        loop {
            match rx.recv().await {
                Ok(r) => {
                    if since.admits(&r) && pred(&r) {
                        return Ok(r);
                    }
                }
                // Fell behind: look in the history again.
                Err(Missed::Lagged(_)) => break,
                Err(Missed::Closed) => {
                    return from_history().ok_or_else(|| shared.closed_error());
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
