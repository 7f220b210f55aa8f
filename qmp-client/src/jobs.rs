//! [`Job`]: a handle on a job QEMU runs (block jobs and `job-*` ones:
//! backup, mirror, commit, stream, blockdev-create, snapshot-save/load/
//! delete, amend), started through it or attached to by id.
//!
//! What a job does is read from its events, which the connection keeps in
//! its history from the moment the handle's cursor was taken (before the
//! starting command was sent), so a job that ends before the command's
//! reply is seen like any other: `JOB_STATUS_CHANGE` for its states,
//! `BLOCK_JOB_COMPLETED` (with `error` when it failed) and
//! `BLOCK_JOB_CANCELLED` for a block job's outcome, and `query-jobs`'s
//! `error` for the others, which stay `concluded` until dismissed.

use std::time::Duration;

use qmp_types::{
    BlockErrorAction, BlockJobCancelled, BlockJobCompleted, BlockJobError, Command, JobCancel,
    JobComplete, JobDismiss, JobFinalize, JobInfo, JobPause, JobResume, JobStatus, JobStatusChange,
    Qmp, QueryBlockJobs, QueryJobs,
};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::history::{EventRecord, Since};

/// A job QEMU runs, by its id. Made by [`Client::start_job`] (which
/// takes the event cursor before sending the command, so nothing the
/// job does is missed) or [`Client::attach_job`] (a job started
/// elsewhere: its events from the connection's history on).
///
/// Its waits end with the job's outcome as QEMU tells it:
/// [`Error::JobFailed`] with QEMU's text, [`Error::JobCancelled`], or
/// [`Error::Closed`] when the connection (or QEMU) goes away. A job gone
/// without its outcome seen (dismissed by someone else, or an id QEMU
/// never had) is [`Error::JobOutcomeUnknown`], never success. A wait
/// that times out on a job paused by an I/O error (`on-target-error:
/// stop` or `enospc`) says so, with the device's I/O status.
///
/// ```no_run
/// # async fn demo(qmp: qmp_client::Client) -> qmp_client::Result<()> {
/// use std::time::Duration;
/// use qmp_client::JobUpdate;
/// use qmp_types::{BlockdevBackup, BlockdevMirror, MirrorSyncMode};
///
/// let job = qmp
///     .start_job(BlockdevBackup::new("drive0", MirrorSyncMode::Full, "bk0").with_job_id("bk"))
///     .await?;
/// let mut watch = job.watch(Duration::from_millis(500));
/// while let Some(update) = watch.next().await {
///     match update? {
///         JobUpdate::Progress(p) => println!("{:?} {}/{}", p.status, p.current, p.total),
///         JobUpdate::Ended(outcome) => outcome?,
///         _ => {}
///     }
/// }
/// // A mirror: wait until it is in sync, then switch over.
/// let mirror = qmp
///     .start_job(BlockdevMirror::new("drive0", "copy0", MirrorSyncMode::Full).with_job_id("m"))
///     .await?;
/// mirror.wait_ready(Duration::from_secs(600)).await?;
/// mirror.complete().await?;
/// mirror.wait(Duration::from_secs(60)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Job {
    client: Client,
    id: String,
    since: Since,
}

/// A job's progress, from `query-jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobProgress {
    /// Its state.
    pub status: JobStatus,
    /// Work done, in the job's units (bytes for block jobs).
    pub current: u64,
    /// Work to do in all, as QEMU estimates it now (it may grow).
    pub total: u64,
    /// Why it failed, once it has (`concluded` with an error).
    pub error: Option<String>,
}

impl From<JobInfo> for JobProgress {
    fn from(j: JobInfo) -> JobProgress {
        JobProgress {
            status: j.status,
            current: u64::try_from(j.current_progress).unwrap_or(0),
            total: u64::try_from(j.total_progress).unwrap_or(0),
            error: j.error,
        }
    }
}

