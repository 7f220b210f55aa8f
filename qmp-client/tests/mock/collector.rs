//! The collector against the double (a Unix socket, the clock paused):
//! a monitor that answers slowly is marked slow while its poll is under
//! way and never gets a second batch meanwhile; a query the QEMU lacks is
//! asked once; a monitor that goes is marked gone and dialled again.

use super::*;
use qmp_client::collector::{Collector, CollectorOptions, Health, MonitorView, Source};
use qmp_client::testing::Reply;
use qmp_types::*;

const INTERVAL: Duration = Duration::from_millis(50);

/// Waits until `ok` holds for the collector's one monitor (`what` names
/// it when the bound is hit), looking again on its news and each
/// interval (a health mark comes with time: a poll overdue, not news).
async fn until(c: &Collector, what: &str, ok: impl Fn(&MonitorView) -> bool) -> MonitorView {
    let wait = async {
        loop {
            let news = c.changed();
            if let Some(v) = c.snapshot().into_iter().next().filter(|v| ok(v)) {
                return v;
            }
            tokio::select! {
                () = news => {}
                () = tokio::time::sleep(INTERVAL) => {}
            }
        }
    };
    match tokio::time::timeout(BOUND, wait).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: not seen; last snapshot {:#?}", c.snapshot()),
    }
}

fn calls_of(mock: &MockQemu, name: &str) -> usize {
    mock.calls().iter().filter(|c| c.name == name).count()
}

#[tokio::test]
async fn a_slow_monitor_is_marked_and_gets_one_batch_at_a_time() {
    let mock = MockQemu::with_version("10.0.2").expect("version");
    mock.allow::<QueryName>();
    // The first answer after sixty intervals (the slow mark is looked at
    // meanwhile, with room for a loaded machine), then twelve per answer.
    mock.expect::<QueryStatus>()
        .delay(INTERVAL * 60)
        .reply(StatusInfo::new(true, RunState::Running));
    mock.allow::<QueryStatus>()
        .delay(INTERVAL * 12)
        .reply(StatusInfo::new(true, RunState::Running));
    // What this QEMU "lacks": asked once, never again.
    mock.respond_by_default(|name, _| {
        Some(Reply::Error {
            class: qmp_client::ErrorClass::CommandNotFound,
            desc: format!("The command {name} has not been found"),
        })
    });
    let path = mock.listen_unix().await.expect("socket");
    let c = Collector::start(
        vec![Source::Socket(path)],
        CollectorOptions::default().with_interval(INTERVAL),
    );
    // While the first answer is awaited: slow, and the snapshot does not
    // wait for it.
    until(&c, "connected", |v| v.connects == 1).await;
    let v = until(&c, "the slow mark", |v| v.health == Health::Slow).await;
    assert_eq!(v.polls, 0, "{v:?}");
    let v = until(&c, "three polls", |v| v.polls >= 3).await;
    assert!(
        v.last()
            .is_some_and(|s| s.took >= INTERVAL * 12 && s.status == Some(RunState::Running))
    );
    assert_eq!(v.slow_polls, v.polls, "{v:?}");
    // One batch at a time: a query-status per poll (and the one under
    // way), never one per tick.
    let asked = calls_of(&mock, "query-status");
    assert!(
        asked <= v.polls as usize + 1,
        "{asked} query-status for {} polls",
        v.polls
    );
    for q in [
        "query-blockstats",
        "query-jobs",
        "query-migrate",
        "query-cpus-fast",
        "query-balloon",
    ] {
        assert_eq!(
            calls_of(&mock, q),
            1,
            "{q} asked again after CommandNotFound"
        );
    }
}

#[tokio::test]
async fn a_monitor_that_goes_is_marked_gone_and_dialled_again() {
    let mock = MockQemu::with_version("10.0.2").expect("version");
    mock.respond_by_default(|name, _| match name {
        "query-status" => Some(Reply::Return(
            serde_json::json!({"running": false, "status": "paused"}),
        )),
        "query-balloon" => Some(Reply::Error {
            class: qmp_client::ErrorClass::DeviceNotActive,
            desc: "No balloon device has been activated".into(),
        }),
        "query-jobs" | "query-blockstats" | "query-cpus-fast" => {
            Some(Reply::Return(serde_json::json!([])))
        }
        _ => Some(Reply::Return(serde_json::json!({}))),
    });
    let path = mock.listen_unix().await.expect("socket");
    let c = Collector::start(
        vec![Source::Socket(path)],
        CollectorOptions::default().with_interval(INTERVAL),
    );
    let v = until(&c, "up", |v| v.health == Health::Up && v.polls >= 2).await;
    assert_eq!(
        v.last().and_then(|s| s.status.clone()),
        Some(RunState::Paused)
    );
    assert_eq!(v.last().and_then(|s| s.balloon), None);
    assert_eq!(v.version.as_deref(), Some("10.0.2"));
    // An event, counted by name.
    mock.emit(StopEvent::new());
    until(&c, "the event", |v| v.events.get("STOP") == Some(&1)).await;
    // QEMU goes; its socket answers again (a restart).
    mock.close();
    until(&c, "gone", |v| matches!(v.health, Health::Gone(_))).await;
    let v = until(&c, "back", |v| v.health == Health::Up && v.connects == 2).await;
    assert!(v.polls >= 2);
}
