//! The client's one error type.

/// A QMP error class, as QEMU names it in `error.class`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// `GenericError`: most errors.
    GenericError,
    /// `CommandNotFound`: the command doesn't exist (or isn't compiled in).
    CommandNotFound,
    /// `DeviceNotFound`: no device (node, job, ...) by that name.
    DeviceNotFound,
    /// `DeviceNotActive`: the device exists but is not active.
    DeviceNotActive,
    /// `KVMMissingCap`: KVM lacks a capability.
    KvmMissingCap,
    /// A class this client doesn't know, as QEMU sent it.
    Other(String),
}

impl ErrorClass {
    /// The class for QEMU's string.
    pub fn from_wire(s: &str) -> ErrorClass {
        match s {
            "GenericError" => ErrorClass::GenericError,
            "CommandNotFound" => ErrorClass::CommandNotFound,
            "DeviceNotFound" => ErrorClass::DeviceNotFound,
            "DeviceNotActive" => ErrorClass::DeviceNotActive,
            "KVMMissingCap" => ErrorClass::KvmMissingCap,
            other => ErrorClass::Other(other.to_string()),
        }
    }

    /// The class as QEMU spells it.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
            ErrorClass::DeviceNotActive => "DeviceNotActive",
            ErrorClass::KvmMissingCap => "KVMMissingCap",
            ErrorClass::Other(s) => s,
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    /// Reading or writing the connection failed.
    #[error("QMP connection I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The connection is closed (QEMU quit, or the peer hung up); every
    /// pending and later call fails with this.
    #[error("QMP connection closed{}", .0.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    /// No answer in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited (a command, the greeting, an event).
        what: String,
        /// How long was waited.
        after: std::time::Duration,
    },
    /// The peer broke the protocol (garbled JSON, an unexpected message,
    /// a message over the size limit, a bad greeting). The connection is
    /// closed after one.
    #[error("QMP protocol error: {0}")]
    Protocol(String),
    /// A reply or event didn't decode into the expected type.
    #[error("{what}: member `{path}` does not decode: {source}")]
    Decode {
        /// The command (or event) whose data was bad.
        what: String,
        /// Path of the bad member (`.inserted.image.virtual-size`), `.` for
        /// the whole value.
        path: String,
        /// serde's message.
        #[source]
        source: serde_json::Error,
    },
    /// `exec-oob` was asked for, but OOB was not negotiated or the command
    /// doesn't allow it.
    #[error("{0} can't be sent out-of-band: {1}")]
    OobNotAvailable(String, &'static str),
    /// File descriptors can only be passed over a Unix socket.
    #[error("file descriptors can only be passed over a Unix socket connection")]
    FdPassingUnsupported,
    /// An event subscriber fell behind and `n` events were dropped for it
    /// (the others and the history still have them).
    #[error("{0} events were dropped for a slow subscriber")]
    EventsLost(u64),
}

impl Error {
    /// Like the seed's `IsSocketClosed`: the connection is (now) closed.
    pub fn is_socket_closed(&self) -> bool {
        match self {
            Error::Closed(_) => true,
            Error::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }

    /// Like the seed's `IsSocketNotAvailable`: nothing listens there.
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
}

/// The client's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