impl Client {
    /// Sends `cmd`, a command that starts a job (`blockdev-backup`,
    /// `blockdev-mirror`, `block-commit`, `block-stream`,
    /// `blockdev-create`, `snapshot-save`, ...), and returns a handle on
    /// that job. The job's id is the command's `job-id`, or (a block job
    /// started without one) its `device`, as QEMU names it; a command with
    /// neither is refused before sending ([`Error::Encode`]). The event
    /// cursor is taken before sending, so a job that ends before the reply
    /// is seen whole.
    pub async fn start_job<C: Command<Protocol = Qmp>>(&self, cmd: C) -> Result<Job> {
        let args = serde_json::to_value(&cmd).map_err(|source| Error::Encode {
            command: C::NAME.to_string(),
            source,
        })?;
        let id = Job::id_in(&args)
            .ok_or_else(|| Error::Encode {
                command: C::NAME.to_string(),
                source: serde::ser::Error::custom(
                    "a job needs an id: set the command's `job-id` (or `device`)",
                ),
            })?
            .to_string();
        self.start_job_with(&id, async { self.execute(cmd).await.map(drop) })
            .await
    }

    /// A job named `id` that `start` starts (a transaction with a
    /// backup action, say): the event cursor is taken before `start`
    /// runs, so the handle sees the job whole. `start`'s error is
    /// returned as it is.
    pub async fn start_job_with<F, E>(&self, id: &str, start: F) -> std::result::Result<Job, E>
    where
        F: std::future::Future<Output = std::result::Result<(), E>>,
    {
        let since = self.event_cursor();
        start.await?;
        Ok(Job {
            client: self.clone(),
            id: id.to_string(),
            since,
        })
    }

    /// A handle on job `id`, started elsewhere (by another call, or
    /// before this connection: then only `query-jobs` knows of its past).
    /// Its waits read the connection's whole event history.
    pub fn attach_job(&self, id: &str) -> Job {
        Job {
            client: self.clone(),
            id: id.to_string(),
            since: Since::Cursor(0),
        }
    }
}

/// Where a reader of a job's events is, and what they (and `query-jobs`)
/// said of it so far.
struct Reader {
    since: Since,
    /// From `BLOCK_JOB_COMPLETED` or `BLOCK_JOB_CANCELLED`.
    outcome: Option<std::result::Result<(), Error>>,
    /// The job went through `aborting`.
    aborted: bool,
    /// Any event of the job was read, or `query-jobs` listed it.
    seen: bool,
    /// The error `query-jobs` gave, kept in case the job is dismissed
    /// before its end is read.
    error: Option<String>,
    /// The last `BLOCK_JOB_ERROR`: the operation and the action taken.
    io_error: Option<(String, BlockErrorAction)>,
    /// The last status read.
    status: Option<JobStatus>,
}

/// Whether `rec` is about job `id`: its status, a block job's outcome
/// or I/O error.
fn mine(rec: &EventRecord, id: &str) -> bool {
    matches!(rec.typed::<JobStatusChange>(), Ok(Some(e)) if e.id == id)
        || matches!(rec.typed::<BlockJobCompleted>(), Ok(Some(e)) if e.device == id)
        || matches!(rec.typed::<BlockJobCancelled>(), Ok(Some(e)) if e.device == id)
        || matches!(rec.typed::<BlockJobError>(), Ok(Some(e)) if e.device == id)
}

/// What a job did next, as [`Job::advance`] reads it.
enum Seen {
    /// A status change other than the end.
    Status(JobStatus),
    /// `concluded` or `null`: the job ended (its outcome from
    /// [`Job::outcome`]).
    Ended(JobStatus),
    /// No event within the period: the [`Error::Timeout`] saying so.
    Quiet(Error),
}

impl Job {
    /// The id of the job a command with arguments `args` starts: its
    /// `job-id`, or (a block job started without one) its `device`, as
    /// QEMU names it.
    pub fn id_in(args: &serde_json::Value) -> Option<&str> {
        ["job-id", "device"]
            .iter()
            .find_map(|k| args.get(*k).and_then(serde_json::Value::as_str))
    }

