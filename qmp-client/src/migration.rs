//! [`Migration`]: a handle on a live migration, outgoing (`migrate`) or
//! incoming (`migrate-incoming`), read from `MIGRATION` events (which QEMU
//! sends only with the `events` migration capability on: the handle sets
//! it before starting) and `query-migrate`.
//!
//! Every [`MigrationStatus`] is handled: `completed` ends a wait well,
//! `failed` with QEMU's `error-desc` ([`Error::MigrationFailed`]),
//! `cancelled` with [`Error::MigrationCancelled`]; the others (`none`,
//! `setup`, `active`, `device`, `pre-switchover`, `wait-unplug`,
//! `cancelling`, `colo`, every `postcopy-*`) are on the way, never the end.

use std::time::Duration;

use qmp_types::{
    Command, Migrate, MigrateCancel, MigrateIncoming, MigrateSetCapabilities, MigrateStartPostcopy,
    Migration as MigrationEvent, MigrationCapability, MigrationCapabilityStatus, MigrationInfo,
    MigrationStatus, Qmp, QueryMigrate,
};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::history::{EventRecord, Since};

/// A migration started through [`Client::start_migration`] (outgoing) or
/// [`Client::start_incoming`] (incoming), on that QEMU's connection.
///
/// ```no_run
/// # async fn demo(src: qmp_client::Client, dst: qmp_client::Client) -> qmp_client::Result<()> {
/// use std::time::Duration;
/// use qmp_types::{Migrate, MigrateIncoming};
///
/// let incoming = dst.start_incoming(MigrateIncoming::new().with_uri("unix:/run/mig.sock")).await?;
/// let outgoing = src.start_migration(Migrate::new().with_uri("unix:/run/mig.sock")).await?;
/// let p = outgoing.progress().await?;
/// println!("{:?}: {} of {} bytes left", p.status, p.remaining, p.total);
/// outgoing.wait(Duration::from_secs(600)).await?; // Err(MigrationFailed) with QEMU's text
/// incoming.wait(Duration::from_secs(60)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Migration {
    client: Client,
    since: Since,
}

/// A migration's progress, from `query-migrate` (RAM figures; zero
/// before QEMU reports them).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MigrationProgress {
    /// Where it is; `None` before any migration.
    pub status: Option<MigrationStatus>,
    /// Bytes sent so far.
    pub transferred: u64,
    /// Bytes still to send.
    pub remaining: u64,
    /// Bytes of guest RAM in all.
    pub total: u64,
    /// Throughput, in megabits per second.
    pub mbps: f64,
    /// Pages dirtied per second by the guest.
    pub dirty_pages_rate: u64,
    /// QEMU's estimate of the downtime at switch-over, in milliseconds.
    pub expected_downtime_ms: Option<u64>,
    /// Why it failed, once it has.
    pub error: Option<String>,
}

impl From<MigrationInfo> for MigrationProgress {
    fn from(m: MigrationInfo) -> MigrationProgress {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let ram = m.ram.as_ref();
        MigrationProgress {
            status: m.status,
            transferred: ram.map_or(0, |r| n(r.transferred)),
            remaining: ram.map_or(0, |r| n(r.remaining)),
            total: ram.map_or(0, |r| n(r.total)),
            mbps: ram.map_or(0.0, |r| r.mbps.get()),
            dirty_pages_rate: ram.map_or(0, |r| n(r.dirty_pages_rate)),
            expected_downtime_ms: m.expected_downtime.map(n),
            error: m.error_desc,
        }
    }
}

impl Client {
    /// Turns the `events` migration capability on (so QEMU sends
    /// `MIGRATION` events), then sends `cmd` (`migrate` with a URI or
    /// channels). The event cursor is taken first, so a migration that
    /// ends before the reply is seen.
    pub async fn start_migration(&self, cmd: Migrate) -> Result<Migration> {
        self.migration_side(cmd).await
    }

    /// The destination's side: the `events` capability on, then `cmd`
    /// (`migrate-incoming`, for a QEMU started with `-incoming defer`).
    pub async fn start_incoming(&self, cmd: MigrateIncoming) -> Result<Migration> {
        self.migration_side(cmd).await
    }

