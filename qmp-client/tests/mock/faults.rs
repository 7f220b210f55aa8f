//! Faults on demand: garbage, a cut line, a peer that stops reading, a
//! close, a death after N commands, a burst of events.

use super::*;
use qmp_client::{Disconnect, Since};
use qmp_types::*;

#[tokio::test]
async fn a_garbled_reply_fails_the_call_and_closes() {
    let mock = MockQemu::new();
    mock.expect::<QueryStatus>()
        .reply_raw("{\"return\": {oops\n");
    let c = client(&mock).await;
    let e = bounded(c.execute(QueryStatus::new()))
        .await
        .expect_err("garbled");
    assert!(e.to_string().contains("garbled message"), "{e}");
    assert!(c.is_closed());
    assert!(
        c.execute(QueryStatus::new())
            .await
            .expect_err("closed")
            .is_socket_closed()
    );
    mock.verify().expect("met");
}

#[tokio::test]
async fn a_reply_cut_mid_line_then_eof() {
    let mock = MockQemu::new();
    mock.expect::<QueryStatus>().cut_reply();
    let c = client(&mock).await;
    let e = bounded(c.execute(QueryStatus::new()))
        .await
        .expect_err("cut");
    assert!(e.to_string().contains("middle of a message"), "{e}");
    mock.verify().expect("met");

    // Half of the scripted answer: a long one is cut long.
    let mock = MockQemu::new();
    mock.expect::<QueryName>()
        .reply(NameInfo::new().with_name("v".repeat(1000)))
        .cut_reply();
    let c = client(&mock).await;
    let e = bounded(c.execute(QueryName::new())).await.expect_err("cut");
    let Error::Closed(Disconnect::Truncated { bytes }) = e else {
        panic!("{e:?}");
    };
    assert!((500..520).contains(&bytes), "half of the reply: {bytes}");
    mock.verify().expect("met");
}

#[tokio::test]
async fn qemu_dying_mid_call_ends_every_waiter_with_the_cause() {
    let mock = MockQemu::new();
    mock.expect::<Stop>();
    mock.expect::<DeviceDel>().close_instead();
    let c = client(&mock).await;
    c.execute(Stop::new()).await.expect("answered");
    let since = c.event_cursor();
    let deleted = c
        .events_of::<qmp_types::DeviceDeleted>(since)
        .matching(|e| e.device.as_deref() == Some("disk0"));
    let wait = deleted.wait(BOUND);
    let (del, wait) = tokio::join!(c.execute(DeviceDel::new("disk0")), wait);
    assert!(
        matches!(del, Err(Error::Closed(Disconnect::PeerClosed))),
        "{del:?}"
    );
    assert!(matches!(wait, Err(Error::Closed(_))), "{wait:?}");
    mock.verify().expect("met");

    // The same through die_after: two answered, the third never.
    let mock = MockQemu::new();
    mock.allow::<QueryStatus>()
        .reply(StatusInfo::new(true, RunState::Running));
    mock.die_after(2);
    let c = client(&mock).await;
    for _ in 0..2 {
        c.execute(QueryStatus::new()).await.expect("answered");
    }
    let e = c.execute(QueryStatus::new()).await.expect_err("died");
    assert!(e.is_socket_closed(), "{e}");
}

#[tokio::test]
async fn a_peer_that_stops_reading_leaves_calls_to_their_timeout() {
    let mock = MockQemu::new();
    mock.allow::<QueryStatus>()
        .reply(StatusInfo::new(true, RunState::Running));
    let c = client(&mock).await;
    c.execute(QueryStatus::new()).await.expect("answered");
    // Lands at once: the double's actions apply to its connection when
    // made.
    mock.stop_reading();
    let e = c
        .execute_timeout(QueryStatus::new(), Duration::from_millis(200))
        .await
        .expect_err("no answer");
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn events_and_bursts_on_demand_and_a_cut_line() {
    let mock = MockQemu::new();
    let c = client(&mock).await;
    let mut events = c.events();
    mock.emit(StopEvent::new());
    mock.emit_burst(
        (0..100).map(|i| BlockJobReady::new(JobType::Backup, format!("j{i}"), 10, 10, 0)),
    );
    mock.emit_json("FUTURE_EVENT", serde_json::json!({"x": 1}));
    let first = bounded(events.next()).await.expect("STOP");
    assert_eq!(first.event.name(), "STOP");
    let mut ready = 0;
    for _ in 0..100 {
        let e = bounded(events.next()).await.expect("event");
        if e.event.name() == "BLOCK_JOB_READY" {
            ready += 1;
        }
    }
    assert_eq!(ready, 100);
    let unknown = bounded(events.next()).await.expect("unknown event");
    assert_eq!(unknown.event.name(), "FUTURE_EVENT");
    assert_eq!(c.history(Since::Cursor(0)).len(), 102);
    mock.cut_line();
    let e = bounded(c.closed()).await;
    assert!(e.to_string().contains("middle of a message"), "{e}");
}

#[tokio::test]
async fn replies_with_unknown_ids_are_counted_and_ignored() {
    let mock = MockQemu::new();
    mock.expect::<QueryStatus>()
        .reply(StatusInfo::new(true, RunState::Running));
    let c = client(&mock).await;
    mock.send_raw(
        &b"{\"return\": {\"running\": false, \"status\": \"paused\"}, \"id\": 987654}\n"[..],
    );
    mock.send_raw(
        &b"{\"return\": {\"running\": false, \"status\": \"paused\"}, \"id\": \"not-ours\"}\n"[..],
    );
    bounded(async {
        while c.stats().stray_replies < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let s = c.execute(QueryStatus::new()).await.expect("reply");
    assert!(s.running, "the right reply reached the caller");
    assert_eq!(c.stats().stray_replies, 2);
    mock.verify().expect("met");
}

/// `next_until`: the next event if one comes before the deadline, else
/// `None` (issue 37, 3).
#[tokio::test]
async fn next_until_gives_events_before_a_deadline_then_none() {
    let mock = MockQemu::new();
    let c = client(&mock).await;
    let mut events = c.events();
    mock.emit(StopEvent::new());
    let soon = std::time::Instant::now() + Duration::from_secs(5);
    let e = events.next_until(soon).await.expect("before the deadline");
    assert_eq!(e.expect("an event").event.name(), "STOP");
    let past = std::time::Instant::now() + Duration::from_millis(20);
    assert!(events.next_until(past).await.is_none());
}
