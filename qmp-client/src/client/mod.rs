//! The public [`Client`]: typed calls and the handle's share of the
//! connection; `connect.rs` makes one (dialling, the greeting and the
//! capabilities negotiation).

mod connect;

use std::borrow::Cow;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use qmp_types::{Command, Qmp};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::options::{Options, UnknownMembers};
use crate::outbox::Request;
use crate::state::{Shared, UnknownRecord};
use crate::transaction::TransactionBuilder;
use crate::wire::{self, Greeting};

/// What happened on a connection so far (see [`Client::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Commands written to the socket.
    pub sent: u64,
    /// Replies matched to a command this client sent.
    pub replies: u64,
    /// Of those, replies whose caller had given up (timed out or dropped
    /// its future after the command was written).
    pub late_replies: u64,
    /// Replies whose `id` matched no command sent.
    pub stray_replies: u64,
    /// Calls given up before their command was written: never sent (also
    /// those that gave up waiting for room in the queue, counted at once).
    pub abandoned: u64,
    /// Events received.
    pub events: u64,
    /// Of those, events whose data did not fit their type.
    pub malformed_events: u64,
    /// Events in the history now.
    pub history_len: usize,
    /// Bytes of events in the history now (estimated memory, see
    /// [`crate::EventRecord::size`]).
    pub history_bytes: usize,
    /// Reply and event members met that the bindings don't know (see
    /// [`UnknownMembers`]): counted when reported and when denied; with
    /// `Ignore` they are not looked for.
    pub unknown_members: u64,
}

/// Held by every handle; dropped with the last one, which ends the
/// connection task.
struct Inner {
    in_band: mpsc::Sender<Request>,
    oob: mpsc::Sender<Request>,
    _alive: oneshot::Sender<()>,
    shared: Arc<Shared>,
    greeting: Greeting,
    /// The label in [`qmp_types::VERSIONS`] of the connected QEMU's
    /// series, if the bindings cover it: a command whose schema list has
    /// it is available without more ado (checked for every command).
    covered_label: Option<&'static str>,
    opts: Options,
    unix: bool,
    /// The connected QEMU's own schema, once asked for (see
    /// [`Options::schema`]).
    schema: crate::schema_slot::SchemaSlot,
}

