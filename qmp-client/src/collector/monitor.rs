//! One monitor's task: dial it (again each interval while it is gone),
//! count its events, and poll it on the interval, one query at a time,
//! never a second poll while one runs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use qmp_types::{
    QueryBalloon, QueryBlockstats, QueryCpusFast, QueryJobs, QueryMigrate, QueryName, QueryStatus,
};

use super::sample::{BlockIo, Sample, Vcpu};
use super::{Health, MonitorState, Queries, Shared};
use crate::client::Client;
use crate::error::{Error, ErrorClass, Result};
use crate::history::Since;

/// Runs until the collector drops the monitor (it aborts this task).
pub(super) async fn run(shared: Arc<Shared>, path: PathBuf, state: Arc<Mutex<MonitorState>>) {
    let opts = &shared.opts;
    let mut tick = tokio::time::interval(opts.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let client = match Client::connect_unix(&path, opts.client.clone()).await {
            Ok(c) => c,
            Err(e) => {
                set(&shared, &state, |s| {
                    s.view.health = Health::Gone(e.to_string())
                });
                continue;
            }
        };
        let name = client
            .execute(QueryName::new())
            .await
            .ok()
            .and_then(|n| n.name);
        let version = client.qemu_version().to_string();
        set(&shared, &state, |s| {
            s.view.connects += 1;
            s.view.health = Health::Up;
            s.view.version = Some(version);
            if let Some(n) = name.filter(|n| !n.is_empty()) {
                s.view.name = n;
            }
        });
        let counting = tokio::spawn(count_events(client.clone(), shared.clone(), state.clone()));
        let mut asks = opts.queries;
        let ended = loop {
            let started = Instant::now();
            set_quiet(&state, |s| s.poll_started = Some(started));
            match poll(&client, &mut asks).await {
                Ok(mut sample) => {
                    sample.took = started.elapsed();
                    let slow = sample.took > opts.interval;
                    set(&shared, &state, |s| {
                        s.poll_started = None;
                        s.view.polls += 1;
                        if slow {
                            s.view.slow_polls += 1;
                        }
                        s.view.health = if slow { Health::Slow } else { Health::Up };
                        s.samples.push_back(Arc::new(sample));
                        while s.samples.len() > opts.keep.max(2) {
                            s.samples.pop_front();
                        }
                    });
                }
                Err(e) => break e,
            }
            tick.tick().await;
        };
        counting.abort();
        client.close();
        set(&shared, &state, |s| {
            s.poll_started = None;
            s.view.health = Health::Gone(ended.to_string());
        });
    }
}

/// Changes the monitor's state and tells the readers.
fn set(shared: &Shared, state: &Mutex<MonitorState>, f: impl FnOnce(&mut MonitorState)) {
    set_quiet(state, f);
    shared.changed.notify_waiters();
}

fn set_quiet(state: &Mutex<MonitorState>, f: impl FnOnce(&mut MonitorState)) {
    f(&mut state.lock().unwrap_or_else(|p| p.into_inner()));
}

/// Counts every event by name, and keeps the last ones.
async fn count_events(client: Client, shared: Arc<Shared>, state: Arc<Mutex<MonitorState>>) {
    let keep = shared.opts.keep_events;
    let note = |name: &str| {
        set(&shared, &state, |s| {
            *s.view.events.entry(name.to_string()).or_default() += 1;
            s.recent.push_back((SystemTime::now(), name.to_string()));
            while s.recent.len() > keep {
                s.recent.pop_front();
            }
        });
    };
    // The events since the connection began (those before this task ran
    // included), then each new one: subscribed first, the history read
    // next, and what it gave skipped by its sequence number.
    let mut events = client.events();
    let mut next = 0;
    for r in client.history(Since::Cursor(0)) {
        next = r.seq + 1;
        note(r.event.name());
    }
    loop {
        match events.next().await {
            Ok(r) if r.seq < next => {}
            Ok(r) => note(r.event.name()),
            // A burst the subscriber could not hold: counted as such.
            Err(Error::EventsLost(n)) => {
                set(&shared, &state, |s| {
                    *s.view.events.entry("(lost)".into()).or_default() += n;
                });
            }
            Err(_) => return,
        }
    }
}

/// What a query's error means for the poll: a QEMU without the command
/// (or without the device, for the balloon) gives no value, and a command
/// it lacks is not asked again on this connection; the connection's end
/// ends the poll.
fn answered<T>(r: Result<T>, ask: &mut bool) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => match e.class() {
            Some(ErrorClass::CommandNotFound) => {
                *ask = false;
                Ok(None)
            }
            // A QEMU error: this poll goes without the value.
            Some(_) => Ok(None),
            None if matches!(e, Error::Closed(_)) => Err(e),
            // Refused before sending (a version without it): not asked
            // again.
            None => {
                *ask = false;
                Ok(None)
            }
        },
    }
}

/// One batch of queries, one at a time.
async fn poll(c: &Client, q: &mut Queries) -> Result<Sample> {
    let mut s = Sample {
        at: Some(SystemTime::now()),
        ..Sample::default()
    };
    if q.status {
        s.status = answered(c.execute(QueryStatus::new()).await, &mut q.status)?.map(|i| i.status);
    }
    if q.block {
        s.block = answered(c.execute(QueryBlockstats::new()).await, &mut q.block)?
            .unwrap_or_default()
            .iter()
            .map(BlockIo::from_stats)
            .collect();
    }
    if q.jobs {
        s.jobs = answered(c.execute(QueryJobs::new()).await, &mut q.jobs)?.unwrap_or_default();
    }
    if q.migration {
        s.migration = answered(c.execute(QueryMigrate::new()).await, &mut q.migration)?
            .filter(|m| m.status.is_some())
            .map(Into::into);
    }
    if q.vcpus {
        s.vcpus = answered(c.execute(QueryCpusFast::new()).await, &mut q.vcpus)?
            .unwrap_or_default()
            .iter()
            .map(|c| Vcpu {
                index: c.cpu_index,
                thread_id: c.thread_id,
            })
            .collect();
    }
    if q.balloon {
        s.balloon =
            answered(c.execute(QueryBalloon::new()).await, &mut q.balloon)?.map(|b| b.actual);
    }
    Ok(s)
}