    /// The job's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its progress now (`query-jobs`); `None` once QEMU no longer has
    /// it (dismissed).
    pub async fn progress(&self) -> Result<Option<JobProgress>> {
        Ok(self.info().await?.map(JobProgress::from))
    }

    async fn info(&self) -> Result<Option<JobInfo>> {
        let jobs = self.client.execute(QueryJobs::new()).await?;
        Ok(jobs.into_iter().find(|j| j.id == self.id))
    }

    fn reader(&self) -> Reader {
        Reader {
            since: self.since,
            outcome: None,
            aborted: false,
            seen: false,
            error: None,
            io_error: None,
            status: None,
        }
    }

    /// `query-jobs`'s word on the job, noted in `r`.
    async fn look(&self, r: &mut Reader) -> Result<Option<JobProgress>> {
        let p = self.progress().await?;
        if let Some(p) = &p {
            r.seen = true;
            r.status = Some(p.status.clone());
            if p.error.is_some() {
                r.error.clone_from(&p.error);
            }
        }
        Ok(p)
    }

    /// A job QEMU does not list and no event has named: its outcome
    /// can't be told.
    async fn check_known(&self, r: &mut Reader) -> Result<()> {
        let id = self.id.as_str();
        let named = self.client.history(r.since).iter().any(|rec| mine(rec, id));
        if named || self.look(r).await?.is_some() {
            return Ok(());
        }
        Err(self.unknown(r))
    }

    /// [`Error::JobOutcomeUnknown`], saying whether the job was seen.
    fn unknown(&self, r: &Reader) -> Error {
        Error::JobOutcomeUnknown {
            id: self.id.clone(),
            why: if r.seen {
                "QEMU no longer has it (dismissed) and its outcome was not seen".into()
            } else {
                "QEMU has no job by that id, and this connection saw none".into()
            },
        }
    }