/// A QMP connection, cheap to clone and share between tasks.
///
/// One task owns the socket; calls from any number of handles are
/// pipelined over it and matched to their replies by `id`. The
/// connection ends on [`Client::close`], when QEMU hangs up, on an I/O
/// or protocol error, or when the last handle is dropped; then every
/// pending call, waiter and [`crate::EventStream`] fails with
/// [`Error::Closed`] and its cause.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("greeting", &self.inner.greeting)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Client {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// What QEMU said on connect.
    pub fn greeting(&self) -> &Greeting {
        &self.inner.greeting
    }

    /// The options the connection was made with.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    /// Waits until the connection has ended (e.g. after `quit`); returns
    /// why.
    pub async fn closed(&self) -> Error {
        self.inner.shared.ended().await;
        self.inner.shared.closed_error()
    }

    /// Counters of the connection so far.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.shared.counters;
        let (history_len, history_bytes) = self.inner.shared.hub.size();
        Stats {
            sent: c.sent.load(Ordering::Relaxed),
            replies: c.replies.load(Ordering::Relaxed),
            late_replies: c.late_replies.load(Ordering::Relaxed),
            stray_replies: c.stray_replies.load(Ordering::Relaxed),
            abandoned: c.abandoned.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            malformed_events: c.malformed_events.load(Ordering::Relaxed),
            history_len,
            history_bytes,
            unknown_members: c.unknown_members.load(Ordering::Relaxed),
        }
    }

    /// How the session recording ([`crate::Options::record`]) is going:
    /// `Ok` while every line is written (or nothing is recorded),
    /// [`Error::Record`] once a write failed (a full disk),
    /// [`Error::RecordFull`] once it reached
    /// [`crate::Options::record_limit`]. Either way recording stopped
    /// there and the session went on.
    pub fn recording(&self) -> Result<()> {
        match self.inner.shared.tap.as_deref().and_then(recording_problem) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The latest reply and event members met that the bindings don't
    /// know, oldest first (with [`UnknownMembers::Report`]).
    pub fn unknown_members(&self) -> Vec<UnknownRecord> {
        let kept = self
            .inner
            .shared
            .unknown
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        kept.iter().cloned().collect()
    }

    /// The connected QEMU's version (from the greeting; a greeting whose
    /// version numbers don't fit a `u32` is refused when connecting, as a
    /// protocol error, so this is always QEMU's own).
    pub fn qemu_version(&self) -> qmp_types::rt::QemuVersion {
        version_of(&self.inner.greeting)
    }

    /// Whether the connected QEMU has command `C`, by the schemas the
    /// bindings cover (see [`Options::check_versions`]).
    pub fn check_available<C: Command<Protocol = Qmp>>(
        &self,
    ) -> std::result::Result<(), qmp_types::rt::Unavailable> {
        if let Some(label) = self.inner.covered_label
            && C::META.versions.contains(&label)
        {
            return Ok(());
        }
        qmp_types::rt::check_available(
            || format!("command `{}`", C::NAME),
            C::META.versions,
            C::META.since,
            qmp_types::VERSIONS,
            self.qemu_version(),
        )
    }

    /// The connected QEMU's schema: fetched (or shared with another
    /// connection to the same build) on the first need, then kept; `Err`
    /// says why there is none (see [`Options::schema`]).
    pub(crate) async fn settled_schema(
        &self,
    ) -> std::result::Result<Arc<crate::introspect::Introspection>, String> {
        let slot = &self.inner.schema;
        let settled = slot.settled.get_or_init(|| async {
            let Some(cell) = &slot.cell else {
                return Err("Options::schema is Off".to_string());
            };
            let got = cell.get_or_try_init(|| self.fetch_schema()).await;
            got.cloned()
                .inspect(|s| {
                    let _ = self.inner.shared.schema.set(s.clone());
                })
                .inspect_err(|e| {
                tracing::warn!(error = %e, "the connected QEMU's schema could not be fetched; the checks use the bindings' version tables");
            })
        });
        settled.await.clone()
    }

    /// The schema if it is, or can be, known.
    async fn schema_if_known(&self) -> Option<Arc<crate::introspect::Introspection>> {
        self.settled_schema().await.ok()
    }

    /// `query-qmp-schema`, indexed.
    async fn fetch_schema(
        &self,
    ) -> std::result::Result<Arc<crate::introspect::Introspection>, String> {
        let args =
            serde_json::value::to_raw_value(&serde_json::Map::new()).map_err(|e| e.to_string())?;
        let name = "query-qmp-schema";
        let raw = self
            .call(
                Cow::Borrowed(name),
                false,
                &args,
                Vec::new(),
                self.inner.opts.call_timeout,
            )
            .await
            .map_err(|e| e.to_string())?;
        let label = self.inner.schema.label.clone();
        crate::introspect::Introspection::from_json(raw.get().as_bytes(), label)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// What identifies the connected QEMU's build (see
    /// [`Client::binary_id`]).
    pub(crate) fn binary_key(&self) -> Option<&crate::introspect::cache::BinaryKey> {
        self.inner.schema.key.as_ref()
    }

    /// Sets the schema this connection checks against (a cached copy),
    /// unless one is already settled; whether it was taken.
    pub(crate) fn settle_schema(&self, schema: Arc<crate::introspect::Introspection>) -> bool {
        let taken = self.inner.schema.settled.set(Ok(schema.clone())).is_ok();
        if taken {
            let _ = self.inner.shared.schema.set(schema);
        }
        taken
    }

    /// Refuses a command or argument the connected QEMU lacks.
    fn check_versions<C: Command<Protocol = Qmp>>(&self, args: &RawValue) -> Result<()> {
        self.check_available::<C>().map_err(Error::Unavailable)?;
        if C::META.partial_args.is_empty() {
            return Ok(());
        }
        let Ok(given) =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(args.get())
        else {
            return Ok(());
        };
        for (arg, have) in C::META.partial_args {
            if given.contains_key(*arg) {
                qmp_types::rt::check_available(
                    || format!("argument `{arg}` of `{}`", C::NAME),
                    have,
                    None,
                    qmp_types::VERSIONS,
                    self.qemu_version(),
                )
                .map_err(Error::Unavailable)?;
            }
        }
        Ok(())
    }

    /// Replies whose `id` matched no command sent.
    #[deprecated(note = "use `stats().stray_replies`")]
    pub fn stray_replies(&self) -> u64 {
        self.stats().stray_replies
    }

    /// Executes a typed command; returns its typed reply.
    ///
    /// A call that gives up (its timeout passes, or its future is
    /// dropped) before its command was written is never sent. Once the
    /// first byte of the command is on the socket, QEMU will run it,
    /// even if nobody waits for the reply any more: a timed-out
    /// `device_del` may still delete the device.
    pub async fn execute<C: Command<Protocol = Qmp>>(&self, cmd: C) -> Result<C::Returns> {
        self.execute_inner(&cmd, false, Vec::new(), self.inner.opts.call_timeout)
            .await
    }

    /// [`Client::execute`] with its own timeout.
    pub async fn execute_timeout<C: Command<Protocol = Qmp>>(
        &self,
        cmd: C,
        timeout: Duration,
    ) -> Result<C::Returns> {
        self.execute_inner(&cmd, false, Vec::new(), Some(timeout))
            .await
    }

    /// Executes an `allow-oob` command out of band (`exec-oob`): QEMU runs
    /// it at once, even while in-band commands are in progress.
    pub async fn execute_oob<C: Command<Protocol = Qmp>>(&self, cmd: C) -> Result<C::Returns> {
        if !self.inner.greeting.oob {
            return Err(Error::OobNotAvailable {
                command: C::NAME.into(),
                reason: "OOB was not negotiated (QEMU did not offer it, or Options::oob is off)",
            });
        }
        if !C::META.allow_oob {
            return Err(Error::OobNotAvailable {
                command: C::NAME.into(),
                reason: "the command doesn't allow it",
            });
        }
        self.execute_inner(&cmd, true, Vec::new(), self.inner.opts.call_timeout)
            .await
    }

    /// Executes a command passing file descriptors with it (SCM_RIGHTS),
    /// for `getfd` and `add-fd`. Unix sockets only. The descriptors are
    /// borrowed: anything [`AsFd`] (`&File`, `&UnixStream`, a
    /// `BorrowedFd`, an `OwnedFd`) is duplicated for the call, and the
    /// caller keeps its own.
    ///
    /// ```no_run
    /// # async fn demo(qmp: qmp_client::Client) -> qmp_client::Result<()> {
    /// use qmp_types::AddFd;
    /// let disk = std::fs::File::open("/var/lib/vm/disk.img")?;
    /// let set = qmp.execute_with_fds(AddFd::new(), [&disk]).await?;
    /// // `disk` is still ours; QEMU holds its own copy in `set.fdset_id`.
    /// # Ok(()) }
    /// ```
    pub async fn execute_with_fds<C, F>(
        &self,
        cmd: C,
        fds: impl IntoIterator<Item = F>,
    ) -> Result<C::Returns>
    where
        C: Command<Protocol = Qmp>,
        F: AsFd,
    {
        if !self.inner.unix {
            return Err(Error::FdPassingUnsupported);
        }
        let fds = fds
            .into_iter()
            .map(|f| f.as_fd().try_clone_to_owned())
            .collect::<std::io::Result<Vec<OwnedFd>>>()?;
        self.execute_inner(&cmd, false, fds, self.inner.opts.call_timeout)
            .await
    }

    /// Executes a command by name with JSON arguments, for commands the
    /// bindings lack; returns the raw `return` value.
    pub async fn execute_raw(
        &self,
        name: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let args = serde_json::value::to_raw_value(&arguments).map_err(|source| Error::Encode {
            command: name.to_string(),
            source,
        })?;
        let raw = self
            .call(
                Cow::Owned(name.to_string()),
                false,
                &args,
                Vec::new(),
                self.inner.opts.call_timeout,
            )
            .await?;
        wire::decode(name, &raw)
    }

    /// Executes a command by name (in band, or out of band with `oob`)
    /// with its arguments as JSON text; the raw `return` value (for the
    /// proxy, which passes messages through).
    pub(crate) async fn execute_json(
        &self,
        name: &str,
        oob: bool,
        args: &RawValue,
    ) -> Result<Box<RawValue>> {
        self.call(
            Cow::Owned(name.to_string()),
            oob,
            args,
            Vec::new(),
            self.inner.opts.call_timeout,
        )
        .await
    }

    /// Runs a human monitor (HMP) command line; returns its output, or
    /// [`Error::Hmp`] when the output is one of HMP's error forms
    /// (`Error: ...`, `unknown command: ...`, a usage message). HMP has
    /// no error channel of its own: a few commands print an error
    /// without those forms (QEMU 10's `drive_del` of an unknown drive
    /// prints `Device 'x' not found`), which comes back as `Ok`.
    pub async fn human(&self, command_line: &str) -> Result<String> {
        let out = self.human_output(command_line).await?;
        match wire::hmp_error(&out) {
            Some(message) => Err(Error::Hmp {
                command_line: command_line.to_string(),
                message,
            }),
            None => Ok(out),
        }
    }

    /// Runs a human monitor (HMP) command line; returns its output as
    /// QEMU wrote it, an error message included.
    pub async fn human_output(&self, command_line: &str) -> Result<String> {
        self.execute(qmp_types::HumanMonitorCommand::new(command_line))
            .await
    }

    /// Runs a transaction (see [`TransactionBuilder`]).
    pub async fn transaction(&self, t: TransactionBuilder) -> Result<()> {
        self.execute(t.build()).await
    }

    /// Closes the connection now: the socket is shut down and dropped,
    /// and every pending call, waiter and event stream fails with
    /// [`Error::Closed`] ([`crate::Disconnect::ClosedByClient`]).
    pub fn close(&self) {
        self.inner.shared.close_requested.notify_one();
    }

    async fn execute_inner<C: Command<Protocol = Qmp>>(
        &self,
        cmd: &C,
        oob: bool,
        fds: Vec<OwnedFd>,
        timeout: Option<Duration>,
    ) -> Result<C::Returns> {
        let args = serde_json::value::to_raw_value(cmd).map_err(|source| Error::Encode {
            command: C::NAME.to_string(),
            source,
        })?;
        if self.inner.opts.check_versions {
            match self.schema_if_known().await {
                Some(schema) => crate::schema_slot::check(&schema, C::NAME, &args)?,
                None => self.check_versions::<C>(&args)?,
            }
        }
        let raw = self
            .call(Cow::Borrowed(C::NAME), oob, &args, fds, timeout)
            .await?;
        let decode = || wire::decode_reply::<C::Returns>(C::NAME, &raw);
        let (reply, found) = wire::decode_by_policy(self.inner.opts.unknown_members, decode);
        let reply = reply.inspect_err(|e| {
            tracing::warn!(command = %C::NAME, error = %e, "reply does not fit its type");
        })?;
        if !found.is_empty() {
            let denied = (self.inner.opts.unknown_members == UnknownMembers::Deny)
                .then(|| wire::unknown_text(&found));
            self.inner.shared.report_unknown(C::NAME, found);
            if let Some(detail) = denied {
                return Err(Error::UnknownMembers {
                    command: C::NAME.to_string(),
                    detail,
                });
            }
        }
        Ok(reply)
    }

    async fn call(
        &self,
        name: Cow<'static, str>,
        oob: bool,
        args: &RawValue,
        fds: Vec<OwnedFd>,
        timeout: Option<Duration>,
    ) -> Result<Box<RawValue>> {
        let shared = &self.inner.shared;
        if shared.is_closed() {
            return Err(shared.closed_error());
        }
        let verb = if oob { "exec-oob" } else { "execute" };
        let bytes = wire::encode_checked(verb, &name, args)?;
        let (tx, rx) = oneshot::channel();
        let req = Request {
            name: name.clone(),
            bytes,
            fds,
            oob,
            reply: tx,
        };
        let chan = if oob {
            &self.inner.oob
        } else {
            &self.inner.in_band
        };
        let mut slot = ReplySlot {
            rx,
            shared,
            queued: false,
        };
        let work = async {
            let slot = &mut slot;
            // Room at once in the common case, without the wait's future.
            let handed = match chan.try_send(req) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(req)) => chan.send(req).await,
                Err(mpsc::error::TrySendError::Closed(req)) => Err(mpsc::error::SendError(req)),
            };
            // Queued, or refused because the connection ended: either way
            // not a call that gave up waiting for room.
            slot.queued = true;
            handed.map_err(|_| shared.closed_error())?;
            (&mut slot.rx).await.map_err(|_| shared.closed_error())?
        };
        match timeout {
            Some(t) => match tokio::time::timeout(t, work).await {
                Ok(reply) => reply,
                // A reply that came as the time ran out is the caller's.
                Err(_) => slot.take().unwrap_or_else(|| {
                    Err(Error::Timeout {
                        what: format!("the reply to {name}"),
                        after: t,
                    })
                }),
            },
            None => work.await,
        }
    }
}

