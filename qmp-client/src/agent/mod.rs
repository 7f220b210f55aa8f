//! A client for QEMU's guest agent (`qemu-ga`), which speaks a QMP
//! dialect defined by its own schema ([`qmp_types::qga`]).
//!
//! ```no_run
//! # async fn demo() -> qmp_client::Result<()> {
//! use qmp_client::agent::{AgentOptions, GuestAgent};
//! use qmp_types::qga::{GuestExecCommand, GuestPing};
//! let ga = GuestAgent::connect_unix("/run/vm/qga.sock", AgentOptions::default()).await?;
//! ga.execute(GuestPing::new()).await?;
//! let out = ga
//!     .exec(GuestExecCommand::new("/bin/uname").with_arg(vec!["-r".into()]))
//!     .await?;
//! println!("{}", String::from_utf8_lossy(&out.stdout));
//! # Ok(()) }
//! ```
//!
//! How it differs from QMP, and what this client does about it:
//! - no greeting and no capabilities: connecting only synchronises;
//! - the channel (a virtio-serial port, usually) has no sessions: a reply
//!   to a command that timed out may arrive much later, and a client that
//!   went away may have left half a command in the agent's parser. So the
//!   client synchronises with `guest-sync-delimited` (a 0xFF byte, which
//!   resets the agent's parser, then a random id the agent echoes after
//!   its own 0xFF) on connect and again after any call that did not end
//!   cleanly (timeout, dropped future, garbled reply);
//! - the agent runs one command at a time: calls take turns;
//! - `guest-shutdown` and `guest-suspend-*` send no reply on success: the
//!   call returns once sent, after a short window in which a refusal
//!   (error reply) is still reported ([`AgentOptions::refusal_window`]).
//!
//! Helpers: [`GuestAgent::exec`] (run a program, wait, decode its
//! output), [`GuestAgent::open`] (a file as an `AsyncRead + AsyncWrite`),
//! [`GuestAgent::freeze`] (a guard that thaws on drop).

mod file;
mod helpers;

pub use file::GuestFile;
pub use helpers::{ExecOutput, FreezeGuard};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qmp_types::{Command, Qga};
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

use crate::error::{Disconnect, Error, Result};
use crate::transport;
use crate::wire::{self, Incoming};

/// Guest agent connection settings: `AgentOptions::default()` and its
/// `with_x` setters (`#[non_exhaustive]`: a field added later breaks no
/// one).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentOptions {
    /// Deadline for connecting and for each synchronisation.
    pub connect_timeout: Duration,
    /// Default per-call timeout (`None`: wait as long as it takes; an
    /// agent that isn't running in the guest never answers, so the default
    /// is 30 s).
    pub call_timeout: Option<Duration>,
    /// How long a command that sends no reply on success
    /// (`success-response: false`) waits for a refusal before it counts as
    /// sent.
    pub refusal_window: Duration,
    /// Largest message accepted from the agent, in bytes.
    pub max_message: usize,
}

crate::options::setters!(AgentOptions {
    plain with_connect_timeout connect_timeout: Duration,
    some with_call_timeout call_timeout: Duration,
    plain with_refusal_window refusal_window: Duration,
    plain with_max_message max_message: usize,
});

impl Default for AgentOptions {
    fn default() -> AgentOptions {
        AgentOptions {
            connect_timeout: Duration::from_secs(10),
            call_timeout: Some(Duration::from_secs(30)),
            refusal_window: Duration::from_millis(250),
            max_message: 64 << 20,
        }
    }
}

/// The connection, used by one call at a time.
struct Conn {
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    /// Whether the stream is known to be in step: false from the start of
    /// an exchange until it ends cleanly.
    synced: bool,
    /// Why the connection is unusable, once it is.
    broken: Option<Disconnect>,
    next_id: u64,
    line: Vec<u8>,
}

pub(crate) struct Inner {
    conn: Mutex<Conn>,
    opts: AgentOptions,
}

/// A guest agent connection, cheap to clone; calls from clones take turns.
#[derive(Clone)]
pub struct GuestAgent {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GuestAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestAgent")
            .field("opts", &self.inner.opts)
            .finish()
    }
}

