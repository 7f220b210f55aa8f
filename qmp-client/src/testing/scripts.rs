//! QEMU's behaviour in one call, the public side: a job, a migration or
//! a device removal the double plays as real QEMU did when it was
//! recorded ([`super::recorded`]), given to [`MockQemu::job`],
//! [`MockQemu::migration`] and [`MockQemu::device`]. What plays them is
//! [`super::scenes`].

use std::panic::Location;

use super::MockQemu;

/// The kinds of job QEMU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Backup,
    Mirror,
    Commit,
    ActiveCommit,
    Stream,
    Create,
    Amend,
    SnapshotSave,
    SnapshotLoad,
    SnapshotDelete,
}

impl Kind {
    /// Its `JobType` value.
    pub(crate) fn ty(self) -> &'static str {
        match self {
            Kind::Backup => "backup",
            Kind::Mirror => "mirror",
            Kind::Commit | Kind::ActiveCommit => "commit",
            Kind::Stream => "stream",
            Kind::Create => "create",
            Kind::Amend => "amend",
            Kind::SnapshotSave => "snapshot-save",
            Kind::SnapshotLoad => "snapshot-load",
            Kind::SnapshotDelete => "snapshot-delete",
        }
    }

    /// Whether it is a block job (`BLOCK_JOB_*` events,
    /// `query-block-jobs`, `block-job-*` commands).
    pub(crate) fn block(self) -> bool {
        matches!(
            self,
            Kind::Backup | Kind::Mirror | Kind::Commit | Kind::ActiveCommit | Kind::Stream
        )
    }

    /// The commands that start it.
    pub(crate) fn starts(self, cmd: &str) -> bool {
        match self {
            Kind::Backup => matches!(cmd, "blockdev-backup" | "drive-backup"),
            Kind::Mirror => matches!(cmd, "blockdev-mirror" | "drive-mirror"),
            Kind::Commit | Kind::ActiveCommit => cmd == "block-commit",
            Kind::Stream => cmd == "block-stream",
            Kind::Create => cmd == "blockdev-create",
            Kind::Amend => cmd == "x-blockdev-amend",
            Kind::SnapshotSave => cmd == "snapshot-save",
            Kind::SnapshotLoad => cmd == "snapshot-load",
            Kind::SnapshotDelete => cmd == "snapshot-delete",
        }
    }

    /// Its recordings: success first, then failure, then the others its
    /// caller may switch to on the way (a cancel). An active commit is a
    /// mirror inside QEMU and plays a mirror's cancel; a running block job
    /// cancelled plays a backup's cancel; a job kind with no failure of
    /// its own recorded plays its family's (a snapshot's, or a commit's).
    pub(crate) fn recordings(self) -> &'static [&'static str] {
        match self {
            Kind::Backup => &[
                "backup",
                "backup-error",
                "backup-cancel",
                "backup-stop-cancel",
            ],
            Kind::Mirror => &[
                "mirror-complete",
                "mirror-error",
                "mirror-cancel",
                "backup-cancel",
            ],
            Kind::Commit => &["commit", "commit-error", "backup-cancel"],
            Kind::ActiveCommit => &[
                "commit-active",
                "commit-error",
                "mirror-cancel",
                "backup-cancel",
            ],
            Kind::Stream => &["stream", "stream-error", "backup-cancel"],
            Kind::Create => &["create", "create-error"],
            Kind::Amend => &["amend", "create-error"],
            Kind::SnapshotSave => &["snapshot-save", "snapshot-save-error"],
            Kind::SnapshotLoad => &["snapshot-load", "snapshot-save-error"],
            Kind::SnapshotDelete => &["snapshot-delete", "snapshot-save-error"],
        }
    }
}

/// How a scripted job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    Succeeds,
    Fails(String),
    /// Runs until the caller cancels it.
    UntilCancelled,
    /// A write error with `on-*-error: stop`: paused until cancelled.
    StopsOnError,
}

