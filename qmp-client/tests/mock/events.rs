//! The typed events API (`Client::events_of`): history first, then live,
//! each event once, in order; a lagging stream recovers from the history
//! and reports only what the history lost too; the blocking twin; and the
//! deprecated per-event waits, still answering through it.

use super::*;
use qmp_client::Since;
use qmp_types::*;

fn deleted(id: &str) -> DeviceDeleted {
    DeviceDeleted::new(format!("/machine/peripheral/{id}")).with_device(id)
}

fn ids(v: &[(Timestamp, DeviceDeleted)]) -> Vec<String> {
    v.iter().filter_map(|(_, e)| e.device.clone()).collect()
}

#[tokio::test]
async fn a_stream_gives_the_history_then_live_events_each_once_in_order() {
    let mock = MockQemu::new();
    for id in ["d0", "d1", "d2"] {
        mock.expect::<DeviceDel>()
            .with(move |c| c.id == id)
            // Before the reply, as QEMU often sends it; a STOP beside it,
            // which the stream leaves out.
            .emit_before(StopEvent::new())
            .emit_before(deleted(id))
            .reply(());
    }
    let c = client(&mock).await;
    let since = c.event_cursor();
    c.execute(DeviceDel::new("d0")).await.expect("d0");
    // Made after d0's event arrived: it comes from the history.
    let mut stream = c.events_of::<DeviceDeleted>(since).stream();
    c.execute(DeviceDel::new("d1")).await.expect("d1");
    c.execute(DeviceDel::new("d2")).await.expect("d2");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(bounded(stream.next()).await.expect("an event"));
    }
    assert_eq!(ids(&got), ["d0", "d1", "d2"]);
    // The same three, from the history, and the first through `wait`.
    assert_eq!(
        ids(&c.events_of::<DeviceDeleted>(since).found()),
        ["d0", "d1", "d2"]
    );
    let (_, first) = bounded(c.events_of::<DeviceDeleted>(since).wait(BOUND))
        .await
        .expect("found");
    assert_eq!(first.device.as_deref(), Some("d0"));
    // Filters add up.
    let only = c
        .events_of::<DeviceDeleted>(since)
        .matching(|e| e.device.as_deref() != Some("d0"))
        .matching(|e| e.device.as_deref() != Some("d2"))
        .found();
    assert_eq!(ids(&only), ["d1"]);
    // The end: what the stream holds is given out, then why it ended.
    mock.close();
    let end = bounded(stream.next()).await.expect_err("ended");
    assert!(matches!(end, Error::Closed(_)), "{end}");
    mock.verify().expect("met");
}

#[tokio::test]
async fn a_lagging_stream_finds_what_it_missed_in_the_history() {
    let mock = MockQemu::new();
    let burst = mock.expect::<Stop>();
    let burst = (0..50).fold(burst, |e, i| e.emit_before(deleted(&format!("d{i}"))));
    burst.reply(());
    // Each subscriber may fall 4 behind; the history keeps 1,000.
    let c = bounded(mock.connect(Options::default().with_subscriber_buffer(4)))
        .await
        .expect("connects");
    let mut stream = c.events_of::<DeviceDeleted>(c.event_cursor()).stream();
    // The reply comes after the 50 events: all are in before any is read.
    c.execute(Stop::new()).await.expect("stop");
    let mut got = Vec::new();
    for _ in 0..50 {
        got.push(
            bounded(stream.next())
                .await
                .expect("no loss: the history has them"),
        );
    }
    let want: Vec<String> = (0..50).map(|i| format!("d{i}")).collect();
    assert_eq!(ids(&got), want);
}

