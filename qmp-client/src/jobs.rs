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
    BlockJobCancelled, BlockJobCompleted, Command, JobCancel, JobComplete, JobDismiss, JobFinalize,
    JobInfo, JobPause, JobResume, JobStatus, JobStatusChange, Qmp, QueryJobs,
};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::events;
use crate::history::{EventRecord, Since};

/// A job QEMU runs, by its id. Made by [`Client::start_job`] (which
/// takes the event cursor before sending the command, so nothing the
/// job does is missed) or [`Client::attach_job`] (a job started
/// elsewhere: its events from the connection's history on).
///
/// Its waits end with the job's outcome as QEMU tells it:
/// [`Error::JobFailed`] with QEMU's text, [`Error::JobCancelled`], or
/// [`Error::Closed`] when the connection (or QEMU) goes away.
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
        let id = ["job-id", "device"]
            .iter()
            .find_map(|k| args.get(*k).and_then(|v| v.as_str()))
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

/// What one of a job's events says.
enum Step {
    Status(JobStatus),
    Outcome(std::result::Result<(), Error>),
}

impl Job {
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

    /// The job's next event after `since`: a status change, or a block
    /// job's outcome.
    async fn next(&self, since: Since, timeout: Duration) -> Result<(u64, Step)> {
        let id = self.id.as_str();
        let mine = |r: &EventRecord| {
            matches!(r.typed::<JobStatusChange>(), Ok(Some(e)) if e.id == id)
                || matches!(r.typed::<BlockJobCompleted>(), Ok(Some(e)) if e.device == id)
                || matches!(r.typed::<BlockJobCancelled>(), Ok(Some(e)) if e.device == id)
        };
        let r = tokio::time::timeout(
            timeout,
            events::wait_for_record(self.client.shared(), since, &mine),
        )
        .await
        .map_err(|_| Error::Timeout {
            what: format!("job {id}"),
            after: timeout,
        })??;
        let step = if let Ok(Some(e)) = r.typed::<JobStatusChange>() {
            Step::Status(e.status.clone())
        } else if let Ok(Some(e)) = r.typed::<BlockJobCompleted>() {
            Step::Outcome(match &e.error {
                Some(error) => Err(self.failed(error)),
                None => Ok(()),
            })
        } else {
            Step::Outcome(Err(Error::JobCancelled {
                id: self.id.clone(),
            }))
        };
        Ok((r.seq, step))
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
        let mut since = self.since;
        let mut outcome = None;
        let mut aborted = false;
        loop {
            let (seq, step) = self.next(since, timeout).await?;
            since = Since::Cursor(seq + 1);
            let status = match step {
                Step::Outcome(o) => {
                    outcome = Some(o);
                    continue;
                }
                Step::Status(s) => s,
            };
            if want.as_ref() == Some(&status) {
                return Ok(());
            }
            match status {
                JobStatus::Aborting => aborted = true,
                JobStatus::Concluded | JobStatus::Null => {
                    let ended = match outcome {
                        Some(o) => o,
                        None => self.concluded_outcome(aborted).await?,
                    };
                    return match (ended, want) {
                        (Ok(()), Some(w)) => Err(self
                            .failed(&format!("it ended without reaching status {}", w.as_str()))),
                        (ended, _) => ended,
                    };
                }
                _ => {}
            }
        }
    }

    /// The outcome of a concluded job that sent no block job event:
    /// `query-jobs`'s `error` while QEMU still has it.
    async fn concluded_outcome(&self, aborted: bool) -> Result<std::result::Result<(), Error>> {
        Ok(match self.info().await? {
            Some(JobInfo {
                error: Some(error), ..
            }) => Err(self.failed(&error)),
            _ if aborted => Err(self.failed("it was aborted")),
            _ => Ok(()),
        })
    }

    /// Follows the job: each of its status changes, and every `every`
    /// without one, gives its progress (`query-jobs`); its end gives its
    /// outcome, last. See [`JobWatch::next`].
    pub fn watch(&self, every: Duration) -> JobWatch {
        JobWatch {
            job: self.clone(),
            since: self.since,
            every,
            outcome: None,
            aborted: false,
            ended: false,
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
    since: Since,
    every: Duration,
    outcome: Option<std::result::Result<(), Error>>,
    aborted: bool,
    ended: bool,
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
        loop {
            match self.job.next(self.since, self.every).await {
                Err(Error::Timeout { .. }) => {
                    if let Some(p) = self.job.progress().await? {
                        return Ok(JobUpdate::Progress(p));
                    }
                    // Gone without an event this connection saw: what
                    // the history and QEMU say.
                    let o = self.job.concluded_outcome(self.aborted).await?;
                    return Ok(JobUpdate::Ended(o));
                }
                Err(e) => return Err(e),
                Ok((seq, step)) => {
                    self.since = Since::Cursor(seq + 1);
                    match step {
                        Step::Outcome(o) => self.outcome = Some(o),
                        Step::Status(JobStatus::Aborting) => self.aborted = true,
                        Step::Status(JobStatus::Concluded | JobStatus::Null) => {
                            let o = match self.outcome.take() {
                                Some(o) => o,
                                None => self.job.concluded_outcome(self.aborted).await?,
                            };
                            return Ok(JobUpdate::Ended(o));
                        }
                        Step::Status(_) => {
                            if let Some(p) = self.job.progress().await? {
                                return Ok(JobUpdate::Progress(p));
                            }
                        }
                    }
                }
            }
        }
    }
}