    /// The timeout `e` of a quiet job, naming why it is quiet when it is
    /// paused by an I/O error.
    async fn quiet(&self, r: &mut Reader, e: Error) -> Error {
        let Error::Timeout { what, after } = e else {
            return e;
        };
        let paused = matches!(r.status, Some(JobStatus::Paused | JobStatus::Standby))
            || matches!(
                self.look(r).await,
                Ok(Some(JobProgress {
                    status: JobStatus::Paused,
                    ..
                }))
            );
        let Some((op, action)) = r.io_error.clone().filter(|_| paused) else {
            return Error::Timeout { what, after };
        };
        let io = match self.client.execute(QueryBlockJobs::new()).await {
            Ok(jobs) => jobs
                .into_iter()
                .find(|j| j.device == self.id)
                .map(|j| format!("; its I/O status is {}", j.io_status.as_str()))
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        Error::Timeout {
            what: format!(
                "{what}, paused by a {op} error (action {}{io}): resume it (job-resume) once the cause is fixed, or cancel it",
                action.as_str()
            ),
            after,
        }
    }

    /// Reads the job's events after `r`'s cursor up to its next status
    /// change (a block job's outcome is noted on the way), or `period`
    /// without one.
    async fn advance(&self, r: &mut Reader, period: Duration) -> Result<Seen> {
        let id = self.id.as_str();
        loop {
            let rec = match self
                .client
                .wait_for_record(r.since, period, || format!("job {id}"), &|rec| {
                    mine(rec, id)
                })
                .await
            {
                Err(e @ Error::Timeout { .. }) => return Ok(Seen::Quiet(e)),
                other => other?,
            };
            r.since = Since::Cursor(rec.seq + 1);
            r.seen = true;
            if let Ok(Some(e)) = rec.typed::<BlockJobError>() {
                r.io_error = Some((e.operation.as_str().to_string(), e.action.clone()));
                continue;
            }
            if let Ok(Some(e)) = rec.typed::<JobStatusChange>() {
                r.status = Some(e.status.clone());
                return Ok(match e.status {
                    JobStatus::Concluded | JobStatus::Null => Seen::Ended(e.status.clone()),
                    JobStatus::Aborting => {
                        r.aborted = true;
                        Seen::Status(JobStatus::Aborting)
                    }
                    _ => Seen::Status(e.status.clone()),
                });
            }
            r.outcome = Some(match rec.typed::<BlockJobCompleted>() {
                Ok(Some(BlockJobCompleted {
                    error: Some(error), ..
                })) => Err(self.failed(error)),
                Ok(Some(_)) => Ok(()),
                _ => Err(Error::JobCancelled {
                    id: self.id.clone(),
                }),
            });
        }
    }

    /// The outcome of a job that ended: what its block job event said,
    /// or else `query-jobs`'s `error` while QEMU still has it (or as an
    /// earlier look saw it). A job gone with neither is not a success:
    /// [`Error::JobOutcomeUnknown`].
    async fn outcome(&self, r: &mut Reader) -> Result<std::result::Result<(), Error>> {
        // The job's events the history already holds come first: a
        // `query-jobs` that no longer lists the job may be read before
        // the reader got to the `BLOCK_JOB_COMPLETED` QEMU sent ahead of
        // that reply.
        while r.outcome.is_none() {
            match self.advance(r, Duration::ZERO).await? {
                Seen::Quiet(_) | Seen::Ended(JobStatus::Null) => break,
                Seen::Status(_) | Seen::Ended(_) => {}
            }
        }
        if let Some(o) = r.outcome.take() {
            return Ok(o);
        }
        Ok(match self.info().await? {
            Some(JobInfo {
                error: Some(error), ..
            }) => Err(self.failed(&error)),
            Some(_) => Ok(()),
            None => match &r.error {
                Some(error) => Err(self.failed(error)),
                None if r.aborted => Err(self.failed("it was aborted")),
                None => Err(self.unknown(r)),
            },
        })
    }

    fn failed(&self, error: &str) -> Error {
        Error::JobFailed {
            id: self.id.clone(),
            error: error.to_string(),
        }
    }

    /// Waits until the job has ended (`concluded`, or gone) and returns
    /// its outcome: `Ok` when it succeeded, [`Error::JobFailed`] with
    /// QEMU's text, [`Error::JobCancelled`]. A job started with
    /// `auto-finalize: false` stops at `pending` until
    /// [`Job::finalize`]: wait for that with [`Job::wait_status`].
    /// `timeout` bounds the wait for each of the job's events.
    pub async fn wait(&self, timeout: Duration) -> Result<()> {
        self.run_until(None, timeout).await
    }

    /// Waits until the job reaches `status` (`ready` for a mirror before
    /// [`Job::complete`], `pending` with `auto-finalize: false`,
    /// `paused`). A job that ends first ends the wait with its outcome
    /// ([`Error::JobFailed`] when it concluded without reaching `status`).
    pub async fn wait_status(&self, status: JobStatus, timeout: Duration) -> Result<()> {
        self.run_until(Some(status), timeout).await
    }

    /// Waits until the job is `ready` (a mirror in sync).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.wait_status(JobStatus::Ready, timeout).await
    }

    async fn run_until(&self, want: Option<JobStatus>, timeout: Duration) -> Result<()> {
        let mut r = self.reader();
        self.check_known(&mut r).await?;
        loop {
            match self.advance(&mut r, timeout).await? {
                Seen::Quiet(e) => return Err(self.quiet(&mut r, e).await),
                Seen::Status(s) | Seen::Ended(s) if want.as_ref() == Some(&s) => return Ok(()),
                Seen::Status(_) => {}
                Seen::Ended(_) => {
                    return match (self.outcome(&mut r).await?, want) {
                        (Ok(()), Some(w)) => Err(self
                            .failed(&format!("it ended without reaching status {}", w.as_str()))),
                        (ended, _) => ended,
                    };
                }
            }
        }
    }

    /// Follows the job: each of its status changes, and every `every`
    /// without one, gives its progress (`query-jobs`); its end gives its
    /// outcome, last. See [`JobWatch::next`].
    pub fn watch(&self, every: Duration) -> JobWatch {
        JobWatch {
            job: self.clone(),
            reader: self.reader(),
            every,
            ended: false,
            checked: false,
        }
    }

