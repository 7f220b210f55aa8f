//! `qmp proxy`: QEMU's monitor shared by many clients, through
//! `qmp_client::proxy::Proxy`.

use std::path::PathBuf;
use std::time::Duration;

use qmp_client::proxy::{Proxy, ProxyOptions};

use crate::connect::Target;
use crate::error::{CliError, Result};

/// How the proxy serves.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// The socket clients connect to (created; a socket nobody listens on
    /// any more, left by a proxy that was killed, is replaced).
    #[arg(long, value_name = "PATH")]
    pub listen: PathBuf,
    /// Let through only queries (`query-*`) and the `--allow`ed commands.
    #[arg(long)]
    pub read_only: bool,
    /// A command let through in read-only mode (repeat, or separate with
    /// commas).
    #[arg(long, value_name = "NAME", value_delimiter = ',', num_args = 1..)]
    pub allow: Vec<String>,
    /// Log who sent what, as JSON lines, to FILE (created mode 0600;
    /// passwords, `secret` data, cookies, SEV launch secrets and keys
    /// typed into the guest replaced by `"<redacted>"`).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Keep secrets in the log too: every argument as sent, and the
    /// start of each message that is not a command.
    #[arg(long, requires = "log")]
    pub log_secrets: bool,
    /// Longest message a client may send, in bytes (QEMU reads its
    /// monitor at about 2.7 s per MB, every client waiting).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 10)]
    pub max_message: usize,
    /// Bytes of replies and events a client may leave unread before it is
    /// dropped.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub client_bytes: usize,
    /// `exec-oob` commands a client may have in flight; one more and it is
    /// dropped.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_oob: usize,
    /// Seconds a dropped client has to read the replies it is owed.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub drain: f64,
    /// When QEMU goes away, wait for it to come back on the same socket
    /// (dialling again every second) instead of exiting (exit code 3).
    #[arg(long)]
    pub wait: bool,
}

/// Serves until QEMU goes (or, with `--wait`, forever).
pub async fn run(target: &Target, a: &ProxyArgs) -> Result<()> {
    let mut opts = ProxyOptions::default();
    opts.read_only = a.read_only;
    opts.allow = a.allow.clone();
    opts.log = a.log.clone();
    opts.log_secrets = a.log_secrets;
    opts.max_message = a.max_message;
    opts.client_bytes = a.client_bytes;
    opts.max_oob = a.max_oob;
    opts.drain = Duration::try_from_secs_f64(a.drain)
        .map_err(|_| CliError::Usage("--drain must be a positive number".into()))?;
    raise_nofile();
    let proxy = Proxy::bind(&a.listen, opts)?;
    let _cleanup = RemoveOnDrop(a.listen.clone());
    // Killed by a signal, the socket goes too.
    crate::connect::remove_on_signal(a.listen.clone())?;
    let mut session = target.connect().await?;
    eprintln!("qmp: proxy listening on {}", a.listen.display());
    loop {
        let cause = proxy.serve(session.client.clone()).await;
        eprintln!("qmp: proxy: {cause}");
        if !a.wait {
            return Err(CliError::Connection(qmp_client::Error::Closed(cause)));
        }
        session = loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Ok(s) = target.connect().await {
                break s;
            }
        };
        eprintln!("qmp: proxy: QEMU is back");
    }
}

/// Each client takes a descriptor: the soft limit goes up to the hard
/// one (the proxy still answers clients past it, with an error).
fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Removes the listening socket at the end.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
