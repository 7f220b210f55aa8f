//! One connection to the test double, in memory: the client's writes are
//! answered as they are written (no task of the double's own in between),
//! the answers wait in a buffer the client reads, delays hold back what
//! follows them, and the test's actions (events, faults) are put in the
//! same buffer. A Unix socket connection is this link with bytes pumped
//! to and from the socket.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::answer::{EventText, stamped};
use super::server::{Out, Shared, handle};
use crate::peer::Session;

/// What the test asks of the connection, between commands.
#[derive(Debug)]
pub(crate) enum Action {
    /// An event (stamped when written).
    Event(EventText),
    /// Bytes as they are.
    Raw(Vec<u8>),
    /// Half of a message, then the end of the connection.
    Cut,
    /// The end of the connection.
    Close,
    /// Stop reading commands (QEMU stuck).
    StopReading,
}

/// A connection's state, shared by its stream and the double.
pub(crate) struct Link {
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    session: Session,
    /// Bytes for the client, from `read` on.
    to_client: Vec<u8>,
    read: usize,
    /// What the client wrote, split into messages as QEMU splits it.
    from_client: crate::wire::JsonSplitter,
    /// The double ends the connection once `to_client` is read.
    eof: bool,
    /// The client has gone.
    gone: bool,
    /// Steps behind a delay, and the delay.
    held: VecDeque<Out>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Actions that wait for capabilities negotiation.
    queued: Vec<Action>,
    /// Commands are no longer read.
    deaf: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// The steps of one answer (kept for its room).
    outs: Vec<Out>,
}

impl LinkState {
    /// Carries out `outs`, in order; those after a delay wait for it.
    fn push(&mut self, outs: impl IntoIterator<Item = Out>) {
        for out in outs {
            if self.timer.is_some() || !self.held.is_empty() {
                self.held.push_back(out);
                continue;
            }
            match out {
                Out::Write(b) => {
                    if !self.eof {
                        self.to_client.extend_from_slice(&b);
                    }
                }
                Out::Sleep(d) => self.timer = Some(Box::pin(tokio::time::sleep(d))),
                Out::Close => self.eof = true,
            }
        }
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    /// Releases what waited for a delay that has passed.
    fn poll_timer(&mut self, cx: &mut Context<'_>) {
        while let Some(t) = self.timer.as_mut() {
            if t.as_mut().poll(cx).is_pending() {
                return;
            }
            self.timer = None;
            let held: Vec<Out> = self.held.drain(..).collect();
            self.push(held);
        }
    }

    fn apply(&mut self, a: Action) {
        if !self.session.negotiated {
            self.queued.push(a);
            return;
        }
        match a {
            Action::Event(e) => self.push([Out::Write(stamped(&e))]),
            Action::Raw(b) => self.push([Out::Write(b)]),
            Action::Cut => self.push([
                Out::Write(br#"{"event": "SHUTDOWN", "data": {"gue"#.to_vec()),
                Out::Close,
            ]),
            Action::Close => self.push([Out::Close]),
            Action::StopReading => self.deaf = true,
        }
    }

    /// Answers what the client wrote, message by message, as QEMU reads
    /// it (called when the client reads: answers are made as they are
    /// asked for, with no wake-up in between).
    fn answer(&mut self, shared: &Shared) {
        if self.deaf || self.eof {
            return;
        }
        while let Some(msg) = self.from_client.next_message() {
            let was = self.session.negotiated;
            let mut outs = std::mem::take(&mut self.outs);
            handle(shared, &mut self.session, msg, &mut outs);
            self.push(outs.drain(..));
            self.outs = outs;
            if !was && self.session.negotiated {
                let queued = std::mem::take(&mut self.queued);
                for a in queued {
                    self.apply(a);
                }
            }
            if self.deaf || self.eof {
                // QEMU reads no further: the rest stays unread.
                self.from_client = crate::wire::JsonSplitter::default();
                break;
            }
        }
    }
}

impl Link {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the client has gone (or the double ended the connection).
    pub(crate) fn ended(&self) -> bool {
        let st = self.lock();
        st.gone || st.eof
    }

    /// Carries out the test's action now, or once capabilities are
    /// negotiated.
    pub(crate) fn act(&self, a: Action) {
        self.lock().apply(a);
    }
}

/// A connection to a test double, the client's end (from
/// [`super::Mock::stream`]): bytes written to it are answered when the
/// client next reads (a write wakes a reader waiting on it); the
/// answers, and the events the test sends, are read from it.
pub struct MockStream {
    link: Arc<Link>,
    shared: Arc<Shared>,
    /// The task that writes always reads next, in the same poll (this
    /// crate's connection task does): a write by the waiting reader's own
    /// task doesn't wake it, which spares that task a second poll per
    /// command. Off for streams handed to a test.
    reads_after_write: bool,
}

impl MockStream {
    /// A new connection: the greeting is waiting to be read; `queued`
    /// are actions the test asked for before it.
    pub(crate) fn open(
        shared: Arc<Shared>,
        queued: Vec<Action>,
        reads_after_write: bool,
    ) -> (MockStream, Arc<Link>) {
        let mut st = LinkState {
            session: Session {
                negotiated: shared.agent,
                ..Session::default()
            },
            ..LinkState::default()
        };
        if let Some(g) = &shared.greeting {
            st.to_client.clone_from(g);
        }
        for a in queued {
            st.apply(a);
        }
        let link = Arc::new(Link {
            state: Mutex::new(st),
        });
        (
            MockStream {
                link: link.clone(),
                shared,
                reads_after_write,
            },
            link,
        )
    }
}

impl AsyncRead for MockStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut st = self.link.lock();
        // This read supersedes the waker of an earlier one: answers made
        // now are taken now.
        st.reader = None;
        // Answers first: a delay they start is polled (and armed) below.
        st.answer(&self.shared);
        st.poll_timer(cx);
        let st = &mut *st;
        if st.read < st.to_client.len() {
            let n = buf.remaining().min(st.to_client.len() - st.read);
            buf.put_slice(&st.to_client[st.read..st.read + n]);
            st.read += n;
            if st.read == st.to_client.len() {
                st.to_client.clear();
                st.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if st.eof {
            return Poll::Ready(Ok(()));
        }
        st.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for MockStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.link.lock();
        if st.eof {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if st.deaf {
            st.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // Answered when the client reads ([`LinkState::answer`]).
        st.from_client.push(buf);
        if let Some(w) = st
            .reader
            .take_if(|w| !(self.reads_after_write && w.will_wake(cx.waker())))
        {
            w.wake();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // QEMU hangs up on a client that hung up.
        let mut st = self.link.lock();
        st.gone = true;
        st.eof = true;
        if let Some(w) = st.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for MockStream {
    fn drop(&mut self) {
        let mut st = self.link.lock();
        st.gone = true;
        st.eof = true;
        if let Some(w) = st.writer.take() {
            w.wake();
        }
    }
}