/// A job the double runs as QEMU does (see [`MockQemu::job`]): started
/// by its command (`blockdev-backup`, `blockdev-mirror`, `block-commit`,
/// `block-stream`, `blockdev-create`, `x-blockdev-amend`,
/// `snapshot-save`/`-load`/`-delete`) with this `job-id`, it sends the
/// events QEMU sent in the recording of that kind and end (statuses,
/// `BLOCK_JOB_*`), waits where QEMU waits for its caller (`job-finalize`
/// with `auto-finalize: false`, `job-dismiss` with `auto-dismiss: false`
/// and for every non-block job, `block-job-complete` of a ready mirror),
/// answers `query-jobs` and `query-block-jobs` with its state, and
/// refuses a command in the wrong state with QEMU's words.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> qmp_client::Result<()> {
/// use std::time::Duration;
/// use qmp_client::testing::{MockQemu, ScriptedJob};
/// use qmp_types::{BlockdevBackup, MirrorSyncMode};
///
/// let mock = MockQemu::with_version("10.0.2")?;
/// mock.job(ScriptedJob::backup("job0").fails("No space left on device"));
/// let qmp = mock.connect(Default::default()).await?;
/// let job = qmp
///     .start_job(BlockdevBackup::new("disk0", MirrorSyncMode::Full, "tgt").with_job_id("job0"))
///     .await?;
/// let err = job.wait(Duration::from_secs(5)).await.unwrap_err();
/// assert!(err.to_string().contains("No space left on device"), "{err}");
/// # mock.verify() }
/// ```
#[derive(Debug, Clone)]
pub struct ScriptedJob {
    pub(crate) kind: Kind,
    pub(crate) id: String,
    pub(crate) end: End,
    pub(crate) len: Option<i64>,
    pub(crate) polls: usize,
    pub(crate) at: &'static Location<'static>,
}

