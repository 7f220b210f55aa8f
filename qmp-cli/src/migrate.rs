//! `qmp migrate`: a live migration started and followed to its end, on
//! the source (`migrate URI`) or the destination (`migrate --incoming
//! URI`, for a QEMU started with `-incoming defer`), with a progress bar
//! from `query-migrate` and one outcome line.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget};
use qmp_types::{Migrate, MigrateIncoming};

use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::job::{show_progress, spinner_style};

/// A migration to start and follow.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Where to: `unix:/path`, `tcp:host:port`, `exec:...`, `file:...`
    /// (QEMU's migration URI).
    pub uri: String,
    /// This QEMU is the destination (started with `-incoming defer`):
    /// `migrate-incoming` instead of `migrate`.
    #[arg(long)]
    pub incoming: bool,
    /// How often to ask `query-migrate` for progress, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub interval: u64,
    /// Give up after this many seconds without a status change (exit
    /// code 3; the migration goes on in QEMU).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub timeout: u64,
}

/// Runs `qmp migrate`: the `events` capability on, the migration
/// started, progress on stderr, `migration: completed` (or why not) on
/// stdout; exit code 1 when it failed or was cancelled.
pub async fn run(target: &Target, a: &MigrateArgs) -> Result<()> {
    let session = target.connect_keeping_ctrl_c().await?;
    let client = &session.client;
    let m = if a.incoming {
        client
            .start_incoming(MigrateIncoming::new().with_uri(a.uri.as_str()))
            .await?
    } else {
        client
            .start_migration(Migrate::new().with_uri(a.uri.as_str()))
            .await?
    };
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
    bar.set_style(spinner_style());
    bar.set_prefix("migration");
    let wait = m.wait(Duration::from_secs(a.timeout.max(1)));
    tokio::pin!(wait);
    let mut tick = tokio::time::interval(Duration::from_millis(a.interval.max(10)));
    let outcome = loop {
        tokio::select! {
            r = &mut wait => break r,
            _ = tick.tick(), if !a.incoming => {
                let p = m.progress().await?;
                show_progress(&bar, p.total.saturating_sub(p.remaining), p.total);
                let status = p.status.map(|s| s.to_string()).unwrap_or_default();
                bar.set_message(format!("{status} {:.0} Mbit/s", p.mbps));
            }
            _ = tokio::signal::ctrl_c() => {
                bar.abandon();
                return Err(CliError::Usage("interrupted; the migration goes on in QEMU".into()));
            }
        }
    };
    bar.finish_and_clear();
    match outcome {
        Ok(()) => {
            println!("migration: completed");
            Ok(())
        }
        Err(
            e @ (qmp_client::Error::MigrationFailed { .. } | qmp_client::Error::MigrationCancelled),
        ) => {
            println!("{e}");
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}
