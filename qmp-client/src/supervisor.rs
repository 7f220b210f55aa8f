//! A monitor that outlives QEMU restarts: [`Supervisor`] holds a
//! connection to a QMP socket path and, when it ends, dials the same path
//! again with backoff and redoes the handshake. Calls pending when the
//! connection ended still end with [`Error::Closed`], as they do without
//! it (QEMU may or may not have run them: the caller decides); event
//! subscribers ([`Supervisor::events`]) get every event, each loss of the
//! connection and each reconnection with the gap, in order.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_types::rt::{Command, Qmp};
use tokio::sync::{broadcast, watch};

use crate::client::Client;
use crate::error::{Disconnect, Error, Result};
use crate::history::EventRecord;
use crate::options::Options;
use crate::wire::Greeting;

/// How long to wait between dialling attempts: `initial`, doubled after
/// each failure up to `max` ([`Backoff::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// Waits `initial` first, doubling after each failure up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max }
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
        }
    }
}

/// What a supervisor's subscriber receives, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Supervised {
    /// An event from the connection of the moment.
    Event(Arc<EventRecord>),
    /// The connection ended, for this reason; the supervisor dials again.
    Disconnected(Disconnect),
    /// Connected again, after `gap` without a connection and `attempts`
    /// dials; QEMU's greeting (a restarted QEMU may be another version).
    /// Events QEMU sent in the gap are lost.
    Reconnected {
        /// Time without a connection.
        gap: Duration,
        /// Dials it took.
        attempts: u32,
        /// The new greeting.
        greeting: Box<Greeting>,
    },
    /// This subscriber fell behind and lost this many items.
    Lost(u64),
}

/// Keeps a connection to a QMP socket path, dialling it again whenever it
/// ends, until [`Supervisor::close`] or the drop of the last handle.
#[derive(Clone)]
pub struct Supervisor {
    current: watch::Receiver<Option<Client>>,
    /// The task holds the only sender, so subscriptions end with it.
    items: broadcast::WeakSender<Supervised>,
    stop: Arc<watch::Sender<bool>>,
}

/// A subscriber's view of a supervised connection (from
/// [`Supervisor::events`]).
pub struct SupervisedEvents {
    rx: broadcast::Receiver<Supervised>,
}

impl SupervisedEvents {
    /// The next item; `None` once the supervisor has stopped.
    pub async fn next(&mut self) -> Option<Supervised> {
        match self.rx.recv().await {
            Ok(item) => Some(item),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Supervised::Lost(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Supervisor {
    /// Connects to the QMP socket at `path` (the first dial must
    /// succeed, within `opts.connect_timeout`), then keeps it connected.
    pub async fn connect_unix(
        path: impl Into<PathBuf>,
        opts: Options,
        backoff: Backoff,
    ) -> Result<Supervisor> {
        let path = path.into();
        let first = Client::connect_unix(&path, opts.clone()).await?;
        let (current_tx, current) = watch::channel(Some(first.clone()));
        let (items, _) = broadcast::channel(opts.subscriber_buffer.max(16));
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(supervise(
            path,
            opts,
            backoff,
            first,
            current_tx,
            items.clone(),
            stop,
        ));
        Ok(Supervisor {
            current,
            items: items.downgrade(),
            stop: Arc::new(stop_tx),
        })
    }

    /// The connection of the moment, if there is one.
    pub fn client(&self) -> Option<Client> {
        self.current.borrow().clone()
    }

    /// The connection, waiting up to `timeout` for one.
    pub async fn connected(&self, timeout: Duration) -> Result<Client> {
        let mut rx = self.current.clone();
        let wait = rx.wait_for(Option::is_some);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(c)) => c.clone().ok_or(Error::Closed(Disconnect::ClosedByClient)),
            Ok(Err(_)) => Err(Error::Closed(Disconnect::ClosedByClient)),
            Err(_) => Err(Error::Timeout {
                what: "a connection to QEMU".into(),
                after: timeout,
            }),
        }
    }

    /// Runs a typed command on the connection of the moment: without
    /// one, or when it ends before the reply, [`Error::Closed`] (not
    /// retried: QEMU may have run it).
    pub async fn execute<C: Command<Protocol = Qmp>>(&self, cmd: C) -> Result<C::Returns> {
        match self.client() {
            Some(c) => c.execute(cmd).await,
            None => Err(Error::Closed(Disconnect::PeerClosed)),
        }
    }

    /// Every event from now on, across reconnections, with the losses
    /// and reconnections between them.
    /// Once the supervisor has stopped, the subscription is ended.
    pub fn events(&self) -> SupervisedEvents {
        let rx = match self.items.upgrade() {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        };
        SupervisedEvents { rx }
    }

    /// Stops supervising and closes the connection.
    pub fn close(&self) {
        let _ = self.stop.send(true);
        if let Some(c) = self.client() {
            c.close();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // The last handle: stop the task (the `Arc` counts handles).
        if Arc::strong_count(&self.stop) == 1 {
            let _ = self.stop.send(true);
        }
    }
}

/// The supervising task: forwards the connection's events; when it
/// ends, dials again until it succeeds or is told to stop.
async fn supervise(
    path: PathBuf,
    opts: Options,
    backoff: Backoff,
    first: Client,
    current: watch::Sender<Option<Client>>,
    items: broadcast::Sender<Supervised>,
    mut stop: watch::Receiver<bool>,
) {
    let mut client = first;
    loop {
        let mut events = client.events();
        let cause = loop {
            tokio::select! {
                r = events.next() => match r {
                    Ok(e) => {
                        let _ = items.send(Supervised::Event(e));
                    }
                    Err(Error::Closed(cause)) => break cause,
                    // A subscriber loss inside the client: its history
                    // still has them, but this forwarder can't say which.
                    Err(Error::EventsLost(n)) => {
                        let _ = items.send(Supervised::Lost(n));
                    }
                    Err(_) => {}
                },
                _ = stop.changed() => {
                    client.close();
                    current.send_replace(None);
                    return;
                }
            }
        };
        current.send_replace(None);
        let _ = items.send(Supervised::Disconnected(cause));
        let down = Instant::now();
        let mut wait = backoff.initial;
        let mut attempts = 0u32;
        client = loop {
            if *stop.borrow() {
                return;
            }
            attempts += 1;
            match Client::connect_unix(&path, opts.clone()).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::debug!(attempt = attempts, error = %e, "QEMU not back yet");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            wait = (wait * 2).min(backoff.max);
        };
        tracing::debug!(attempts, gap = ?down.elapsed(), "reconnected to QEMU");
        current.send_replace(Some(client.clone()));
        let _ = items.send(Supervised::Reconnected {
            gap: down.elapsed(),
            attempts,
            greeting: Box::new(client.greeting().clone()),
        });
    }
}
