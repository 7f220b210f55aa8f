//! Typed expectations: predicates, answers, events around the answer,
//! delays, counts, order, the default responder, and what `verify` says.

use super::*;
use qmp_client::testing::Reply;
use qmp_client::{ErrorClass, Since};
use qmp_types::*;

#[tokio::test]
async fn typed_answers_errors_and_events_around_them() {
    let mock = MockQemu::with_version("10.0.2").expect("covered");
    mock.expect::<QueryStatus>()
        .reply(StatusInfo::new(true, RunState::Running));
    mock.expect::<DeviceDel>()
        .with(|c| c.id == "disk0")
        .emit_before(DeviceDeleted::new("/machine/peripheral/disk0").with_device("disk0"))
        .reply(());
    mock.expect::<DeviceDel>()
        .fail(ErrorClass::DeviceNotFound, "Device 'nope' not found");
    mock.expect::<Stop>().then_emit(StopEvent::new());
    let c = client(&mock).await;
    assert_eq!(c.greeting().version.qemu.major, 10);
    assert!(c.greeting().oob);
    let st = c.execute(QueryStatus::new()).await.expect("status");
    assert!(st.running && st.status == RunState::Running);
    // The event came before the reply; the unplug helper still sees it.
    let gone = bounded(c.unplug("disk0", BOUND)).await.expect("unplugged");
    assert_eq!(gone.device.as_deref(), Some("disk0"));
    let err = c.execute(DeviceDel::new("nope")).await.expect_err("fails");
    assert_eq!(err.class(), Some(&ErrorClass::DeviceNotFound));
    assert!(err.to_string().contains("Device 'nope' not found"), "{err}");
    let since = Since::now();
    c.execute(Stop::new()).await.expect("stop");
    bounded(c.events_of::<StopEvent>(since).wait(BOUND))
        .await
        .expect("STOP after the reply");
    mock.verify().expect("all met");
    let names: Vec<String> = mock.calls().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["query-status", "device_del", "device_del", "stop"]);
}

#[tokio::test]
async fn order_counts_and_what_verify_lists() {
    let mock = MockQemu::new();
    mock.expect::<Stop>().times(2);
    mock.expect::<Cont>();
    mock.expect::<QueryVersion>().any_order().times(0);
    mock.expect::<SystemReset>();
    let c = client(&mock).await;
    c.execute(Stop::new()).await.expect("first stop");
    // `cont` before the second `stop`: out of order.
    let err = c.execute(Cont::new()).await.expect_err("unexpected");
    assert!(err.to_string().contains("unexpected command cont"), "{err}");
    c.execute(Stop::new()).await.expect("second stop");
    c.execute(Cont::new()).await.expect("cont, in its turn");
    let text = problems(&mock);
    assert!(
        text.contains("unexpected command cont {}; next expected: stop"),
        "{text}"
    );
    // Where the unmet one was made, and how often it was called.
    assert!(
        text.contains("system_reset, expected at qmp-client/tests/mock/expectations.rs:"),
        "{text}"
    );
    assert!(text.contains("called 0 time(s), expected 1"), "{text}");
}

#[tokio::test]
async fn stubs_the_default_responder_and_delays() {
    let mock = MockQemu::new();
    mock.allow::<QueryStatus>()
        .reply(StatusInfo::new(false, RunState::Paused));
    mock.respond_by_default(|name, _| {
        (name == "query-name").then(|| Reply::Return(serde_json::json!({"name": "vm0"})))
    });
    mock.expect::<Cont>().delay(Duration::from_millis(150));
    let c = client(&mock).await;
    for _ in 0..3 {
        assert!(!c.execute(QueryStatus::new()).await.expect("stub").running);
    }
    let name = c.execute(QueryName::new()).await.expect("default");
    assert_eq!(name.name.as_deref(), Some("vm0"));
    let t = std::time::Instant::now();
    c.execute(Cont::new()).await.expect("cont");
    assert!(t.elapsed() >= Duration::from_millis(150));
    // A call with its own timeout against a delay: the client gives up.
    mock.expect::<Stop>().delay(Duration::from_secs(5));
    let err = c
        .execute_timeout(Stop::new(), Duration::from_millis(100))
        .await
        .expect_err("times out");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    mock.verify().expect("met");
}

#[tokio::test]
async fn a_dropped_unverified_double_with_problems_panics_with_the_list() {
    let r = tokio::spawn(async {
        let mock = MockQemu::new();
        mock.expect::<SystemReset>();
        drop(mock);
    })
    .await;
    let panic = r.expect_err("panicked").into_panic();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("system_reset"), "{text}");
}

#[tokio::test]
async fn a_socket_path_serves_code_that_connects_by_path() {
    let mock = MockQemu::with_version("7.2").expect("7.2.0");
    mock.allow::<QueryStatus>()
        .reply(StatusInfo::new(true, RunState::Running));
    let path = mock.listen_unix().await.expect("listens");
    for _ in 0..2 {
        // One connection after the other, as QEMU's monitor serves them.
        let c = bounded(Client::connect_unix(&path, Options::default()))
            .await
            .expect("connects by path");
        assert_eq!(c.qemu_version().to_string(), "7.2.0");
        c.execute(QueryStatus::new()).await.expect("status");
        c.close();
        c.closed().await;
    }
    assert_eq!(mock.calls().len(), 2);
    mock.verify().expect("met");
}

#[tokio::test]
async fn without_oob_and_events_queued_before_the_connection() {
    let mock = MockQemu::with_version("10.0.2")
        .expect("covered")
        .without_oob();
    // Sent once the client has negotiated, as QEMU sends no event before.
    mock.emit(StopEvent::new());
    mock.expect::<Cont>();
    let c = client(&mock).await;
    assert!(!c.greeting().oob);
    assert!(c.greeting().capabilities.is_empty());
    let err = c.execute_oob(Cont::new()).await.expect_err("no OOB");
    assert!(matches!(err, Error::OobNotAvailable { .. }), "{err:?}");
    bounded(c.events_of::<StopEvent>(Since::Cursor(0)).wait(BOUND))
        .await
        .expect("the queued event");
    c.execute(Cont::new()).await.expect("in band");
    mock.verify().expect("met");
}

/// The raw stream ([`MockQemu::stream`]) read by one task and written by
/// another, or by two futures joined in one task: each write wakes the
/// reader, which finds the answer.
#[tokio::test]
async fn a_raw_stream_read_apart_from_its_writer_gets_answers() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    async fn lines_until_return(r: impl tokio::io::AsyncRead + Unpin) -> Vec<String> {
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            let done = l.contains("\"return\"");
            seen.push(l);
            if done {
                break;
            }
        }
        seen
    }
    let negotiate = b"{\"execute\": \"qmp_capabilities\"}\n";

    // Another task reads.
    let mock = MockQemu::new();
    let (r, mut w) = tokio::io::split(mock.stream());
    let reader = tokio::spawn(lines_until_return(r));
    tokio::task::yield_now().await;
    w.write_all(negotiate).await.expect("write");
    let seen = bounded(reader).await.expect("reader");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].contains("\"QMP\""), "{seen:?}");

    // The same task, reading and writing side by side.
    let mock = MockQemu::new();
    let (r, mut w) = tokio::io::split(mock.stream());
    let write = async {
        tokio::task::yield_now().await;
        w.write_all(negotiate).await.expect("write");
    };
    let (seen, ()) = bounded(async { tokio::join!(lines_until_return(r), write) }).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    mock.verify().expect("met");
}