    /// `job-complete`: a job that is `ready` (a mirror) switches over
    /// and ends.
    pub async fn complete(&self) -> Result<()> {
        self.client
            .execute(JobComplete::new(self.id.as_str()))
            .await
    }

    /// `job-cancel`: the job stops (a `ready` mirror ends without
    /// switching over); its wait then ends with [`Error::JobCancelled`]
    /// (or, for a mirror that was ready, `Ok`, as QEMU reports it).
    pub async fn cancel(&self) -> Result<()> {
        self.client.execute(JobCancel::new(self.id.as_str())).await
    }

    /// `job-pause`.
    pub async fn pause(&self) -> Result<()> {
        self.client.execute(JobPause::new(self.id.as_str())).await
    }

    /// `job-resume`.
    pub async fn resume(&self) -> Result<()> {
        self.client.execute(JobResume::new(self.id.as_str())).await
    }

    /// `job-finalize`, for a job started with `auto-finalize: false` that
    /// is `pending`.
    pub async fn finalize(&self) -> Result<()> {
        self.client
            .execute(JobFinalize::new(self.id.as_str()))
            .await
    }

    /// `job-dismiss`, for a `concluded` job started with
    /// `auto-dismiss: false` (and jobs that always wait for it:
    /// `blockdev-create`, `snapshot-*`).
    pub async fn dismiss(&self) -> Result<()> {
        self.client.execute(JobDismiss::new(self.id.as_str())).await
    }
}

/// What [`JobWatch::next`] gives.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobUpdate {
    /// The job's progress now (its status as `query-jobs` gives it).
    Progress(JobProgress),
    /// The job ended: `Ok`, or why not ([`Error::JobFailed`],
    /// [`Error::JobCancelled`]). The last update.
    Ended(Result<()>),
}

/// A job followed: progress as it goes, its outcome at the end (made by
/// [`Job::watch`]).
pub struct JobWatch {
    job: Job,
    reader: Reader,
    every: Duration,
    ended: bool,
    /// Whether QEMU (or the history) was found to know the job.
    checked: bool,
}

impl JobWatch {
    /// The next update: progress at each status change and every period
    /// without one, then [`JobUpdate::Ended`], then `None`. The end of the
    /// connection gives `Err(Error::Closed)` (then `None`).
    pub async fn next(&mut self) -> Option<Result<JobUpdate>> {
        if self.ended {
            return None;
        }
        let r = self.step().await;
        if matches!(r, Err(_) | Ok(JobUpdate::Ended(_))) {
            self.ended = true;
        }
        Some(r)
    }

    async fn step(&mut self) -> Result<JobUpdate> {
        if !self.checked {
            self.checked = true;
            if let Err(e @ Error::JobOutcomeUnknown { .. }) =
                self.job.check_known(&mut self.reader).await
            {
                return Ok(JobUpdate::Ended(Err(e)));
            }
            // Concluded before this connection saw its events: ended.
            if self.reader.status == Some(JobStatus::Concluded) {
                return Ok(JobUpdate::Ended(self.job.outcome(&mut self.reader).await?));
            }
        }
        loop {
            match self.job.advance(&mut self.reader, self.every).await? {
                Seen::Ended(_) => {
                    return Ok(JobUpdate::Ended(self.job.outcome(&mut self.reader).await?));
                }
                seen => {
                    if let Some(p) = self.job.look(&mut self.reader).await? {
                        // Concluded before its events could be read (it
                        // was when this connection came): ended.
                        if p.status == JobStatus::Concluded {
                            return Ok(JobUpdate::Ended(self.job.outcome(&mut self.reader).await?));
                        }
                        return Ok(JobUpdate::Progress(p));
                    }
                    // Gone without an event this connection saw: what
                    // the history and QEMU say.
                    if let Seen::Quiet(_) = seen {
                        return Ok(JobUpdate::Ended(self.job.outcome(&mut self.reader).await?));
                    }
                }
            }
        }
    }
}