/// An id for `guest-sync-delimited` that an earlier client's stale reply
/// is unlikely to carry.
fn sync_id() -> i64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(13))
        .unwrap_or(0x5eed);
    i64::from(t & 0x3fff_ffff) + 1
}

impl GuestAgent {
    /// Connects to the agent's Unix socket (`qemu-ga -m unix-listen`, or
    /// the host side of a VM's virtio-serial chardev) and synchronises.
    pub async fn connect_unix(path: impl AsRef<Path>, opts: AgentOptions) -> Result<GuestAgent> {
        let path = path.as_ref();
        let stream = transport::dial(
            &path.display().to_string(),
            opts.connect_timeout,
            tokio::net::UnixStream::connect(path),
        )
        .await?;
        GuestAgent::from_stream(stream, opts).await
    }

    /// Speaks to the agent over any byte stream, and synchronises.
    pub async fn from_stream<S>(stream: S, opts: AgentOptions) -> Result<GuestAgent>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        let ga = GuestAgent {
            inner: Arc::new(Inner {
                conn: Mutex::new(Conn {
                    reader: BufReader::with_capacity(16 << 10, Box::new(r)),
                    writer: Box::new(w),
                    synced: false,
                    broken: None,
                    next_id: 1,
                    line: Vec::new(),
                }),
                opts,
            }),
        };
        ga.sync().await?;
        Ok(ga)
    }

    /// The options the connection was made with.
    pub fn options(&self) -> &AgentOptions {
        &self.inner.opts
    }

    /// Synchronises with `guest-sync-delimited`: everything the agent sent
    /// before (stale replies, garbage) is skipped, and its parser is reset.
    pub async fn sync(&self) -> Result<()> {
        let mut conn = self.inner.conn.lock().await;
        conn.sync_within(&self.inner.opts).await
    }

    /// Executes a guest agent command; returns its typed reply.
    ///
    /// A command that sends no reply on success returns once sent (after
    /// [`AgentOptions::refusal_window`] without a refusal). A call that
    /// gives up (timeout, dropped future) leaves the connection to be
    /// synchronised before the next call; a command already written runs
    /// in the guest all the same.
    pub async fn execute<C: Command<Protocol = Qga>>(&self, cmd: C) -> Result<C::Returns> {
        self.execute_inner(&cmd, self.inner.opts.call_timeout).await
    }

    /// [`GuestAgent::execute`] with its own timeout.
    pub async fn execute_timeout<C: Command<Protocol = Qga>>(
        &self,
        cmd: C,
        timeout: Duration,
    ) -> Result<C::Returns> {
        self.execute_inner(&cmd, Some(timeout)).await
    }

    async fn execute_inner<C: Command<Protocol = Qga>>(
        &self,
        cmd: &C,
        timeout: Option<Duration>,
    ) -> Result<C::Returns> {
        let args = serde_json::value::to_raw_value(cmd).map_err(|source| Error::Encode {
            command: C::NAME.to_string(),
            source,
        })?;
        let reply = C::META.success_response;
        let work = async {
            let mut conn = self.inner.conn.lock().await;
            conn.call(C::NAME, &args, reply, &self.inner.opts).await
        };
        let raw = match timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("the guest agent's reply to {}", C::NAME),
                    after: t,
                })??,
            None => work.await?,
        };
        wire::decode_reply::<C::Returns>(C::NAME, &raw)
    }
}

impl Conn {
    fn check(&self) -> Result<()> {
        match &self.broken {
            Some(d) => Err(Error::Closed(d.clone())),
            None => Ok(()),
        }
    }

    /// Marks the connection unusable.
    fn fail(&mut self, d: Disconnect) -> Error {
        tracing::warn!(cause = %d, "guest agent connection lost");
        self.broken = Some(d.clone());
        Error::Closed(d)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let r = async {
            self.writer.write_all(bytes).await?;
            self.writer.flush().await
        }
        .await;
        r.map_err(|error| {
            self.fail(Disconnect::Io {
                op: "writing",
                error: error.into(),
            })
        })
    }

