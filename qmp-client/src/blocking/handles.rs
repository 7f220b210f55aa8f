//! The blocking client's handles on what QEMU runs: [`Job`] and
//! [`Migration`], each the async handle driven on the client's private
//! runtime, with the same calls as plain functions.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use qmp_types::rt::{Command, Qmp};
use qmp_types::{JobStatus, Migrate, MigrateIncoming, MigrationStatus};

use super::{Client, Runtime};
use crate::backup::Bitmap;
use crate::error::Result;
use crate::jobs::JobProgress;
use crate::migration::MigrationProgress;

impl Client {
    /// Executes a command passing file descriptors with it (see
    /// [`crate::Client::execute_with_fds`]): borrowed, duplicated for the
    /// call.
    pub fn execute_with_fds<C, F>(
        &self,
        cmd: C,
        fds: impl IntoIterator<Item = F>,
    ) -> Result<C::Returns>
    where
        C: Command<Protocol = Qmp>,
        F: AsFd,
    {
        self.rt.block_on(self.inner.execute_with_fds(cmd, fds))?
    }

    /// Starts a job and returns its handle (see
    /// [`crate::Client::start_job`]).
    pub fn start_job<C: Command<Protocol = Qmp>>(&self, cmd: C) -> Result<Job> {
        let inner = self.rt.block_on(self.inner.start_job(cmd))??;
        Ok(self.job(inner))
    }

    /// A handle on job `id`, started elsewhere (see
    /// [`crate::Client::attach_job`]).
    pub fn attach_job(&self, id: &str) -> Job {
        self.job(self.inner.attach_job(id))
    }

    fn job(&self, inner: crate::Job) -> Job {
        Job {
            inner,
            rt: self.rt.clone(),
        }
    }

    /// The dirty bitmaps of every node (see [`crate::Client::bitmaps`]).
    pub fn bitmaps(&self) -> Result<BTreeMap<String, Vec<Bitmap>>> {
        self.rt.block_on(self.inner.bitmaps())?
    }

    /// A full backup that starts an incremental chain (see
    /// [`crate::Client::start_full_backup`]).
    pub fn start_full_backup(
        &self,
        node: &str,
        target: &str,
        bitmap: &str,
        job_id: &str,
    ) -> Result<Job> {
        let inner = self
            .rt
            .block_on(self.inner.start_full_backup(node, target, bitmap, job_id))??;
        Ok(self.job(inner))
    }

    /// The next backup of an incremental chain (see
    /// [`crate::Client::start_incremental_backup`]).
    pub fn start_incremental_backup(
        &self,
        node: &str,
        target: &str,
        bitmap: &str,
        job_id: &str,
    ) -> Result<Job> {
        let inner = self.rt.block_on(
            self.inner
                .start_incremental_backup(node, target, bitmap, job_id),
        )??;
        Ok(self.job(inner))
    }

    /// Starts an outgoing migration (see
    /// [`crate::Client::start_migration`]).
    pub fn start_migration(&self, cmd: Migrate) -> Result<Migration> {
        let inner = self.rt.block_on(self.inner.start_migration(cmd))??;
        Ok(Migration {
            inner,
            rt: self.rt.clone(),
        })
    }

    /// Starts an incoming migration (see
    /// [`crate::Client::start_incoming`]).
    pub fn start_incoming(&self, cmd: MigrateIncoming) -> Result<Migration> {
        let inner = self.rt.block_on(self.inner.start_incoming(cmd))??;
        Ok(Migration {
            inner,
            rt: self.rt.clone(),
        })
    }
}

/// A job QEMU runs, for blocking code (see [`crate::Job`]).
#[derive(Clone)]
pub struct Job {
    inner: crate::Job,
    rt: Arc<Runtime>,
}

impl Job {
    /// The job's id.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// The async handle behind this one.
    pub fn as_async(&self) -> &crate::Job {
        &self.inner
    }

    /// Its progress now; `None` once QEMU no longer has it.
    pub fn progress(&self) -> Result<Option<JobProgress>> {
        self.rt.block_on(self.inner.progress())?
    }

    /// Waits until it has ended; its outcome (see [`crate::Job::wait`]).
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        self.rt.block_on(self.inner.wait(timeout))?
    }

    /// Waits until it reaches `status` (see [`crate::Job::wait_status`]).
    pub fn wait_status(&self, status: JobStatus, timeout: Duration) -> Result<()> {
        self.rt.block_on(self.inner.wait_status(status, timeout))?
    }

    /// Waits until it is `ready` (a mirror in sync).
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.rt.block_on(self.inner.wait_ready(timeout))?
    }

    /// `job-complete`.
    pub fn complete(&self) -> Result<()> {
        self.rt.block_on(self.inner.complete())?
    }

    /// `job-cancel`.
    pub fn cancel(&self) -> Result<()> {
        self.rt.block_on(self.inner.cancel())?
    }

    /// `job-pause`.
    pub fn pause(&self) -> Result<()> {
        self.rt.block_on(self.inner.pause())?
    }

    /// `job-resume`.
    pub fn resume(&self) -> Result<()> {
        self.rt.block_on(self.inner.resume())?
    }

    /// `job-finalize`.
    pub fn finalize(&self) -> Result<()> {
        self.rt.block_on(self.inner.finalize())?
    }

    /// `job-dismiss`.
    pub fn dismiss(&self) -> Result<()> {
        self.rt.block_on(self.inner.dismiss())?
    }
}

/// A migration, for blocking code (see [`crate::Migration`]).
pub struct Migration {
    inner: crate::Migration,
    rt: Arc<Runtime>,
}

impl Migration {
    /// The async handle behind this one.
    pub fn as_async(&self) -> &crate::Migration {
        &self.inner
    }

    /// Its progress now (`query-migrate`).
    pub fn progress(&self) -> Result<MigrationProgress> {
        self.rt.block_on(self.inner.progress())?
    }

    /// Waits until it has ended; its outcome (see
    /// [`crate::Migration::wait`]).
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        self.rt.block_on(self.inner.wait(timeout))?
    }

    /// Waits until it reaches `status`.
    pub fn wait_status(&self, status: MigrationStatus, timeout: Duration) -> Result<()> {
        self.rt.block_on(self.inner.wait_status(status, timeout))?
    }

    /// `migrate-start-postcopy`.
    pub fn start_postcopy(&self) -> Result<()> {
        self.rt.block_on(self.inner.start_postcopy())?
    }

    /// `migrate_cancel`.
    pub fn cancel(&self) -> Result<()> {
        self.rt.block_on(self.inner.cancel())?
    }
}
