//! A scripted migration (`migrate`, `migrate_cancel`,
//! `migrate-start-postcopy`, `query-migrate`) and scripted device
//! removals (`device_del`).

use serde_json::json;

use super::super::answer::{EventText, Outcome, Plan};
use super::super::recorded::{self, Step};
use super::super::schema::Tables;
use super::super::scripts::{End, ScriptedDevice, ScriptedMigration};
use super::Scenes;
use super::run::{Run, with_polls};

/// Guest RAM in a scripted migration (the recordings' 128 MiB).
const RAM: i64 = 128 << 20;

pub(crate) struct MigrationRun {
    pub(crate) script: ScriptedMigration,
    pub(crate) run: Option<Run>,
}

pub(crate) struct DeviceRun {
    pub(crate) script: ScriptedDevice,
    pub(crate) calls: usize,
    pub(crate) gone: bool,
}

impl Scenes {
    pub(super) fn control_migration(&mut self, name: &str) -> Option<Plan> {
        let version = self.version;
        let events_on = self.migration_events;
        let m = self.migration.as_mut()?;
        let reply = Outcome::done();
        if name == "migrate" {
            if m.run.as_ref().is_some_and(|r| !r.ended()) {
                return Some(Plan::answer(Outcome::Error {
                    class: "GenericError".into(),
                    desc: "There's a migration process in progress".into(),
                }));
            }
            let names = [
                "migration",
                "migration-error",
                "migration-cancel",
                "migration-postcopy",
            ];
            let chosen = match (&m.script.end, m.script.postcopy) {
                (_, true) => "migration-postcopy",
                (End::Fails(_), _) => "migration-error",
                (End::UntilCancelled, _) => "migration-cancel",
                _ => "migration",
            };
            let shape =
                |n: &str| with_polls(recorded::recording(version, n).to_vec(), m.script.polls);
            let alternatives = names
                .iter()
                .filter(|n| **n != chosen)
                .map(|n| shape(n))
                .collect();
            let mut run = Run::new(shape(chosen), alternatives, "none");
            let events = run.play();
            m.run = Some(run);
            return Some(Plan {
                after: migration_events(&events, events_on),
                ..Plan::answer(reply)
            });
        }
        let Some(run) = m.run.as_mut().filter(|r| !r.ended()) else {
            // QEMU accepts a cancel with nothing to cancel.
            return Some(if name == "migrate_cancel" {
                Plan::answer(reply)
            } else {
                Plan::answer(Outcome::Error {
                    class: "GenericError".into(),
                    desc: "Postcopy must be started after migration has been started".into(),
                })
            });
        };
        if run.take(name) {
            let events = run.play();
            return Some(Plan {
                after: migration_events(&events, events_on),
                ..Plan::answer(reply)
            });
        }
        Some(if name == "migrate_cancel" {
            Plan::answer(reply)
        } else {
            Plan::answer(Outcome::Error {
                class: "GenericError".into(),
                desc: "Postcopy is not enabled".into(),
            })
        })
    }

    pub(super) fn poll_migration(&mut self, tables: &Tables) -> Plan {
        let events_on = self.migration_events;
        // Before any migration, QEMU answers `{}`.
        let Some((m, run)) = self
            .migration
            .as_mut()
            .and_then(|m| Some((&m.script, m.run.as_mut()?)))
        else {
            return Plan::answer(Outcome::done());
        };
        let moves_on = run.polled();
        let remaining = match run.status {
            "completed" => 0,
            _ => RAM - run.poll_share(RAM).unwrap_or(0),
        };
        let mut fields = json!({"status": run.status});
        if run.status != "none" && run.status != "setup" {
            fields["ram"] = json!({"total": RAM, "remaining": remaining,
                                   "transferred": RAM - remaining});
        }
        if run.status == "failed"
            && let End::Fails(desc) = &m.end
        {
            fields["error-desc"] = json!(desc);
        }
        let info = super::super::fill::complete(tables, "MigrationInfo", Some(fields), "return");
        let after = if moves_on {
            migration_events(&run.play(), events_on)
        } else {
            Vec::new()
        };
        Plan {
            after,
            ..Plan::answer(Outcome::returning(&info))
        }
    }
}

/// A migration's events: `MIGRATION` only with the `events` capability,
/// as QEMU sends them.
fn migration_events(steps: &[Step], events_on: bool) -> Vec<EventText> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Event {
                name: "MIGRATION",
                word,
                ..
            } => events_on
                .then(|| EventText::of("MIGRATION", Some(&json!({"status": word}).to_string()))),
            Step::Event { name, .. } => Some(EventText::of(name, None)),
            _ => None,
        })
        .collect()
}

/// `device_del` of a scripted device.
pub(super) fn device_del(d: &mut DeviceRun, version: Option<qmp_types::rt::QemuVersion>) -> Plan {
    d.calls += 1;
    if d.gone {
        return Plan::answer(Outcome::Error {
            class: "DeviceNotFound".into(),
            desc: format!("Device '{}' not found", d.script.id),
        });
    }
    let name = if d.script.deleted {
        "device-deleted"
    } else {
        "device-never"
    };
    let after = recorded::recording(version, name)
        .iter()
        .filter_map(|s| match s {
            Step::Event {
                name: "DEVICE_DELETED",
                ..
            } => Some(EventText::of(
                "DEVICE_DELETED",
                Some(
                    &json!({"device": d.script.id,
                            "path": format!("/machine/peripheral/{}", d.script.id)})
                    .to_string(),
                ),
            )),
            _ => None,
        })
        .collect::<Vec<_>>();
    d.gone = !after.is_empty();
    Plan {
        after,
        ..Plan::answer(Outcome::done())
    }
}