    /// The `events` capability on, the cursor taken, `cmd` sent.
    async fn migration_side<C: Command<Protocol = Qmp>>(&self, cmd: C) -> Result<Migration> {
        self.migration_events().await?;
        let since = self.event_cursor();
        self.execute(cmd).await?;
        Ok(Migration {
            client: self.clone(),
            since,
        })
    }

    async fn migration_events(&self) -> Result<()> {
        let on = MigrationCapabilityStatus::new(MigrationCapability::Events, true);
        self.execute(MigrateSetCapabilities::new(vec![on]))
            .await
            .map_err(|e| match e {
                Error::Qmp { desc, .. } => Error::MigrationFailed {
                    error: format!(
                        "QEMU refused the `events` migration capability, without which no \
                         MIGRATION event comes: {desc}"
                    ),
                },
                e => e,
            })
    }
}

impl Migration {
    /// Its progress now (`query-migrate`).
    pub async fn progress(&self) -> Result<MigrationProgress> {
        Ok(self.client.execute(QueryMigrate::new()).await?.into())
    }

    /// Waits until the migration has ended: `Ok` when `completed`,
    /// [`Error::MigrationFailed`] with QEMU's `error-desc` when `failed`,
    /// [`Error::MigrationCancelled`]. `timeout` bounds the wait for each
    /// status change. (With the `pause-before-switchover` capability on,
    /// the source stops at `pre-switchover` until `migrate-continue`; a
    /// postcopy migration whose network fails stays `postcopy-paused`
    /// until `migrate-recover` and a resumed `migrate`.)
    pub async fn wait(&self, timeout: Duration) -> Result<()> {
        self.run_until(None, timeout).await
    }

    /// Waits until the migration reaches `status` (`postcopy-active`
    /// after [`Migration::start_postcopy`], `pre-switchover`, `device`); a
    /// migration that ends first ends the wait with its outcome
    /// ([`Error::MigrationFailed`] when it completed without reaching
    /// `status`).
    pub async fn wait_status(&self, status: MigrationStatus, timeout: Duration) -> Result<()> {
        self.run_until(Some(status), timeout).await
    }

    async fn run_until(&self, want: Option<MigrationStatus>, timeout: Duration) -> Result<()> {
        let mut since = self.since;
        loop {
            let mine = |r: &EventRecord| matches!(r.typed::<MigrationEvent>(), Ok(Some(_)));
            let r = self
                .client
                .wait_for_record(since, timeout, || "a MIGRATION event".into(), &mine)
                .await?;
            since = Since::Cursor(r.seq + 1);
            let Ok(Some(e)) = r.typed::<MigrationEvent>() else {
                continue;
            };
            if want.as_ref() == Some(&e.status) {
                return Ok(());
            }
            match e.status {
                MigrationStatus::Completed => {
                    return match want {
                        None => Ok(()),
                        Some(w) => Err(Error::MigrationFailed {
                            error: format!("it completed without reaching {}", w.as_str()),
                        }),
                    };
                }
                MigrationStatus::Failed => {
                    let error = self
                        .progress()
                        .await
                        .ok()
                        .and_then(|p| p.error)
                        .unwrap_or_else(|| "QEMU gave no reason".into());
                    return Err(Error::MigrationFailed { error });
                }
                MigrationStatus::Cancelled => return Err(Error::MigrationCancelled),
                _ => {}
            }
        }
    }

    /// `migrate-start-postcopy`: switches a running precopy migration
    /// (with the `postcopy-ram` capability on, on both sides) to postcopy.
    pub async fn start_postcopy(&self) -> Result<()> {
        self.client.execute(MigrateStartPostcopy::new()).await
    }

    /// `migrate_cancel`: the migration stops; its wait ends with
    /// [`Error::MigrationCancelled`].
    pub async fn cancel(&self) -> Result<()> {
        self.client.execute(MigrateCancel::new()).await
    }
}