macro_rules! job_kinds {
    ($($(#[$doc:meta])* $fn:ident => $kind:ident,)*) => {
        impl ScriptedJob {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $fn(id: impl Into<String>) -> ScriptedJob {
                    ScriptedJob::new(Kind::$kind, id.into())
                }
            )*
        }
    };
}

job_kinds! {
    /// A backup (`blockdev-backup`, `drive-backup`).
    backup => Backup,
    /// A mirror (`blockdev-mirror`, `drive-mirror`): ready, then waiting
    /// for `block-job-complete` (or a cancel, which ends it without
    /// switching over, as QEMU does).
    mirror => Mirror,
    /// A commit of an intermediate layer (`block-commit` with `top-node`).
    commit => Commit,
    /// A commit of the active layer (`block-commit` without `top-node`):
    /// ready, then waiting for `block-job-complete`, as a mirror.
    active_commit => ActiveCommit,
    /// A stream (`block-stream`).
    stream => Stream,
    /// An image creation (`blockdev-create`): concluded, then waiting for
    /// `job-dismiss`, as QEMU leaves it.
    create => Create,
    /// An options amend (`x-blockdev-amend`), dismissed by its caller.
    amend => Amend,
    /// A snapshot save (`snapshot-save`), dismissed by its caller.
    snapshot_save => SnapshotSave,
    /// A snapshot load (`snapshot-load`), dismissed by its caller.
    snapshot_load => SnapshotLoad,
    /// A snapshot delete (`snapshot-delete`), dismissed by its caller.
    snapshot_delete => SnapshotDelete,
}

impl ScriptedJob {
    #[track_caller]
    fn new(kind: Kind, id: String) -> ScriptedJob {
        ScriptedJob {
            kind,
            id,
            end: End::Succeeds,
            len: None,
            polls: 0,
            at: Location::caller(),
        }
    }

    /// The job fails with `desc` as its error (`BLOCK_JOB_COMPLETED`'s
    /// `error`, `query-jobs`' `error`), after a `BLOCK_JOB_ERROR` for a
    /// block job, as QEMU's write errors go.
    #[must_use]
    pub fn fails(mut self, desc: impl Into<String>) -> ScriptedJob {
        self.end = End::Fails(desc.into());
        self
    }

    /// The job runs until its caller cancels it (`block-job-cancel` or
    /// `job-cancel`), then ends cancelled. A block job only.
    #[must_use]
    pub fn until_cancelled(mut self) -> ScriptedJob {
        self.end = End::UntilCancelled;
        self
    }

    /// The job meets a write error with `on-target-error: stop`: a
    /// `BLOCK_JOB_ERROR` (action `stop`), then `paused` until its caller
    /// cancels it. A block job only.
    #[must_use]
    pub fn stops_on_error(mut self) -> ScriptedJob {
        self.end = End::StopsOnError;
        self
    }

    /// The job's length in bytes (`len`, `total-progress`; what the
    /// recording had by default: 16 MiB for most).
    #[must_use]
    pub fn len(mut self, bytes: i64) -> ScriptedJob {
        self.len = Some(bytes);
        self
    }

    /// The job stays `running` for `n` polls (`query-jobs` or
    /// `query-block-jobs`), each showing more progress, before it goes
    /// on: for code that reports progress.
    #[must_use]
    pub fn progress(mut self, n: usize) -> ScriptedJob {
        self.polls = n;
        self
    }
}

/// A migration the double plays as QEMU does (see
/// [`MockQemu::migration`]): `migrate` starts it; `MIGRATION` events
/// come (when the `events` capability is on, as QEMU sends them), with
/// `STOP` at the switch-over; `query-migrate` answers with its status,
/// RAM figures and error.
#[derive(Debug, Clone)]
pub struct ScriptedMigration {
    pub(crate) end: End,
    pub(crate) postcopy: bool,
    pub(crate) polls: usize,
    pub(crate) at: &'static Location<'static>,
}

impl ScriptedMigration {
    /// A migration that completes.
    #[track_caller]
    pub fn completes() -> ScriptedMigration {
        ScriptedMigration {
            end: End::Succeeds,
            postcopy: false,
            polls: 0,
            at: Location::caller(),
        }
    }

    /// A migration that fails, with `desc` as `query-migrate`'s
    /// `error-desc`.
    #[track_caller]
    pub fn fails(desc: impl Into<String>) -> ScriptedMigration {
        ScriptedMigration {
            end: End::Fails(desc.into()),
            ..ScriptedMigration::completes()
        }
    }

    /// A migration that stays active until `migrate_cancel`, then ends
    /// cancelled.
    #[track_caller]
    pub fn until_cancelled() -> ScriptedMigration {
        ScriptedMigration {
            end: End::UntilCancelled,
            ..ScriptedMigration::completes()
        }
    }

    /// A migration that stays active until `migrate-start-postcopy`, then
    /// goes `postcopy-active` and completes (or is cancelled while
    /// active, if the caller says so instead).
    #[track_caller]
    pub fn postcopy() -> ScriptedMigration {
        ScriptedMigration {
            postcopy: true,
            ..ScriptedMigration::completes()
        }
    }

    /// The migration stays `active` for `n` polls of `query-migrate`,
    /// each with less remaining.
    #[must_use]
    pub fn progress(mut self, n: usize) -> ScriptedMigration {
        self.polls = n;
        self
    }
}

/// A device removal the double plays as QEMU does (see
/// [`MockQemu::device`]): `device_del` of its id answers `{}`, then
/// `DEVICE_DELETED` comes (a USB device, or a guest that ejects it), or
/// never does (a PCI device without a guest); once deleted, the id is
/// unknown (`DeviceNotFound`).
#[derive(Debug, Clone)]
pub struct ScriptedDevice {
    pub(crate) id: String,
    pub(crate) deleted: bool,
    pub(crate) at: &'static Location<'static>,
}

impl ScriptedDevice {
    /// `device_del` of `id` is followed by `DEVICE_DELETED`.
    #[track_caller]
    pub fn deleted(id: impl Into<String>) -> ScriptedDevice {
        ScriptedDevice {
            id: id.into(),
            deleted: true,
            at: Location::caller(),
        }
    }

    /// `device_del` of `id` answers `{}`, and nothing follows.
    #[track_caller]
    pub fn never_deleted(id: impl Into<String>) -> ScriptedDevice {
        ScriptedDevice {
            deleted: false,
            ..ScriptedDevice::deleted(id)
        }
    }
}

impl MockQemu {
    /// Plays job `job` as QEMU does, from recordings of real QEMU (the
    /// nearest version at or below the double's): see [`ScriptedJob`].
    /// A job never started is reported by [`Mock::verify`](super::Mock::verify).
    pub fn job(&self, job: ScriptedJob) -> &Self {
        self.lock().scenes.add_job(job);
        self
    }

    /// Plays the next migration as QEMU does: see [`ScriptedMigration`].
    pub fn migration(&self, migration: ScriptedMigration) -> &Self {
        self.lock().scenes.add_migration(migration);
        self
    }

    /// Plays a device's removal as QEMU does: see [`ScriptedDevice`].
    pub fn device(&self, device: ScriptedDevice) -> &Self {
        self.lock().scenes.add_device(device);
        self
    }
}
