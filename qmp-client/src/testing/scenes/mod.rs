//! QEMU's behaviour in one call, the running side: the scripts of one
//! double ([`super::scripts`]) as they play, asked by the double before
//! its expectations (a script's own commands) and after them (the
//! queries of their state): the events in their order, the statuses,
//! `query-jobs`, `query-block-jobs` and `query-migrate` answers, the
//! commands a job waits for and QEMU's errors for the ones it would
//! refuse.

mod jobs;
mod migration;
mod run;

use std::panic::Location;

use serde_json::Value;

use super::answer::{Outcome, Plan};
use super::schema::Tables;
use super::scripts::{ScriptedDevice, ScriptedJob, ScriptedMigration};
use jobs::{JobRun, is_job_command, not_found};
use migration::{DeviceRun, MigrationRun, device_del};

/// What a command names: a job's id (`job-id` of the commands that start
/// one; `id`, or `device` for the older `block-job-*`, of those that
/// control it), or a device's (`id` of `device_del`).
fn subject(args: &Value) -> Option<&str> {
    ["job-id", "id", "device"]
        .iter()
        .find_map(|k| args.get(*k).and_then(Value::as_str))
}

/// The scripts of one double.
#[derive(Default)]
pub(crate) struct Scenes {
    jobs: Vec<JobRun>,
    migration: Option<MigrationRun>,
    devices: Vec<DeviceRun>,
    /// The `events` migration capability.
    migration_events: bool,
    /// The QEMU being played (its recordings: the nearest below), set
    /// when the double is made.
    pub(crate) version: Option<qmp_types::rt::QemuVersion>,
}

impl Scenes {
    pub(crate) fn add_job(&mut self, s: ScriptedJob) {
        self.jobs.push(JobRun {
            len: s.len.unwrap_or(0),
            script: s,
            run: None,
            offset: 0,
            error: None,
            auto_finalize: true,
            auto_dismiss: true,
            paused_from: None,
        });
    }

    pub(crate) fn add_migration(&mut self, s: ScriptedMigration) {
        self.migration = Some(MigrationRun {
            script: s,
            run: None,
        });
    }

    pub(crate) fn add_device(&mut self, s: ScriptedDevice) {
        self.devices.push(DeviceRun {
            script: s,
            calls: 0,
            gone: false,
        });
    }

    fn active(&self) -> bool {
        !self.jobs.is_empty() || self.migration.is_some() || !self.devices.is_empty()
    }

    /// Notes what every command tells (the `events` capability), whoever
    /// answers it.
    pub(crate) fn observe(&mut self, name: &str, args: &Value) {
        if name == "migrate-set-capabilities"
            && let Some(caps) = args["capabilities"].as_array()
        {
            for c in caps {
                if c["capability"] == "events" {
                    self.migration_events = c["state"].as_bool().unwrap_or(false);
                }
            }
        }
    }

    /// The scripts' answer to a command that is theirs (a scripted job's
    /// start or control, a scripted migration's, a scripted device's
    /// `device_del`): asked before the expectations.
    pub(crate) fn first(&mut self, name: &str, args: &Value) -> Option<Plan> {
        if !self.active() {
            return None;
        }
        let id = subject(args).unwrap_or_default();
        if let Some(i) = self.not_started(name, id) {
            return Some(self.start_job(i, args));
        }
        if name == "transaction" {
            return self.transaction(args);
        }
        if is_job_command(name)
            && let Some(i) = self
                .jobs
                .iter()
                .position(|j| j.script.id == id && j.run.as_ref().is_some_and(|r| !r.ended()))
        {
            return Some(self.control_job(i, name));
        }
        if matches!(
            name,
            "migrate" | "migrate_cancel" | "migrate-start-postcopy"
        ) && self.migration.is_some()
        {
            return self.control_migration(name);
        }
        if name == "device_del"
            && let Some(d) = self.devices.iter_mut().find(|d| d.script.id == id)
        {
            return Some(device_del(d, self.version));
        }
        None
    }

    /// The scripted job `id` that command `name` starts, if not started yet.
    fn not_started(&self, name: &str, id: &str) -> Option<usize> {
        self.jobs
            .iter()
            .position(|j| j.run.is_none() && j.script.id == id && j.script.kind.starts(name))
    }

    /// A `transaction` whose actions start scripted jobs (a backup of
    /// several disks at once): answered `{}`, each job started as its own
    /// command would start it, their events in the actions' order. One
    /// that starts none is not the scripts'.
    fn transaction(&mut self, args: &Value) -> Option<Plan> {
        let starts: Vec<(usize, Value)> = args["actions"]
            .as_array()?
            .iter()
            .filter_map(|a| {
                let (ty, data) = (a["type"].as_str()?, &a["data"]);
                Some((self.not_started(ty, subject(data)?)?, data.clone()))
            })
            .collect();
        if starts.is_empty() {
            return None;
        }
        let mut plan = Plan::answer(Outcome::done());
        for (i, data) in starts {
            let p = self.start_job(i, &data);
            plan.before.extend(p.before);
            plan.after.extend(p.after);
        }
        Some(plan)
    }

    /// The scripts' answer to a command no expectation took: the queries
    /// of their state, QEMU's "not found" for a job command of an id no
    /// job has, `{}` for `migrate-set-capabilities` beside a scripted
    /// migration.
    pub(crate) fn second(&mut self, tables: &Tables, name: &str, args: &Value) -> Option<Plan> {
        if !self.active() {
            return None;
        }
        let any_jobs = !self.jobs.is_empty();
        match name {
            "query-jobs" if any_jobs => Some(self.poll(tables, false)),
            "query-block-jobs" if any_jobs => Some(self.poll(tables, true)),
            "query-migrate" if self.migration.is_some() => Some(self.poll_migration(tables)),
            "migrate-set-capabilities" if self.migration.is_some() => {
                Some(Plan::answer(Outcome::done()))
            }
            n if any_jobs && is_job_command(n) => {
                Some(not_found(n, subject(args).unwrap_or_default()))
            }
            _ => None,
        }
    }

    /// What was scripted and never happened.
    pub(crate) fn problems(&self) -> Vec<String> {
        let at = |l: &Location<'_>| format!("{}:{}", l.file(), l.line());
        let mut out = Vec::new();
        for j in &self.jobs {
            if j.run.is_none() {
                out.push(format!(
                    "the scripted {} job '{}' ({}) was never started",
                    j.script.kind.ty(),
                    j.script.id,
                    at(j.script.at)
                ));
            }
        }
        if let Some(m) = &self.migration
            && m.run.is_none()
        {
            out.push(format!(
                "the scripted migration ({}) was never started",
                at(m.script.at)
            ));
        }
        for d in &self.devices {
            if d.calls == 0 {
                out.push(format!(
                    "the scripted device '{}' ({}) was never deleted",
                    d.script.id,
                    at(d.script.at)
                ));
            }
        }
        out
    }
}
