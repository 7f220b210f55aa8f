//! `qmp job watch`: progress bars for QEMU's jobs (block jobs: backup,
//! mirror, stream, commit; blockdev-create, ...) from `query-jobs` and the
//! job events, until each job concludes; `qmp job run`: a job started and
//! followed to its end (subscribed before the command is sent, so a job
//! that ends at once is seen too).

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use qmp_client::{Client, JobUpdate};
use qmp_types::{AnyEvent, JobInfo, JobStatus, QueryJobs};

use crate::connect::Target;
use crate::dispatch;
use crate::error::{CliError, Result};

/// Which jobs to watch.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// The job's ID (`job-id` when it was started); all current jobs when
    /// left out.
    pub id: Option<String>,
    /// How often to ask `query-jobs` for progress, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub interval: u64,
}

struct Watched {
    bar: ProgressBar,
    status: JobStatus,
    error: Option<String>,
    cancelled: bool,
    done: bool,
}

fn finished(s: &JobStatus) -> bool {
    matches!(s, JobStatus::Concluded | JobStatus::Null)
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A job whose size QEMU doesn't know yet: a spinner, not a bar that
/// looks full at 0 B of 0 B.
pub fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>12} {spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// Shows `current` of `total` on `bar`: a bar once `total` is known.
pub fn show_progress(bar: &ProgressBar, current: u64, total: u64) {
    if total == 0 {
        return;
    }
    if bar.length().is_none_or(|l| l == 0) {
        bar.set_style(style());
    }
    bar.set_length(total);
    bar.set_position(current);
}

impl Watched {
    fn update(&mut self, info: &JobInfo) {
        show_progress(
            &self.bar,
            u64::try_from(info.current_progress).unwrap_or(0),
            u64::try_from(info.total_progress).unwrap_or(0),
        );
        self.set_status(info.status.clone());
        if info.error.is_some() {
            self.error.clone_from(&info.error);
        }
    }

    fn set_status(&mut self, s: JobStatus) {
        self.bar.set_message(s.to_string());
        if finished(&s) {
            self.done = true;
        }
        self.status = s;
    }
}

/// Watches jobs until every one has concluded; prints each job's final
/// status and error. A job that failed or was cancelled makes the exit
/// code 1.
pub async fn watch(client: &Client, a: &WatchArgs) -> Result<()> {
    // Subscribe before asking, so no event falls between the two.
    let mut events = client.events();
    let jobs = client.execute(QueryJobs::new()).await?;
    let chosen: Vec<&JobInfo> = match &a.id {
        Some(id) => match jobs.iter().find(|j| &j.id == id) {
            Some(j) => vec![j],
            None => {
                let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
                return Err(CliError::Usage(if ids.is_empty() {
                    format!("no job '{id}': QEMU has no jobs now (it may have finished already)")
                } else {
                    format!("no job '{id}'; QEMU's jobs: {}", ids.join(", "))
                }));
            }
        },
        None if jobs.is_empty() => {
            return Err(CliError::Usage("QEMU has no jobs to watch".into()));
        }
        None => jobs.iter().collect(),
    };
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
    let mut watched: BTreeMap<String, Watched> = BTreeMap::new();
    for j in chosen {
        let bar = multi.add(ProgressBar::no_length().with_style(spinner_style()));
        bar.set_prefix(j.id.clone());
        let mut w = Watched {
            bar,
            status: j.status.clone(),
            error: None,
            cancelled: false,
            done: false,
        };
        w.update(j);
        watched.insert(j.id.clone(), w);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(a.interval.max(10)));
    while watched.values().any(|w| !w.done) {
        tokio::select! {
            r = events.next() => {
                let r = r?;
                match &r.event {
                    AnyEvent::JobStatusChange(c) => {
                        if let Some(w) = watched.get_mut(&c.id) {
                            w.set_status(c.status.clone());
                        }
                    }
                    // A block job's outcome: it has ended, whatever comes
                    // next (QEMU shutting down may close before saying
                    // `concluded`).
                    AnyEvent::BlockJobCompleted(c) => {
                        if let Some(w) = watched.get_mut(&c.device) {
                            w.bar.set_position(u64::try_from(c.offset).unwrap_or(0));
                            if c.error.is_some() {
                                w.error.clone_from(&c.error);
                            }
                            w.done = true;
                        }
                    }
                    AnyEvent::BlockJobCancelled(c) => {
                        if let Some(w) = watched.get_mut(&c.device) {
                            w.cancelled = true;
                            w.done = true;
                        }
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                let now = match client.execute(QueryJobs::new()).await {
                    Ok(now) => now,
                    // Gone after every job's outcome came: said below.
                    Err(e) if e.is_socket_closed() && watched.values().all(|w| w.done) => break,
                    Err(e) => return Err(e.into()),
                };
                for (id, w) in watched.iter_mut() {
                    match now.iter().find(|j| &j.id == id) {
                        Some(j) => w.update(j),
                        // Dismissed (auto-dismiss): it has ended.
                        None => w.set_status(JobStatus::Null),
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => {
                multi.clear().ok();
                return Err(CliError::Usage("interrupted; the jobs go on in QEMU".into()));
            }
        }
    }
    let mut failed = Vec::new();
    for (id, w) in &watched {
        w.bar.finish();
        let status = &w.status;
        let line = match (&w.error, w.cancelled) {
            (Some(e), _) => format!("job {id}: {status} with error: {e}"),
            (None, true) => format!("job {id}: {status} (cancelled)"),
            (None, false) => format!("job {id}: {status} successfully"),
        };
        println!("{line}");
        if w.error.is_some() || w.cancelled {
            failed.push(id.clone());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::JobFailed(failed.join(", ")))
    }
}

/// A job to start and follow.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The command that starts the job (`blockdev-backup`,
    /// `blockdev-mirror`, `block-stream`, `block-commit`,
    /// `blockdev-create`, ...).
    pub name: String,
    /// Its arguments, as for `qmp exec`; `job-id` (or a block job's
    /// `device`) names the job.
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// How often to ask `query-jobs` for progress, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub interval: u64,
}

/// The job's id in a command's checked arguments.
pub fn job_id(name: &str, wire: &serde_json::Value) -> Result<String> {
    qmp_client::Job::id_in(wire)
        .map(str::to_string)
        .ok_or_else(|| CliError::Usage(format!("{name}: name the job (job-id=NAME)")))
}

/// Starts the job and follows it: a progress bar on stderr (a spinner
/// until QEMU knows the job's size), then one outcome line on stdout.
/// A job that failed or was cancelled makes the exit code 1.
pub async fn run(target: &Target, a: &RunArgs) -> Result<()> {
    // Bad input is refused before connecting (or starting QEMU).
    let checked = dispatch::check(&a.name, &a.args)?;
    let id = job_id(&a.name, &checked.wire)?;
    let session = target.connect_keeping_ctrl_c().await?;
    let client = &session.client;
    let job = client
        .start_job_with(&id, async { checked.execute(client, None).await.map(drop) })
        .await?;
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
    bar.set_style(spinner_style());
    bar.set_prefix(id.clone());
    bar.set_message("started");
    let mut watch = job.watch(Duration::from_millis(a.interval.max(10)));
    let outcome = loop {
        tokio::select! {
            u = watch.next() => match u {
                Some(Ok(JobUpdate::Progress(p))) => {
                    show_progress(&bar, p.current, p.total);
                    bar.set_message(p.status.to_string());
                }
                Some(Ok(JobUpdate::Ended(o))) => break o,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    bar.abandon();
                    return Err(e.into());
                }
                None => break Ok(()),
            },
            _ = tokio::signal::ctrl_c() => {
                bar.abandon();
                return Err(CliError::Usage(format!("interrupted; job {id} goes on in QEMU")));
            }
        }
    };
    bar.finish_and_clear();
    match outcome {
        Ok(()) => {
            println!("job {id}: concluded successfully");
            Ok(())
        }
        Err(e) => {
            // One line, QEMU's words once: "job ID: failed: ...".
            let how = match &e {
                qmp_client::Error::JobFailed { error, .. } => format!("failed: {error}"),
                qmp_client::Error::JobCancelled { .. } => "cancelled".to_string(),
                other => format!("failed: {other}"),
            };
            println!("job {id}: {how}");
            Err(CliError::JobOutcome)
        }
    }
}
