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
    /// Log who sent what, as JSON lines, to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
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

/// Removes the listening socket at the end.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
