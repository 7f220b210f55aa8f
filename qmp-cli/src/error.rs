//! The command line's one error type, and the exit code each kind gives.

/// Everything that makes `qmp` exit non-zero. The message says what to
/// do; [`CliError::exit_code`] tells scripts which kind it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// QEMU answered the command with an error (exit code 1).
    #[error("{command}: QEMU says {class}: {desc}")]
    Qmp {
        /// The command that failed.
        command: String,
        /// QEMU's error class (`GenericError`, `DeviceNotFound`, ...).
        class: String,
        /// QEMU's description.
        desc: String,
    },
    /// A human monitor (HMP) command line failed; its output was HMP's
    /// error text (exit code 1).
    #[error("HMP `{command_line}`: {message}")]
    Hmp {
        /// The command line sent.
        command_line: String,
        /// HMP's output.
        message: String,
    },
    /// A command name the bindings don't know (exit code 2).
    #[error("unknown command '{name}'{}", did_you_mean(.suggestions))]
    UnknownCommand {
        /// The name given.
        name: String,
        /// Known names close to it.
        suggestions: Vec<String>,
    },
    /// Arguments that don't fit the command's schema; nothing was sent
    /// (exit code 2).
    #[error("{command}: {message}")]
    BadArguments {
        /// The command.
        command: String,
        /// What is wrong, with the member's path.
        message: String,
    },
    /// A command line that can't be used (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// QEMU could not be reached, the connection broke, or no reply came
    /// in time (exit code 3).
    #[error("{0}")]
    Connection(#[source] qmp_client::Error),
    /// QEMU accepted the connection but sent no greeting in time: another
    /// client probably holds the monitor (exit code 3).
    #[error(
        "{0}; is another client connected? A QMP socket serves one client at a time (give QEMU another -qmp socket, or share this one with `qmp proxy`)"
    )]
    Busy(#[source] qmp_client::Error),
    /// Starting a private QEMU (`--spawn`) failed (exit code 3).
    #[error("can't start QEMU: {0}")]
    Spawn(#[from] qmp_client::launch::LaunchError),
    /// A reply or event that the bindings could not decode, or another
    /// client error (exit code 4).
    #[error("{0}")]
    Client(#[source] qmp_client::Error),
    /// Reading a file or the terminal failed (exit code 4).
    #[error("{0}")]
    Io(String),
    /// `qmp job watch`: these jobs failed or were cancelled (exit code 1).
    #[error("job failed or was cancelled: {0}")]
    JobFailed(String),
    /// `qmp job run`: the job failed or was cancelled, as its outcome line
    /// on stdout says (exit code 1; nothing is added on stderr).
    #[error("")]
    JobOutcome,
    /// A job or a migration the command followed failed or was
    /// cancelled: QEMU's text (exit code 1).
    #[error("{0}")]
    Failed(#[source] qmp_client::Error),
    /// `qmp conform` found differences the bindings don't explain (exit
    /// code 1).
    #[error("{0}")]
    Nonconforming(String),
}

fn did_you_mean(s: &[String]) -> String {
    match s {
        [] => String::new(),
        [one] => format!("; did you mean '{one}'?"),
        many => format!("; did you mean one of: {}?", many.join(", ")),
    }
}

impl CliError {
    /// The message, then each cause behind it that the message does not
    /// already say (e.g. the OS's "Connection reset by peer" behind
    /// "reading the socket failed"): the one line `qmp` prints.
    pub fn message_with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let said = c.to_string();
            if !text.contains(&said) {
                text = format!("{text}: {said}");
            }
            cause = c.source();
        }
        text
    }

    /// The process exit code: 1 QEMU refused (or `conform` differs), 2 bad
    /// input (nothing sent), 3 no connection, 4 anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Qmp { .. }
            | CliError::Hmp { .. }
            | CliError::Nonconforming(_)
            | CliError::JobFailed(_)
            | CliError::Failed(_)
            | CliError::JobOutcome => 1,
            CliError::UnknownCommand { .. }
            | CliError::BadArguments { .. }
            | CliError::Usage(_) => 2,
            CliError::Connection(_) | CliError::Busy(_) | CliError::Spawn(_) => 3,
            CliError::Client(_) | CliError::Io(_) => 4,
        }
    }
}

impl From<qmp_client::Error> for CliError {
    fn from(e: qmp_client::Error) -> Self {
        use qmp_client::Error as E;
        match e {
            E::Qmp {
                command,
                class,
                desc,
            } => CliError::Qmp {
                command,
                class: class.to_string(),
                desc,
            },
            E::Hmp {
                command_line,
                message,
            } => CliError::Hmp {
                command_line,
                message,
            },
            e @ (E::JobFailed { .. }
            | E::JobCancelled { .. }
            | E::JobOutcomeUnknown { .. }
            | E::MigrationFailed { .. }
            | E::MigrationCancelled) => CliError::Failed(e),
            E::Unavailable(u) => CliError::Usage(u.to_string()),
            e @ E::NotInSchema { .. } => CliError::Usage(e.to_string()),
            // No reply in time: QEMU is stuck or gone, as far as the
            // caller can tell (exit code 3).
            e @ E::Timeout { .. } => CliError::Connection(e),
            e @ (E::Connect { .. } | E::Io(_) | E::Closed(_) | E::Protocol(_)) => {
                CliError::Connection(e)
            }
            e => CliError::Client(e),
        }
    }
}

/// What the command line's functions return.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_printed_line_says_what_the_os_said_once() {
        let line = |kind: std::io::ErrorKind| {
            let io = std::io::Error::from(kind);
            let said = io.to_string();
            let e = CliError::Connection(qmp_client::Error::Closed(qmp_client::Disconnect::Io {
                op: "reading",
                error: Arc::new(io),
            }));
            let line = e.message_with_causes();
            assert_eq!(line.matches(&said).count(), 1, "{line}");
            line
        };
        let other = line(std::io::ErrorKind::PermissionDenied);
        assert!(
            other.starts_with("QMP connection closed: reading the socket failed: "),
            "{other}"
        );
        // A reset is QEMU going with data unread (a killed QEMU): said so.
        let reset = line(std::io::ErrorKind::ConnectionReset);
        assert!(
            reset.starts_with(
                "QMP connection closed: QEMU closed the connection before reading all it was sent"
            ),
            "{reset}"
        );
        // A cause the message already holds is not repeated.
        let e = CliError::Usage("bad".into());
        assert_eq!(e.message_with_causes(), "bad");
    }
}
