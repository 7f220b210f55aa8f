//! The client's errors: [`Error`], why a connection ended
//! ([`Disconnect`]), and what went wrong starting QEMU ([`LaunchError`],
//! which [`Error::Launch`] wraps). The bottom layer: it imports nothing
//! of this crate.

#[cfg(feature = "launch")]
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

/// A QMP error class as QEMU names it in `error.class`: the schema's
/// `QapiErrorClass`, with `Unknown` for a class a newer QEMU may send.
pub use qmp_types::QapiErrorClass as ErrorClass;

/// Why a connection ended. Every pending call, every waiter and every
/// [`crate::EventStream`] of the connection learns this cause, through
/// [`Error::Closed`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Disconnect {
    /// [`crate::Client::close`] was called.
    ClosedByClient,
    /// Every [`crate::Client`] handle was dropped.
    HandlesDropped,
    /// QEMU closed the connection (after `quit`, or when it exited).
    PeerClosed,
    /// QEMU closed the connection in the middle of a message.
    Truncated {
        /// Bytes of the unfinished message that had arrived.
        bytes: usize,
    },
    /// Reading or writing the socket failed; the `io::Error` is the
    /// [`std::error::Error::source`].
    Io {
        /// `"reading"` or `"writing"`.
        op: &'static str,
        /// What the OS said.
        error: Arc<std::io::Error>,
    },
    /// QEMU sent something that is not QMP (garbled JSON, a message over
    /// [`crate::Options::max_message`], an error reply without an `id`,
    /// which means QEMU could not parse what it read).
    Protocol(String),
}

impl Disconnect {
    /// The I/O error kind, when the cause is an I/O error.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Disconnect::Io { error, .. } => Some(error.kind()),
            _ => None,
        }
    }
}

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QMP connection closed: ")?;
        match self {
            Disconnect::ClosedByClient => f.write_str("closed by the client"),
            Disconnect::HandlesDropped => f.write_str("every client handle was dropped"),
            Disconnect::PeerClosed => f.write_str("QEMU closed the connection"),
            Disconnect::Truncated { bytes } => write!(
                f,
                "QEMU closed the connection in the middle of a message ({bytes} bytes read)"
            ),
            // A Unix socket closed with data its owner had not read
            // resets: QEMU went (killed, or exited) before reading all
            // it was sent. Said as the close it is.
            Disconnect::Io { op, error }
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                write!(
                    f,
                    "QEMU closed the connection before reading all it was sent ({op} the socket failed)"
                )
            }
            Disconnect::Io { op, .. } => write!(f, "{op} the socket failed"),
            Disconnect::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl std::error::Error for Disconnect {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Disconnect::Io { error, .. } => Some(&**error),
            _ => None,
        }
    }
}