    /// Reads the next message into `self.line`.
    async fn read(&mut self, max: usize) -> Result<()> {
        self.line.clear();
        match wire::read_message(&mut self.reader, &mut self.line, max).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(Disconnect::from(e))),
        }
    }

    /// [`Conn::sync`] within [`AgentOptions::connect_timeout`].
    async fn sync_within(&mut self, opts: &AgentOptions) -> Result<()> {
        let t = opts.connect_timeout;
        tokio::time::timeout(t, self.sync(opts.max_message))
            .await
            .map_err(|_| Error::Timeout {
                what: "the guest agent's answer to guest-sync-delimited".into(),
                after: t,
            })?
    }

    async fn sync(&mut self, max: usize) -> Result<()> {
        self.check()?;
        self.synced = false;
        let id = sync_id();
        let mut cmd = vec![0xff];
        cmd.extend_from_slice(
            format!("{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{id}}}}}\n")
                .as_bytes(),
        );
        self.write(&cmd).await?;
        loop {
            // Skip to the agent's delimiter.
            loop {
                let buf = match self.reader.fill_buf().await {
                    Ok(b) => b,
                    Err(error) => {
                        return Err(self.fail(Disconnect::Io {
                            op: "reading",
                            error: error.into(),
                        }));
                    }
                };
                if buf.is_empty() {
                    return Err(self.fail(Disconnect::PeerClosed));
                }
                match buf.iter().position(|&b| b == 0xff) {
                    Some(i) => {
                        self.reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let n = buf.len();
                        self.reader.consume(n);
                    }
                }
            }
            self.read(max).await?;
            let answer = serde_json::from_slice::<Incoming<'_>>(&self.line)
                .ok()
                .and_then(|m| m.ret)
                .and_then(|r| r.get().trim().parse::<i64>().ok());
            if answer == Some(id) {
                self.synced = true;
                tracing::debug!(id, "guest agent synchronised");
                return Ok(());
            }
            tracing::debug!(
                message = %wire::excerpt(&self.line),
                "skipping a stale answer while synchronising"
            );
        }
    }

    async fn call(
        &mut self,
        name: &str,
        args: &RawValue,
        expect_reply: bool,
        opts: &AgentOptions,
    ) -> Result<Box<RawValue>> {
        self.check()?;
        if !self.synced {
            self.sync_within(opts).await?;
        }
        // Until this exchange ends cleanly, the stream is not in step.
        self.synced = false;
        let id = self.next_id;
        self.next_id += 1;
        let mut bytes = wire::encode_checked("execute", name, args)?;
        wire::finish_command(&mut bytes, id);
        self.write(&bytes).await?;
        tracing::debug!(id, command = name, "guest agent command sent");
        if !expect_reply {
            // Success sends nothing; a refusal sends an error.
            return match tokio::time::timeout(opts.refusal_window, self.reply(id, name, opts)).await
            {
                Ok(r) => r,
                Err(_) => {
                    // Sent; a late refusal is skipped by the next sync.
                    Ok(
                        RawValue::from_string("{}".into()).map_err(|e| Error::Decode {
                            what: name.into(),
                            path: ".".into(),
                            source: e,
                        })?,
                    )
                }
            };
        }
        self.reply(id, name, opts).await
    }

    /// Reads until the reply with `id`.
    async fn reply(&mut self, id: u64, name: &str, opts: &AgentOptions) -> Result<Box<RawValue>> {
        loop {
            self.read(opts.max_message).await?;
            let mut msg: Incoming<'_> = match serde_json::from_slice(&self.line) {
                Ok(m) => m,
                Err(e) => {
                    return Err(Error::Protocol(format!(
                        "garbled reply from the guest agent ({e}): {}",
                        wire::excerpt(&self.line)
                    )));
                }
            };
            let theirs = msg.id.and_then(|i| i.get().parse::<u64>().ok());
            if theirs != Some(id) {
                tracing::debug!(
                    message = %wire::excerpt(&self.line),
                    "skipping a message that is not the reply to this call"
                );
                continue;
            }
            self.synced = true;
            return match msg.take_outcome() {
                Some(outcome) => wire::reply_result(name, outcome),
                None => Err(Error::Protocol(format!(
                    "reply to {name} with neither return nor error: {}",
                    wire::excerpt(&self.line)
                ))),
            };
        }
    }
}
