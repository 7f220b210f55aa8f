//! Scripted jobs: started by their command, played from their
//! recording (made manual as the command asks), controlled by the job
//! commands, and reported by `query-jobs` and `query-block-jobs`.

use serde_json::{Value, json};

use super::super::answer::{EventText, Outcome, Plan};
use super::super::recorded::{self, Step};
use super::super::schema::Tables;
use super::super::scripts::{End, Kind, ScriptedJob};
use super::Scenes;
use super::run::{Run, with_polls};

pub(crate) struct JobRun {
    pub(crate) script: ScriptedJob,
    pub(crate) run: Option<Run>,
    /// `len` and `offset` of its events.
    pub(crate) len: i64,
    pub(crate) offset: i64,
    pub(crate) error: Option<String>,
    pub(crate) auto_finalize: bool,
    pub(crate) auto_dismiss: bool,
    /// Whether it was paused by `job-pause` (the status it had).
    pub(crate) paused_from: Option<&'static str>,
}

impl Scenes {
    pub(super) fn start_job(&mut self, i: usize, args: &Value) -> Plan {
        let version = self.version;
        let j = &mut self.jobs[i];
        let kind = j.script.kind;
        let flag = |k: &str| args.get(k).and_then(Value::as_bool).unwrap_or(true);
        j.auto_finalize = flag("auto-finalize");
        j.auto_dismiss = flag("auto-dismiss");
        let names = kind.recordings();
        let chosen = match &j.script.end {
            End::Succeeds => names[0],
            End::Fails(_) => names[1],
            End::UntilCancelled => "backup-cancel",
            End::StopsOnError => "backup-stop-cancel",
        };
        let shape = |name: &str| {
            let steps = recorded::recording(version, name);
            let steps = adapt(steps, kind, name);
            recorded::manual(
                &steps,
                !j.auto_finalize,
                !j.auto_dismiss,
                if kind.block() { kind.ty() } else { "" },
            )
        };
        let steps = with_polls(shape(chosen), j.script.polls);
        let alternatives = names
            .iter()
            .filter(|n| **n != chosen)
            .map(|n| with_polls(shape(n), j.script.polls))
            .collect();
        if j.len == 0 {
            j.len = steps
                .iter()
                .find_map(|s| s.member("len"))
                .and_then(|l| l.parse().ok())
                .unwrap_or(16 << 20);
        }
        let mut run = Run::new(steps, alternatives, "undefined");
        let events = run.play();
        j.run = Some(run);
        // QEMU creates and starts the job inside the command: those
        // events come before the reply, the rest after it.
        let lead = events
            .iter()
            .take_while(|s| matches!(s.status(), Some("created" | "running" | "paused")))
            .count();
        let (before, after) = events.split_at(lead);
        Plan {
            before: before.iter().map(|s| job_event(j, s)).collect(),
            after: after.iter().map(|s| job_event(j, s)).collect(),
            ..Plan::answer(Outcome::done())
        }
    }

    pub(super) fn control_job(&mut self, i: usize, name: &str) -> Plan {
        let j = &mut self.jobs[i];
        let verb = Step::verb(name);
        let Some(run) = j.run.as_mut() else {
            return not_found(name, &j.script.id);
        };
        if name.starts_with("block-job-") && !j.script.kind.block() {
            return not_found(name, &j.script.id);
        }
        match verb {
            "pause" if matches!(run.status, "running" | "ready") => {
                j.paused_from = Some(run.status);
                run.status = "paused";
                let e = job_status(&j.script.id, "paused");
                return Plan {
                    after: vec![e],
                    ..Plan::answer(Outcome::done())
                };
            }
            "resume" if j.paused_from.is_some() && run.status == "paused" => {
                let back = j.paused_from.take().unwrap_or("running");
                run.status = back;
                let e = job_status(&j.script.id, back);
                return Plan {
                    after: vec![e],
                    ..Plan::answer(Outcome::done())
                };
            }
            _ => {}
        }
        if j.paused_from.is_none() && run.take(verb) {
            let events: Vec<EventText> = run.play().iter().map(|s| job_event(j, s)).collect();
            let reply = Outcome::done();
            // QEMU finalizes and dismisses inside the command.
            return if matches!(verb, "finalize" | "dismiss") {
                Plan {
                    before: events,
                    ..Plan::answer(reply)
                }
            } else {
                Plan {
                    after: events,
                    ..Plan::answer(reply)
                }
            };
        }
        Plan::answer(Outcome::Error {
            class: "GenericError".into(),
            desc: format!(
                "Job '{}' in state '{}' cannot accept command verb '{verb}'",
                j.script.id, run.status
            ),
        })
    }