/// Everything that can go wrong talking QMP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// QEMU answered the command with an error.
    #[error("{command}: {class}: {desc}")]
    Qmp {
        /// The command that failed.
        command: String,
        /// QEMU's error class.
        class: ErrorClass,
        /// QEMU's human-readable description.
        desc: String,
    },
    /// The session recording ([`crate::Options::record`]) could not be
    /// created or written (recording stopped there; the session goes
    /// on, and [`crate::Client::recording`] says so).
    #[error("can't record the session to {}: {source}", path.display())]
    Record {
        /// The file asked for.
        path: std::path::PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The session recording reached its limit
    /// ([`crate::Options::record_limit`]) and stopped there, with a last
    /// line saying so; the session goes on. Raise the limit to keep more.
    #[error("the session recording {} stopped at its limit of {limit} bytes", path.display())]
    RecordFull {
        /// The file.
        path: std::path::PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The test double (`testing::MockQemu`, `MockAgent`) was set up with
    /// something it cannot use (a QEMU version it does not cover, a
    /// recording it cannot read: the file and line), or saw the code
    /// under test depart from its script (the list of what went wrong).
    #[error("{0}")]
    Mock(String),
    /// A [`crate::blocking`] call was made from inside an async runtime,
    /// whose thread it would block: use the async [`crate::Client`]
    /// there.
    #[error(
        "the blocking client was called from inside an async runtime; use qmp_client::Client there"
    )]
    BlockingInAsync,
    /// A job QEMU ran failed ([`crate::Job`]'s waits): QEMU's text, from
    /// `BLOCK_JOB_COMPLETED`'s `error` or `query-jobs`.
    #[error("job {id} failed: {error}")]
    JobFailed {
        /// The job's id.
        id: String,
        /// Why, in QEMU's words.
        error: String,
    },
    /// A job QEMU ran was cancelled before it finished
    /// (`BLOCK_JOB_CANCELLED`).
    #[error("job {id} was cancelled")]
    JobCancelled {
        /// The job's id.
        id: String,
    },
    /// A job's outcome can't be told: QEMU no longer has it (dismissed by
    /// someone, or it never existed) and this connection saw neither an
    /// event with its outcome nor its error in `query-jobs`. Never
    /// counted as success.
    #[error("job {id}: outcome unknown: {why}")]
    JobOutcomeUnknown {
        /// The job's id.
        id: String,
        /// What was (not) seen.
        why: String,
    },
    /// A dirty bitmap can't serve a backup (missing, `busy`, or
    /// `inconsistent` after QEMU did not close its image cleanly); the
    /// problem says what to do.
    #[error("bitmap {name} of node {node} is {problem}")]
    Bitmap {
        /// The node.
        node: String,
        /// The bitmap.
        name: String,
        /// What is wrong with it, and what to do.
        problem: String,
    },
    /// A migration failed ([`crate::Migration`]'s waits): QEMU's
    /// `error-desc`, or why the migration could not be followed.
    #[error("migration failed: {error}")]
    MigrationFailed {
        /// Why, in QEMU's words.
        error: String,
    },
    /// A migration was cancelled (`migrate_cancel`).
    #[error("migration was cancelled")]
    MigrationCancelled,
    /// A human monitor (HMP) command line failed: its output was one of
    /// HMP's error forms (`Error: ...`, `unknown command: ...`, or a usage
    /// message ending in `Try "help ..." for more information`). QMP
    /// itself answered with success; [`crate::Client::human_output`]
    /// returns the text whatever it says.
    #[error("HMP `{command_line}`: {message}")]
    Hmp {
        /// The command line sent.
        command_line: String,
        /// HMP's output, without the trailing line break.
        message: String,
    },
    /// The socket could not be reached (no such path, refused, dial
    /// timeout): QEMU is probably not running there.
    #[error("can't connect to {address}: {source}")]
    Connect {
        /// The socket path or address.
        address: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A socket to serve on could not be made (the proxy's): the path's
    /// folder is missing, or another process serves it.
    #[error("can't listen on {}: {source}", path.display())]
    Listen {
        /// The socket path.
        path: std::path::PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing failed before the connection was up (during the
    /// greeting and capabilities negotiation).
    #[error("QMP handshake I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// A failure of the caller's own code, made with [`Error::caller`]:
    /// not from QEMU nor from this crate. Its text is the caller's.
    #[error("{0}")]
    Caller(Box<dyn std::error::Error + Send + Sync>),
    /// The connection is closed; the cause says why. Every pending and
    /// later call, waiter and event stream of the connection fails with
    /// this.
    #[error(transparent)]
    Closed(Disconnect),
    /// No answer in time. A command that timed out may still run in QEMU
    /// if it had been written to the socket (see
    /// [`crate::Client::execute`]).
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited (a command, the greeting, an event).
        what: String,
        /// How long was waited.
        after: Duration,
    },
    /// The peer broke the protocol during the handshake (no or a bad
    /// greeting, a bad reply to `qmp_capabilities`).
    #[error("QMP protocol error: {0}")]
    Protocol(String),
    /// A reply didn't decode into the command's reply type.
    #[error("{what}: member `{path}` does not decode: {source}")]
    Decode {
        /// The command whose reply was bad.
        what: String,
        /// Path of the bad member (`inserted.image.virtual-size`), `.`
        /// for the whole value.
        path: String,
        /// serde's message.
        #[source]
        source: serde_json::Error,
    },
    /// QEMU sent an event this version of the bindings knows, with data
    /// that does not fit its type. The event is kept in the history as
    /// [`qmp_types::AnyEvent::Malformed`]; typed waits for it fail with
    /// this.
    #[error("event {event}: its data does not decode: {error}")]
    EventDecode {
        /// The event's name.
        event: String,
        /// The decoder's message, with the bad member's path.
        error: String,
    },
    /// The command was not sent: QEMU's JSON parser would reject it (too
    /// deeply nested, too many tokens, too large), and QEMU's answer to
    /// that can't be matched to the call.
    #[error("{command} was not sent: {reason}")]
    Unsendable {
        /// The command.
        command: String,
        /// Which of QEMU's parser limits it exceeds.
        reason: String,
    },
    /// The connected QEMU lacks the command (or an argument given), by
    /// the schemas the bindings cover; it was not sent. The message names
    /// what is needed and the connected version. Turn the check off with
    /// `Options::check_versions`.
    #[error("not sent: {0}")]
    Unavailable(qmp_types::rt::Unavailable),
    /// The connected QEMU's own schema (its `query-qmp-schema`) has no
    /// such command, or would refuse its arguments; it was not sent.
    /// Turn the check off with `Options::check_versions`.
    #[error("not sent: {qemu} (connected) {what}")]
    NotInSchema {
        /// The connected QEMU (`QEMU 11.1.3`).
        qemu: String,
        /// The command.
        command: String,
        /// What it lacks or refuses (`has no command `x``, `has no
        /// argument `detach` of `migrate``, or QEMU's own words).
        what: String,
    },
    /// The connected QEMU's schema is not known: `Options::schema` is
    /// `Off`, or fetching it failed (the reason).
    #[error("the connected QEMU's schema is not known: {0}")]
    NoSchema(String),
    /// The reply had members the bindings don't know, and
    /// `Options::unknown_members` is `Deny`.
    #[error("{command}: {detail}")]
    UnknownMembers {
        /// The command.
        command: String,
        /// Which members, in which types.
        detail: String,
    },
    /// The command's arguments don't encode as JSON.
    #[error("{command}: its arguments don't encode as JSON: {source}")]
    Encode {
        /// The command.
        command: String,
        /// serde's message.
        #[source]
        source: serde_json::Error,
    },
    /// `exec-oob` was asked for, but OOB was not negotiated or the command
    /// doesn't allow it.
    #[error("{command} can't be sent out-of-band: {reason}")]
    OobNotAvailable {
        /// The command.
        command: String,
        /// Why not.
        reason: &'static str,
    },
    /// File descriptors can only be passed over a Unix socket.
    #[error("file descriptors can only be passed over a Unix socket connection")]
    FdPassingUnsupported,
    /// An event subscriber fell behind and `n` events were dropped for it
    /// (the others and the history still have them).
    #[error("{0} events were dropped for a slow subscriber")]
    EventsLost(u64),
    /// Starting QEMU failed (see [`crate::launch`]).
    #[cfg(feature = "launch")]
    #[error(transparent)]
    Launch(#[from] LaunchError),
}

impl Error {
    /// A failure of the code built on this crate (a VM manager's "no
    /// such disk", a check of its own), carried in the crate's error
    /// type: [`Error::Caller`], never taken for QEMU's words (as an
    /// [`Error::Qmp`] made by hand would be).
    ///
    /// ```
    /// let e = qmp_client::Error::caller("no node named drive9 in the VM's config");
    /// assert!(e.class().is_none());
    /// assert_eq!(e.to_string(), "no node named drive9 in the VM's config");
    /// ```
    pub fn caller(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Caller(e.into())
    }

    /// The connection is (now) closed: QEMU quit, the peer hung up, the
    /// client closed it.
    pub fn is_socket_closed(&self) -> bool {
        matches!(self, Error::Closed(_))
    }

    /// Nothing listens at the address.
    pub fn is_socket_not_available(&self) -> bool {
        matches!(self, Error::Connect { .. })
    }

    /// The QMP error class, if QEMU answered with an error.
    pub fn class(&self) -> Option<&ErrorClass> {
        match self {
            Error::Qmp { class, .. } => Some(class),
            _ => None,
        }
    }

    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Why the connection ended, for [`Error::Closed`].
    pub fn disconnect(&self) -> Option<&Disconnect> {
        match self {
            Error::Closed(d) => Some(d),
            _ => None,
        }
    }
}

#[cfg(feature = "launch")]
/// What went wrong starting QEMU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The binary isn't installed (or isn't where the variable points).
    #[error("{program} not found: {hint}")]
    NotFound {
        /// The program that was looked for.
        program: String,
        /// How to get it.
        hint: String,
    },
    /// The binary exists but could not be started.
    #[error("can't start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// QEMU exited before its QMP socket accepted a connection. The
    /// message shows the last lines of its stderr, escaped; the field
    /// holds all that was kept.
    #[error(
        "{program} exited ({status}) before its QMP socket was up; it said:\n{}",
        stderr_tail(stderr)
    )]
    Exited {
        /// The program.
        program: String,
        /// How it ended.
        status: ExitStatus,
        /// What it printed on stderr (the last 64 KiB).
        stderr: String,
    },
    /// The socket did not accept a connection in time. The message shows
    /// the last lines of QEMU's stderr, escaped.
    #[error(
        "{program}'s QMP socket did not come up within {after:?}; it said:\n{}",
        stderr_tail(stderr)
    )]
    Timeout {
        /// The program.
        program: String,
        /// How long was waited.
        after: Duration,
        /// What it printed on stderr so far.
        stderr: String,
    },
    /// The temporary directory could not be made.
    #[error("can't create a temporary directory for QEMU's socket: {0}")]
    TempDir(#[source] std::io::Error),
    /// `Launcher::start_blocking` could not make its runtime.
    #[error("can't make a runtime to wait for QEMU: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Lines of QEMU's stderr a [`LaunchError`] message shows, at most.
#[cfg(feature = "launch")]
const STDERR_LINES: usize = 20;

/// Bytes of QEMU's stderr a [`LaunchError`] message shows, at most.
#[cfg(feature = "launch")]
const STDERR_BYTES: usize = 4096;

/// The end of QEMU's stderr as a message shows it: the last
/// [`STDERR_LINES`] lines (at most [`STDERR_BYTES`] bytes), control
/// characters escaped so a terminal shows them as text.
#[cfg(feature = "launch")]
fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let skip = lines.len().saturating_sub(STDERR_LINES);
    let mut out = String::new();
    for line in &lines[skip..] {
        for c in line.chars() {
            if c.is_control() && c != '\t' {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        out.push('\n');
    }
    let mut cut = out.len().saturating_sub(STDERR_BYTES);
    while !out.is_char_boundary(cut) {
        cut += 1;
    }
    let shown = out[cut..].trim_end();
    if skip > 0 || cut > 0 {
        format!("[earlier output not shown]\n{shown}")
    } else {
        shown.to_string()
    }
}

/// The client's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
