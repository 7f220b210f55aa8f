//! The outbox: commands accepted from the client handles and not yet
//! fully written, with their ids (out-of-band ones always; in-band ones
//! only when [`crate::Options::in_band_ids`] asks), out-of-band ones
//! ahead of in-band ones not started, written with `writev` (or `sendmsg` with file
//! descriptors); an entry whose caller is gone before its first byte is
//! written is dropped, never sent.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use serde_json::value::RawValue;
use tokio::sync::oneshot;

use crate::error::Error;
use crate::state::Counters;
use crate::transport::Writer;
use crate::wire;

/// What a call gets back: the raw `return`, or an error.
pub(crate) type Reply = Result<Box<RawValue>, Error>;

/// A command on its way to QEMU.
pub(crate) struct Request {
    pub(crate) name: Cow<'static, str>,
    /// The command without its `id` and closing brace (see
    /// [`wire::encode_command`]); the task adds them.
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) oob: bool,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// A command being written.
struct Entry {
    bytes: Vec<u8>,
    /// Bytes already written.
    offset: usize,
    fds: Vec<OwnedFd>,
    /// Until the first byte is written: the caller's reply channel.
    started: Option<Started>,
    oob: bool,
}

/// What becomes a pending call once the first byte is written.
pub(crate) struct Started {
    /// The command's `id` on the wire; `None` for an in-band command sent
    /// without one (its reply is matched by order).
    pub(crate) id: Option<u64>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) reply: oneshot::Sender<Reply>,
    pub(crate) oob: bool,
}

/// Command ids. An id is taken when a command enters the outbox and
/// given back when its reply arrives (or when it is discarded unsent), so
/// ids stay as small as the number of commands outstanding: QEMU reads
/// the socket a byte at a time, and every byte of a command costs it a
/// system call.
#[derive(Default)]
pub(crate) struct Ids {
    free: Vec<u64>,
    next: u64,
}

impl Ids {
    fn take(&mut self) -> u64 {
        self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        })
    }

    pub(crate) fn give_back(&mut self, id: u64) {
        self.free.push(id);
    }
}

/// Commands accepted from the channels and not yet fully written.
pub(crate) struct Outbox {
    entries: VecDeque<Entry>,
    /// In-band entries among them.
    pub(crate) in_band: usize,
    pub(crate) ids: Ids,
    /// Whether in-band commands carry an `id` too.
    in_band_ids: bool,
}

impl Outbox {
    /// An empty outbox; `in_band_ids`: see [`crate::Options::in_band_ids`].
    pub(crate) fn new(in_band_ids: bool) -> Outbox {
        Outbox {
            entries: VecDeque::new(),
            in_band: 0,
            ids: Ids::default(),
            in_band_ids,
        }
    }

    /// Whether anything waits to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Accepts a call from a channel, unless its caller is gone already.
    pub(crate) fn accept(&mut self, req: Request, counters: &Counters) {
        if req.reply.is_closed() {
            counters.abandoned.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.push(req);
    }

    /// Ends every call not yet written with `error`.
    pub(crate) fn fail_all(self, error: impl Fn() -> Error) {
        for e in self.entries {
            if let Some(s) = e.started {
                let _ = s.reply.send(Err(error()));
            }
        }
    }

    /// Queues a command, with an id of its own if it needs one.
    fn push(&mut self, r: Request) {
        if !r.oob {
            self.in_band += 1;
        }
        let mut bytes = r.bytes;
        let id = if r.oob || self.in_band_ids {
            let id = self.ids.take();
            wire::finish_command(&mut bytes, id);
            Some(id)
        } else {
            wire::finish_command_without_id(&mut bytes);
            None
        };
        let entry = Entry {
            bytes,
            offset: 0,
            fds: r.fds,
            started: Some(Started {
                id,
                name: r.name,
                reply: r.reply,
                oob: r.oob,
            }),
            oob: r.oob,
        };
        if r.oob {
            // Out-of-band goes before every in-band command not started.
            let at = self
                .entries
                .iter()
                .position(|e| e.offset == 0 && !e.oob)
                .unwrap_or(self.entries.len());
            self.entries.insert(at, entry);
        } else {
            self.entries.push_back(entry);
        }
    }

    /// Drops entries not started whose caller is gone.
    fn prune(&mut self, counters: &Counters) {
        let before = self.entries.len();
        let mut in_band_gone = 0;
        let ids = &mut self.ids;
        self.entries.retain(|e| {
            let gone = match &e.started {
                Some(s) if e.offset == 0 && s.reply.is_closed() => {
                    if let Some(id) = s.id {
                        ids.give_back(id);
                    }
                    true
                }
                _ => false,
            };
            if gone && !e.oob {
                in_band_gone += 1;
            }
            !gone
        });
        self.in_band -= in_band_gone;
        counters
            .abandoned
            .fetch_add((before - self.entries.len()) as u64, Ordering::Relaxed);
    }

    /// One write (a `writev`, or a `sendmsg` for an entry with fds) of
    /// what is queued; the calls that started with it are added to
    /// `started`.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        w: &mut Writer,
        counters: &Counters,
        started: &mut Vec<Started>,
    ) -> Poll<std::io::Result<()>> {
        self.prune(counters);
        let Some(front) = self.entries.front() else {
            return w.poll_flush(cx);
        };
        let n = if front.offset == 0 && !front.fds.is_empty() {
            match w.poll_send_fds(cx, &front.bytes, &front.fds) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            for (i, e) in self.entries.iter().enumerate() {
                if i > 0 && !e.fds.is_empty() || n == MAX_SLICES {
                    break;
                }
                slices[n] = IoSlice::new(&e.bytes[e.offset..]);
                n += 1;
            }
            match w.poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        };
        let mut left = n;
        while left > 0 {
            let Some(e) = self.entries.front_mut() else {
                break;
            };
            if let Some(s) = e.started.take() {
                started.push(s);
            }
            if e.offset == 0 {
                // Its fds went with its first byte.
                e.fds.clear();
            }
            let take = left.min(e.bytes.len() - e.offset);
            e.offset += take;
            left -= take;
            if e.offset == e.bytes.len()
                && let Some(done) = self.entries.pop_front()
                && !done.oob
            {
                self.in_band -= 1;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Commands written with one `writev`, at most.
const MAX_SLICES: usize = 64;