    /// `query-jobs` (or `query-block-jobs`): each job's state; a job
    /// waiting for polls moves on after the last.
    pub(super) fn poll(&mut self, tables: &Tables, block: bool) -> Plan {
        let mut list = Vec::new();
        let mut after = Vec::new();
        for j in &mut self.jobs {
            let Some(run) = j.run.as_mut() else { continue };
            if run.status == "null" || (block && !j.script.kind.block()) {
                continue;
            }
            let moves_on = run.polled();
            let current = run.poll_share(j.len).unwrap_or(j.offset);
            let mut fields = if block {
                json!({"type": j.script.kind.ty(), "device": j.script.id, "len": j.len,
                       "offset": current, "busy": run.status == "running",
                       "paused": run.status == "paused", "speed": 0, "io-status": "ok",
                       "ready": run.status == "ready", "status": run.status,
                       "auto-finalize": j.auto_finalize, "auto-dismiss": j.auto_dismiss})
            } else {
                json!({"id": j.script.id, "type": j.script.kind.ty(), "status": run.status,
                       "current-progress": current, "total-progress": j.len})
            };
            if let Some(e) = &j.error {
                fields["error"] = json!(e);
            }
            let ty = if block { "BlockJobInfo" } else { "JobInfo" };
            list.push(super::super::fill::complete(
                tables,
                ty,
                Some(fields),
                "return",
            ));
            if moves_on {
                let events = run.play();
                after.extend(events.iter().map(|s| job_event(j, s)));
            }
        }
        Plan {
            after,
            ..Plan::answer(Outcome::returning(&Value::Array(list)))
        }
    }
}

/// A recording of another kind adapted to `kind`: a non-block job sends
/// no `BLOCK_JOB_*` event, and the pause every backup makes as it starts
/// belongs to a backup alone.
fn adapt(steps: &[Step], kind: Kind, name: &str) -> Vec<Step> {
    let mut out: Vec<Step> = steps
        .iter()
        .filter(|s| {
            kind.block() || !matches!(s, Step::Event { name, .. } if name.starts_with("BLOCK_JOB_"))
        })
        .cloned()
        .collect();
    if kind != Kind::Backup && name.starts_with("backup") {
        // created, running, paused, running: drop the blip.
        if let Some(i) = out.iter().position(|s| s.status() == Some("paused"))
            && out.get(i + 1).and_then(Step::status) == Some("running")
            && i >= 2
            && out[i - 1].status() == Some("running")
        {
            out.drain(i..i + 2);
        }
    }
    if !kind.block() && name.starts_with("backup") {
        // Non-block jobs are cancelled with `job-cancel`.
        for s in &mut out {
            if *s == Step::Cmd("block-job-cancel") {
                *s = Step::Cmd("job-cancel");
            }
        }
    }
    out
}

pub(super) fn is_job_command(name: &str) -> bool {
    matches!(
        name,
        "job-finalize"
            | "job-dismiss"
            | "job-cancel"
            | "job-complete"
            | "job-pause"
            | "job-resume"
            | "block-job-cancel"
            | "block-job-complete"
            | "block-job-finalize"
            | "block-job-dismiss"
            | "block-job-pause"
            | "block-job-resume"
    )
}

/// QEMU's answer to a job command for an id no job has.
pub(super) fn not_found(name: &str, id: &str) -> Plan {
    Plan::answer(if name.starts_with("block-job-") {
        Outcome::Error {
            class: "DeviceNotActive".into(),
            desc: format!("Block job '{id}' not found"),
        }
    } else {
        Outcome::Error {
            class: "GenericError".into(),
            desc: "Job not found".into(),
        }
    })
}

fn job_status(id: &str, status: &str) -> EventText {
    EventText::of(
        "JOB_STATUS_CHANGE",
        Some(&json!({"id": id, "status": status}).to_string()),
    )
}

/// The event `s` of job `j`, with its id, type, length and error; its
/// offset and error kept for `query-jobs`.
fn job_event(j: &mut JobRun, s: &Step) -> EventText {
    let Step::Event { name, word, .. } = s else {
        return EventText::of("", None);
    };
    let id = j.script.id.as_str();
    let ty = j.script.kind.ty();
    let scaled = |key: &str| -> i64 {
        let rec_len: i64 = s.member("len").and_then(|v| v.parse().ok()).unwrap_or(0);
        let off: i64 = s.member(key).and_then(|v| v.parse().ok()).unwrap_or(0);
        if rec_len > 0 {
            i64::try_from(i128::from(off) * i128::from(j.len) / i128::from(rec_len)).unwrap_or(0)
        } else {
            off
        }
    };
    let data = match *name {
        "JOB_STATUS_CHANGE" => {
            if *word == "aborting" && j.error.is_none() {
                // A job that aborts without a cancel failed.
                if let End::Fails(e) = &j.script.end {
                    j.error = Some(e.clone());
                }
            }
            json!({"id": id, "status": word})
        }
        "BLOCK_JOB_COMPLETED" => {
            j.offset = scaled("offset");
            let mut d =
                json!({"type": ty, "device": id, "len": j.len, "offset": j.offset, "speed": 0});
            if s.member("error").is_some_and(|e| e != "-") {
                let e = match &j.script.end {
                    End::Fails(e) => e.clone(),
                    _ => s.member("error").unwrap_or_default().to_string(),
                };
                j.error = Some(e.clone());
                d["error"] = json!(e);
            }
            d
        }
        "BLOCK_JOB_CANCELLED" | "BLOCK_JOB_READY" => {
            j.offset = scaled("offset");
            json!({"type": ty, "device": id, "len": j.len, "offset": j.offset, "speed": 0})
        }
        "BLOCK_JOB_ERROR" => json!({"device": id,
            "operation": s.member("operation").unwrap_or("write"),
            "action": s.member("action").unwrap_or("report")}),
        "BLOCK_JOB_PENDING" => json!({"type": ty, "id": id}),
        _ => return EventText::of(name, None),
    };
    EventText::of(name, Some(&data.to_string()))
}
