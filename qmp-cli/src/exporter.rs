//! `qmp exporter`: the collector's series as OpenMetrics text on an HTTP
//! endpoint (`GET /metrics`), for Prometheus to scrape. One exporter per
//! host; Prometheus scrapes and federates.
//!
//! Names and labels follow Prometheus' conventions: the `qemu_` prefix,
//! units in names (`_bytes`, `_seconds`), `_total` on counters (added by
//! the encoder), a `monitor` label (the VM's name, else its socket's)
//! and a `socket` label on every series, and `qemu_up` per monitor. No
//! label is named as Prometheus names its own (`job`, `instance`): a
//! job's id is `job_id`.
//! A scrape reads what the polls left; it never waits for a monitor.

mod http;
mod metrics;

use std::sync::Arc;

use clap::Args;

use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::watching::WatchArgs;

/// `qmp exporter`'s arguments.
#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// The address the HTTP endpoint listens on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9677")]
    pub listen: String,
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// Serves until killed.
pub async fn run(target: &Target, a: &ExporterArgs) -> Result<()> {
    // The last two samples are all a scrape reads (Prometheus keeps the
    // series).
    let collector = Arc::new(a.watch.start(target, 2)?);
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .map_err(|e| CliError::Io(format!("can't listen on {}: {e}", a.listen)))?;
    if let Ok(addr) = listener.local_addr() {
        eprintln!("qmp exporter: serving http://{addr}/metrics");
    }
    http::serve(listener, collector).await
}

pub use metrics::encode;