/// QEMU's version as its greeting gives it (numbers out of `u32`'s range
/// were refused with the greeting).
fn version_of(greeting: &Greeting) -> qmp_types::rt::QemuVersion {
    let q = &greeting.version.qemu;
    let n = |x: i64| u32::try_from(x).unwrap_or(0);
    qmp_types::rt::QemuVersion::new(n(q.major), n(q.minor), n(q.micro))
}

/// The caller's end of a call's reply channel. A reply that arrives as
/// its caller gives up (a timeout, a dropped future) is either handed
/// over ([`ReplySlot::take`]) or counted in [`Stats::late_replies`]: never
/// lost without a trace. Once closed, the connection task's send fails
/// and the task counts it instead. A call that gives up while still
/// waiting for room in the queue is counted in [`Stats::abandoned`] here,
/// at once (the task never saw it).
struct ReplySlot<'a> {
    rx: oneshot::Receiver<crate::outbox::Reply>,
    shared: &'a Shared,
    /// Whether the request reached the connection task's queue (or was
    /// refused there because the connection had ended).
    queued: bool,
}

impl ReplySlot<'_> {
    /// Closes the channel; the reply, if it had come.
    fn take(&mut self) -> Option<crate::outbox::Reply> {
        self.rx.close();
        self.rx.try_recv().ok()
    }
}

impl Drop for ReplySlot<'_> {
    fn drop(&mut self) {
        if !self.queued {
            self.shared
                .counters
                .abandoned
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.take().is_some() {
            self.shared
                .counters
                .late_replies
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Why `tap` stopped recording, as an error.
fn recording_problem(tap: &crate::record::Tap) -> Option<Error> {
    use crate::record::Stopped;
    Some(match tap.stopped()? {
        Stopped::Failed(kind, msg) => Error::Record {
            path: tap.path().to_path_buf(),
            source: std::io::Error::new(kind, msg),
        },
        Stopped::Full(limit) => Error::RecordFull {
            path: tap.path().to_path_buf(),
            limit,
        },
    })
}