#[tokio::test]
async fn a_stream_reports_what_the_history_lost_too_and_goes_on() {
    let mock = MockQemu::new();
    let burst = mock.expect::<Stop>();
    let burst = (0..50).fold(burst, |e, i| e.emit_before(deleted(&format!("d{i}"))));
    burst.reply(());
    let opts = Options::default()
        .with_subscriber_buffer(4)
        .with_history(10);
    let c = bounded(mock.connect(opts)).await.expect("connects");
    let mut stream = c.events_of::<DeviceDeleted>(c.event_cursor()).stream();
    c.execute(Stop::new()).await.expect("stop");
    // d0..d39 are gone from the history as well: told once, by count.
    match bounded(stream.next()).await {
        Err(Error::EventsLost(n)) => assert_eq!(n, 40),
        other => panic!("expected a loss of 40, got {other:?}"),
    }
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(bounded(stream.next()).await.expect("kept"));
    }
    let want: Vec<String> = (40..50).map(|i| format!("d{i}")).collect();
    assert_eq!(ids(&got), want);
    // And nothing twice: the next is the next new one.
    mock.emit(deleted("after"));
    let (_, e) = bounded(stream.next()).await.expect("live");
    assert_eq!(e.device.as_deref(), Some("after"));
}

#[tokio::test]
async fn a_wait_reports_an_event_that_does_not_decode() {
    let mock = MockQemu::new();
    let c = client(&mock).await;
    let since = c.event_cursor();
    mock.emit_json("DEVICE_DELETED", serde_json::json!({"device": "d0"}));
    let e = bounded(c.events_of::<DeviceDeleted>(since).wait(BOUND))
        .await
        .expect_err("no path");
    assert!(
        matches!(&e, Error::EventDecode { event, .. } if event == "DEVICE_DELETED"),
        "{e}"
    );
    // Left out of `found`, kept in the history.
    assert!(c.events_of::<DeviceDeleted>(since).found().is_empty());
    assert_eq!(c.history(since).len(), 1);
}

#[tokio::test]
#[allow(deprecated)]
async fn the_deprecated_waits_still_answer_through_events_of() {
    let mock = MockQemu::new();
    mock.expect::<DeviceDel>()
        .emit_before(deleted("d0"))
        .reply(());
    mock.expect::<Cont>().then_emit(Resume::new());
    let c = client(&mock).await;
    let since = c.event_cursor();
    c.execute(DeviceDel::new("d0")).await.expect("del");
    let e = bounded(c.wait_device_deleted("d0", since, BOUND))
        .await
        .expect("deleted");
    assert_eq!(e.path, "/machine/peripheral/d0");
    assert_eq!(c.find_events::<DeviceDeleted>(since).len(), 1);
    let got = bounded(c.get_events::<DeviceDeleted>(since, BOUND))
        .await
        .expect("from the history");
    assert_eq!(got.len(), 1);
    let since = c.event_cursor();
    c.execute(Cont::new()).await.expect("cont");
    bounded(c.wait_machine_resume(since, BOUND))
        .await
        .expect("RESUME");
    bounded(c.wait_for::<DeviceDeleted, _>(Since::Cursor(0), BOUND, |e| e.path.ends_with("d0")))
        .await
        .expect("wait_for");
}

#[test]
fn the_blocking_twin_waits_finds_and_follows_until_a_deadline() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mock = MockQemu::new();
    mock.expect::<DeviceDel>()
        .emit_before(deleted("d0"))
        .reply(());
    let path = rt.block_on(mock.listen_unix()).expect("listens");
    let c =
        qmp_client::blocking::Client::connect_unix(&path, Options::default()).expect("connects");
    let since = c.event_cursor();
    c.execute(DeviceDel::new("d0")).expect("del");
    let (_, e) = c
        .events_of::<DeviceDeleted>(since)
        .matching(|e| e.device.as_deref() == Some("d0"))
        .wait(BOUND)
        .expect("found");
    assert_eq!(e.path, "/machine/peripheral/d0");
    assert_eq!(c.events_of::<DeviceDeleted>(since).found().len(), 1);
    let mut stream = c.events_of::<DeviceDeleted>(since).stream();
    let first = stream.next().expect("an item").expect("d0");
    assert_eq!(first.1.device.as_deref(), Some("d0"));
    // Nothing more comes: the deadline ends it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    assert!(stream.next_until(deadline).is_none());
    c.close();
    let end = stream.next().expect("the end, once");
    assert!(matches!(end, Err(Error::Closed(_))), "{end:?}");
    assert!(stream.next().is_none());
}
