//! Faults QEMU won't produce, from a scripted fake server: no greeting, a
//! bad greeting, garbled JSON, a message cut mid-line, a reply with an
//! unknown id, a 10 MB message, an event flood, a disconnect with calls
//! pending, a reply that doesn't decode, error classes QEMU here can't
//! send. Each must end in a clear error or correct handling: no panic, no
//! hang, no call left waiting.

use std::time::Duration;

use qmp_client::{Client, Disconnect, Error, Options};
use qmp_types::{AnyEvent, DeviceDeleted, QueryStatus, QueryVersion, StopEvent};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "fake"}, "capabilities": ["oob"]}}"#;

struct Fake {
    _dir: tests::TempDir,
    path: std::path::PathBuf,
    listener: UnixListener,
}

impl Fake {
    fn new() -> Fake {
        let dir = tests::TempDir::new("fake").expect("dir");
        let path = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        Fake {
            _dir: dir,
            path,
            listener,
        }
    }

    /// A client connected to it (the test's server side must accept).
    async fn connect(&self) -> Client {
        self.connect_with(opts()).await
    }

    /// The same with other options.
    async fn connect_with(&self, opts: Options) -> Client {
        Client::connect_unix(&self.path, opts)
            .await
            .expect("connect")
    }

    /// Accepts one client; greets and negotiates when `greet`.
    async fn accept(
        &self,
        greet: bool,
    ) -> (
        BufReader<tokio::net::unix::OwnedReadHalf>,
        tokio::net::unix::OwnedWriteHalf,
    ) {
        let (s, _) = self.listener.accept().await.expect("accept");
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        if greet {
            w.write_all(format!("{GREETING}\n").as_bytes())
                .await
                .expect("greet");
            let cmd = read_cmd(&mut r).await.expect("qmp_capabilities");
            assert_eq!(cmd["execute"], "qmp_capabilities");
            w.write_all(b"{\"return\": {}}\n").await.expect("reply");
        }
        (r, w)
    }
}

/// Awaits `f`, failing the test if it takes longer than [`BOUND`].
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f).await.expect("bounded")
}

/// Writes one JSON message and a newline.
async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, v: &Value) {
    w.write_all(format!("{v}\n").as_bytes())
        .await
        .expect("write");
}

async fn read_cmd(r: &mut BufReader<tokio::net::unix::OwnedReadHalf>) -> Option<Value> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    serde_json::from_str(&line).ok()
}

fn opts() -> Options {
    Options {
        connect_timeout: Duration::from_millis(500),
        ..Options::default()
    }
}

const BOUND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn no_greeting_times_out() {
    let fake = Fake::new();
    let server = async {
        let (s, _) = fake.listener.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(s);
    };
    let client = Client::connect_unix(&fake.path, opts());
    let (r, ()) = tokio::join!(tokio::time::timeout(BOUND, client), server);
    let e = r.expect("bounded").expect_err("no greeting");
    assert!(
        matches!(e, Error::Timeout { ref what, .. } if what == "the QMP greeting"),
        "{e}"
    );
}

#[tokio::test]
async fn bad_greeting_is_a_protocol_error() {
    let fake = Fake::new();
    let server = async {
        let (s, _) = fake.listener.accept().await.expect("accept");
        let (_r, mut w) = s.into_split();
        w.write_all(b"{\"hello\": \"I am not QEMU\"}\n")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (r, ()) = tokio::join!(Client::connect_unix(&fake.path, opts()), server);
    let e = r.expect_err("bad greeting");
    assert!(
        matches!(e, Error::Protocol(ref m) if m.contains("bad greeting")),
        "{e}"
    );
}

#[tokio::test]
async fn nothing_listening_is_socket_not_available() {
    let dir = tests::TempDir::new("none").expect("dir");
    let e = Client::connect_unix(dir.path().join("none.sock"), opts())
        .await
        .expect_err("no socket");
    assert!(e.is_socket_not_available(), "{e}");
}

#[tokio::test]
async fn garbled_json_fails_pending_calls_and_closes() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        read_cmd(&mut r).await.expect("a command");
        w.write_all(b"{\"return\": {oops\n").await.expect("write");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let client = async {
        let c = fake.connect().await;
        let r = bounded(c.execute(QueryStatus::new())).await;
        let e = r.expect_err("garbled");
        assert!(e.to_string().contains("garbled message"), "{e}");
        assert!(c.is_closed());
        let again = c.execute(QueryStatus::new()).await.expect_err("closed");
        assert!(again.is_socket_closed());
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn message_cut_mid_line_then_eof() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        read_cmd(&mut r).await.expect("a command");
        w.write_all(b"{\"return\": {\"running\": tr")
            .await
            .expect("write");
        drop(w);
        drop(r);
    };
    let client = async {
        let c = fake.connect().await;
        let r = bounded(c.execute(QueryStatus::new())).await;
        let e = r.expect_err("cut");
        assert!(e.is_socket_closed() || matches!(e, Error::Closed(_)), "{e}");
        assert!(e.to_string().contains("middle of a message"), "{e}");
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn reply_with_unknown_id_is_ignored() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        w.write_all(
            b"{\"return\": {\"running\": false, \"status\": \"paused\"}, \"id\": 987654}\n",
        )
        .await
        .expect("write");
        w.write_all(
            b"{\"return\": {\"running\": false, \"status\": \"paused\"}, \"id\": \"not-ours\"}\n",
        )
        .await
        .expect("write");
        send(
            &mut w,
            &serde_json::json!({"return": {"running": true, "status": "running"}, "id": cmd["id"]}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake.connect().await;
        let s = bounded(c.execute(QueryStatus::new())).await.expect("reply");
        assert!(s.running, "the right reply reached the caller");
        assert_eq!(c.stats().stray_replies, 2);
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn ten_megabyte_message_and_the_size_limit() {
    let fake = Fake::new();
    let big = "x".repeat(10 << 20);
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        send(&mut w, &serde_json::json!({"return": big, "id": cmd["id"]})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake.connect().await;
        let v = tokio::time::timeout(BOUND, c.execute_raw("x-big", serde_json::json!({})))
            .await
            .expect("bounded")
            .expect("10 MB reply");
        assert_eq!(v.as_str().map(str::len), Some(10 << 20));
    };
    tokio::join!(server, client);
    // Over the limit: a protocol error, not unbounded memory.
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        read_cmd(&mut r).await.expect("a command");
        let _ = w.write_all(&vec![b'a'; 2 << 20]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake
            .connect_with(Options {
                max_message: 1 << 20,
                ..opts()
            })
            .await;
        let e = bounded(c.execute(QueryStatus::new()))
            .await
            .expect_err("too big");
        assert!(e.to_string().contains("message over 1048576 bytes"), "{e}");
    };
    tokio::join!(server, client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_flood_while_commands_run() {
    let fake = Fake::new();
    const EVENTS: usize = 50_000;
    let server = async {
        let (mut r, w) = fake.accept(true).await;
        let w = std::sync::Arc::new(tokio::sync::Mutex::new(w));
        let flood = {
            let w = w.clone();
            tokio::spawn(async move {
                let ev =
                    "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n"
                        .repeat(100);
                for _ in 0..EVENTS / 100 {
                    w.lock()
                        .await
                        .write_all(ev.as_bytes())
                        .await
                        .expect("flood");
                    tokio::task::yield_now().await;
                }
            })
        };
        while let Some(cmd) = read_cmd(&mut r).await {
            let reply = serde_json::json!({"return": {"qemu": {"major": 10, "minor": 0, "micro": 2}, "package": ""}, "id": cmd["id"]});
            w.lock()
                .await
                .write_all(format!("{reply}\n").as_bytes())
                .await
                .expect("reply");
        }
        flood.await.expect("flood task");
    };
    let client = async {
        let c = fake.connect().await;
        // A subscriber that never reads (loses events, told so later) and
        // one that keeps up.
        let mut slow = c.events();
        let mut fast = c.events();
        // Counted by sequence number: the flood may start before the
        // subscription, and a lagging subscriber is told, not blocked.
        let counter = tokio::spawn(async move {
            loop {
                match fast.next().await {
                    Ok(r) if r.seq + 1 == EVENTS as u64 => return EVENTS,
                    Ok(_) | Err(Error::EventsLost(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        });
        let start = std::time::Instant::now();
        for _ in 0..200 {
            let v = bounded(c.execute(QueryVersion::new()))
                .await
                .expect("reply");
            assert_eq!(v.qemu.major, 10);
        }
        let seen = tokio::time::timeout(Duration::from_secs(20), counter)
            .await
            .expect("bounded")
            .expect("task");
        assert_eq!(seen, EVENTS);
        assert_eq!(c.stats().events, EVENTS as u64, "every event received");
        eprintln!("{EVENTS} events and 200 calls in {:?}", start.elapsed());
        match slow.next().await {
            Err(Error::EventsLost(n)) => assert!(n > 0),
            other => panic!("the slow subscriber must hear of its loss, got {other:?}"),
        }
        assert!(
            !c.find_events::<StopEvent>(qmp_client::Since::Cursor(0))
                .is_empty()
        );
        c.close();
    };
    tokio::join!(server, client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_fails_every_pending_call_at_once() {
    let fake = Fake::new();
    let server = async {
        let (mut r, w) = fake.accept(true).await;
        // Seven are written (the in-flight window); three wait in the
        // client's queue. All ten must fail.
        for _ in 0..7 {
            read_cmd(&mut r).await.expect("a command");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(w);
        drop(r);
    };
    let client = async {
        let c = fake.connect().await;
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.execute(QueryStatus::new()).await })
            })
            .collect();
        for call in calls {
            let r = tokio::time::timeout(BOUND, call)
                .await
                .expect("bounded")
                .expect("task");
            assert!(r.expect_err("disconnected").is_socket_closed());
        }
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn any_stream_works() {
    let (a, b) = UnixStream::pair().expect("pair");
    let server = async move {
        let (r, mut w) = b.into_split();
        let mut r = BufReader::new(r);
        w.write_all(format!("{GREETING}\n").as_bytes())
            .await
            .expect("greet");
        let mut line = String::new();
        r.read_line(&mut line).await.expect("caps");
        w.write_all(b"{\"return\": {}}\n").await.expect("reply");
        line.clear();
        r.read_line(&mut line).await.expect("cmd");
        let cmd: Value = serde_json::from_str(&line).expect("json");
        send(
            &mut w,
            &serde_json::json!({"return": {"running": true, "status": "running"}, "id": cmd["id"]}),
        )
        .await;
    };
    let client = async move {
        let c = Client::from_stream(a, opts()).await.expect("handshake");
        let s = c.execute(QueryStatus::new()).await.expect("reply");
        assert!(s.running);
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn reply_that_does_not_decode_names_the_bad_member() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        // First reply: `qemu.major` is a string, not an integer.
        let cmd = read_cmd(&mut r).await.expect("a command");
        let bad = serde_json::json!({"return": {"qemu": {"major": "ten", "minor": 0, "micro": 2},
            "package": "fake"}, "id": cmd["id"]});
        w.write_all(format!("{bad}\n").as_bytes())
            .await
            .expect("write");
        // Second reply: fine; the connection goes on.
        let cmd = read_cmd(&mut r).await.expect("a second command");
        let good = serde_json::json!({"return": {"qemu": {"major": 10, "minor": 0, "micro": 2},
            "package": "fake"}, "id": cmd["id"]});
        w.write_all(format!("{good}\n").as_bytes())
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake.connect().await;
        let e = bounded(c.execute(QueryVersion::new()))
            .await
            .expect_err("a string where an integer belongs");
        match &e {
            Error::Decode { what, path, .. } => {
                assert_eq!(what, "query-version");
                assert_eq!(path, "qemu.major");
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        let v = bounded(c.execute(QueryVersion::new()))
            .await
            .expect("the next call still works");
        assert_eq!(v.qemu.major, 10);
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn error_classes_qemu_here_cannot_send() {
    // KVMMissingCap needs KVM; a class from a newer QEMU must be kept.
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        for class in ["KVMMissingCap", "SomeFutureClass"] {
            let cmd = read_cmd(&mut r).await.expect("a command");
            send(
                &mut w,
                &serde_json::json!({"error": {"class": class, "desc": "no"}, "id": cmd["id"]}),
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake.connect().await;
        let mut classes = Vec::new();
        for _ in 0..2 {
            let e = bounded(c.execute(QueryStatus::new()))
                .await
                .expect_err("an error reply");
            classes.push(e.class().cloned().expect("a QMP error"));
        }
        assert_eq!(classes[0], qmp_client::ErrorClass::KVMMissingCap);
        assert_eq!(classes[0].as_str(), "KVMMissingCap");
        assert_eq!(
            classes[1],
            qmp_client::ErrorClass::Unknown("SomeFutureClass".into())
        );
    };
    tokio::join!(server, client);
}

/// A peer that stops reading: the queue is bounded (callers wait for
/// room, memory stays flat), and when the peer reads again, no command
/// whose caller had given up arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_gets_no_abandoned_command() {
    let fake = Fake::new();
    let (tx_ids, rx_ids) = tokio::sync::oneshot::channel::<Vec<u64>>();
    let resume = std::sync::Arc::new(tokio::sync::Notify::new());
    let fake_ref = &fake;
    let server = {
        let resume = resume.clone();
        async move {
            let (mut r, mut w) = fake_ref.accept(true).await;
            // Don't read until told to.
            resume.notified().await;
            let mut ids = Vec::new();
            while let Ok(Some(cmd)) =
                tokio::time::timeout(Duration::from_millis(500), read_cmd(&mut r)).await
            {
                let id = cmd["id"].as_u64().expect("numeric id");
                ids.push(id);
                let reply = serde_json::json!({"return": {"qemu": {"major": 10, "minor": 0, "micro": 2}, "package": ""}, "id": id});
                if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
            let _ = tx_ids.send(ids);
        }
    };
    let client = async {
        let c = fake
            .connect_with(Options {
                queue: 16,
                ..opts()
            })
            .await;
        // Large commands fill the socket buffers quickly.
        let big = "x".repeat(32 << 10);
        let mut gave_up = 0u64;
        let calls: Vec<_> = (0..300)
            .map(|_| {
                let c = c.clone();
                let big = big.clone();
                tokio::spawn(async move {
                    c.execute_timeout(
                        qmp_types::HumanMonitorCommand::new(big),
                        Duration::from_millis(300),
                    )
                    .await
                })
            })
            .collect();
        for call in calls {
            let r = bounded(call).await.expect("task");
            assert!(r.expect_err("nobody answers").is_timeout());
            gave_up += 1;
        }
        let st = c.stats();
        assert_eq!(gave_up, 300);
        // Only the commands that reached the socket before their callers
        // gave up were sent (at most the in-flight window); the rest never
        // will be.
        assert!(st.sent <= 7, "{st:?}");
        resume.notify_one();
        // A live call after the peer reads again: it gets its answer.
        let v = bounded(c.execute(QueryVersion::new()))
            .await
            .expect("answered");
        assert_eq!(v.qemu.major, 10);
        let st2 = c.stats();
        assert_eq!(
            st2.sent,
            st.sent + 1,
            "no abandoned command went out later: {st2:?}"
        );
        st.sent
    };
    let (_, sent) = tokio::join!(server, client);
    let ids = bounded(rx_ids).await.expect("ids");
    assert_eq!(
        ids.len() as u64,
        sent + 1,
        "the peer read exactly what was sent"
    );
}

#[tokio::test]
async fn an_error_without_id_ends_the_connection_with_its_text() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        read_cmd(&mut r).await.expect("a command");
        w.write_all(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, too deeply nested\"}}\n")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake.connect().await;
        let e = bounded(c.execute(QueryStatus::new()))
            .await
            .expect_err("no reply can come");
        assert!(
            matches!(e.disconnect(), Some(Disconnect::Protocol(_))),
            "{e}"
        );
        assert!(e.to_string().contains("too deeply nested"), "{e}");
        assert!(c.is_closed());
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn a_known_event_with_bad_data_is_kept_and_fails_typed_waits() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        w.write_all(b"{\"event\": \"DEVICE_DELETED\", \"data\": {\"bogus\": true}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n")
            .await
            .expect("event");
        send(&mut w, &serde_json::json!({"return": {}, "id": cmd["id"]})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake.connect().await;
        let since = c.event_cursor();
        let mut stream = c.events();
        bounded(c.execute(qmp_types::DeviceDel::new("tab0")))
            .await
            .expect("device_del");
        // The waiter doesn't time out: it is told.
        let e = bounded(c.wait_device_deleted("tab0", since, Duration::from_secs(30)))
            .await
            .expect_err("malformed");
        match &e {
            Error::EventDecode { event, error } => {
                assert_eq!(event, "DEVICE_DELETED");
                assert!(error.contains("path"), "{error}");
            }
            other => panic!("{other}"),
        }
        let e = bounded(stream.next_of::<DeviceDeleted>())
            .await
            .expect_err("malformed");
        assert!(matches!(e, Error::EventDecode { .. }), "{e}");
        // Kept with its name, raw data and the error.
        let h = c.history(since);
        match &h[0].event {
            AnyEvent::Malformed { name, data, error } => {
                assert_eq!(name, "DEVICE_DELETED");
                assert_eq!(data, &serde_json::json!({"bogus": true}));
                assert!(error.contains("missing field `path`"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h[0].event.name(), "DEVICE_DELETED");
        assert_eq!(c.stats().malformed_events, 1);
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn the_history_is_bounded_by_bytes() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        // 40 events of about 256 KiB each (10 MiB) against a 1 MiB bound.
        let pad = "y".repeat(256 << 10);
        for i in 0..40 {
            let ev = serde_json::json!({"event": "X_BIG", "data": {"i": i, "pad": pad},
                "timestamp": {"seconds": 1, "microseconds": i}});
            w.write_all(format!("{ev}\n").as_bytes())
                .await
                .expect("event");
        }
        send(&mut w, &serde_json::json!({"return": {}, "id": cmd["id"]})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake
            .connect_with(Options {
                history_bytes: 1 << 20,
                ..opts()
            })
            .await;
        bounded(c.execute_raw("x-flush", serde_json::json!({})))
            .await
            .expect("reply");
        let st = c.stats();
        assert_eq!(st.events, 40);
        assert!(st.history_bytes <= 1 << 20, "{st:?}");
        assert_eq!(st.history_len, 3, "{st:?}");
        // The newest are the ones kept.
        let h = c.history(qmp_client::Since::Cursor(0));
        let last = match &h[h.len() - 1].event {
            AnyEvent::Unknown { data, .. } => data["i"].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(last, 39);
    };
    tokio::join!(server, client);
}

/// A peer that never reads and never closes: 200 connections, each with a
/// command stuck in the socket, then `close()` and drop. Every connection
/// task ends (the runtime's task count comes back) and every socket is
/// closed (the peer reads EOF on each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_and_drop_against_a_deaf_peer_leak_nothing_over_200_cycles() {
    let fake = Fake::new();
    let metrics = tokio::runtime::Handle::current().metrics();
    // The server side keeps every accepted socket open and never reads
    // past the handshake.
    let (keep_tx, mut keep_rx) = tokio::sync::mpsc::unbounded_channel();
    let fake = std::sync::Arc::new(fake);
    let server = {
        let fake = fake.clone();
        tokio::spawn(async move {
            loop {
                let (r, w) = fake.accept(true).await;
                if keep_tx.send((r, w)).is_err() {
                    return;
                }
            }
        })
    };
    // Warm up: the runtime's own tasks and the first accept.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let tasks_before = metrics.num_alive_tasks();
    let big = "z".repeat(512 << 10);
    let mut kept = Vec::new();
    for i in 0..200 {
        let c = Client::connect_unix(&fake.path, opts())
            .await
            .expect("connect");
        kept.push(keep_rx.recv().await.expect("server side"));
        // A 512 KiB command: more than the socket buffers hold.
        let stuck = {
            let c = c.clone();
            let big = big.clone();
            tokio::spawn(async move { c.execute(qmp_types::HumanMonitorCommand::new(big)).await })
        };
        tokio::time::sleep(Duration::from_millis(2)).await;
        if i % 2 == 0 {
            // close(): the stuck call fails with the cause.
            c.close();
            drop(c);
            let r = bounded(stuck).await.expect("task");
            assert!(
                matches!(
                    r.as_ref().err().and_then(Error::disconnect),
                    Some(Disconnect::ClosedByClient)
                ),
                "{r:?}"
            );
        } else {
            // The caller gives up (its future, and the handle it holds,
            // dropped), then the last handle goes.
            stuck.abort();
            let _ = stuck.await;
            drop(c);
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while metrics.num_alive_tasks() > tasks_before && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        metrics.num_alive_tasks(),
        tasks_before,
        "connection tasks left behind"
    );
    server.abort();
    // Each client socket was closed: its peer drains what was sent and
    // reads EOF.
    for (i, (mut r, _w)) in kept.into_iter().enumerate() {
        let mut sink = Vec::new();
        let n = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::io::AsyncReadExt::read_to_end(&mut r, &mut sink),
        )
        .await
        .unwrap_or_else(|_| panic!("connection {i} still open"));
        assert!(n.is_ok(), "connection {i}: {n:?}");
    }
}

/// `close()` over `from_stream`: the peer reads EOF at once, though a
/// client handle is still alive.
#[tokio::test]
async fn close_over_any_stream_hangs_up() {
    let (a, b) = UnixStream::pair().expect("pair");
    let (r, mut w) = b.into_split();
    let mut r = BufReader::new(r);
    let server = async {
        w.write_all(format!("{GREETING}\n").as_bytes())
            .await
            .expect("greet");
        let mut line = String::new();
        r.read_line(&mut line).await.expect("caps");
        w.write_all(b"{\"return\": {}}\n").await.expect("reply");
    };
    let (c, ()) = tokio::join!(Client::from_stream(a, opts()), server);
    let c = c.expect("handshake");
    c.close();
    let mut rest = Vec::new();
    let n = bounded(tokio::io::AsyncReadExt::read_to_end(&mut r, &mut rest))
        .await
        .expect("EOF");
    assert_eq!(n, 0, "nothing more was sent");
    let e = c.closed().await;
    assert!(
        matches!(e.disconnect(), Some(Disconnect::ClosedByClient)),
        "{e}"
    );
}

/// A QEMU newer than the bindings: a reply and an event carry a member
/// the bindings don't know.
async fn newer_qemu_peer(fake: &Fake) {
    let (mut r, mut w) = fake.accept(true).await;
    while let Some(cmd) = read_cmd(&mut r).await {
        send(
            &mut w,
            &serde_json::json!({"event": "DEVICE_DELETED",
                "data": {"path": "/machine/peripheral/d0", "device": "d0", "from-qemu-99": 1},
                "timestamp": {"seconds": 1, "microseconds": 2}}),
        )
        .await;
        send(
            &mut w,
            &serde_json::json!({"return": {"running": true, "status": "running",
                "from-qemu-99": {"x": true}}, "id": cmd["id"]}),
        )
        .await;
    }
}

#[tokio::test]
async fn members_a_newer_qemu_sends_are_reported_kept_or_denied() {
    use qmp_client::UnknownMembers;
    // Report (the default): decoded, kept with their values, counted.
    let fake = Fake::new();
    let client = async {
        let c = fake.connect().await;
        let since = c.event_cursor();
        let s = bounded(c.execute(QueryStatus::new()))
            .await
            .expect("decodes");
        assert!(s.running);
        bounded(c.wait_device_deleted("d0", since, BOUND))
            .await
            .expect("the event decodes too");
        let kept = c.unknown_members();
        assert_eq!(kept.len(), 2, "{kept:?}");
        let reply = kept
            .iter()
            .find(|k| k.source == "query-status")
            .expect("reply's");
        assert_eq!(reply.member.type_name, "StatusInfo");
        assert_eq!(reply.member.key, "from-qemu-99");
        assert_eq!(reply.member.value, serde_json::json!({"x": true}));
        let event = kept
            .iter()
            .find(|k| k.source == "DEVICE_DELETED")
            .expect("event's");
        assert_eq!(event.member.type_name, "DeviceDeleted");
        assert_eq!(c.stats().unknown_members, 2);
        c.close();
    };
    tokio::join!(newer_qemu_peer(&fake), client);

    // Deny: the call fails naming the member; the event is malformed.
    let fake = Fake::new();
    let client = async {
        let c = fake
            .connect_with(Options {
                unknown_members: UnknownMembers::Deny,
                ..opts()
            })
            .await;
        let since = c.event_cursor();
        let e = bounded(c.execute(QueryStatus::new()))
            .await
            .expect_err("denied");
        assert!(
            matches!(&e, Error::UnknownMembers { command, detail }
                if command == "query-status" && detail.contains("`from-qemu-99` in StatusInfo")),
            "{e}"
        );
        let e = bounded(c.wait_device_deleted("d0", since, BOUND))
            .await
            .expect_err("malformed");
        assert!(matches!(e, Error::EventDecode { .. }), "{e}");
        assert!(c.unknown_members().is_empty());
        c.close();
    };
    tokio::join!(newer_qemu_peer(&fake), client);

    // Ignore: as if they weren't there.
    let fake = Fake::new();
    let client = async {
        let c = fake
            .connect_with(Options {
                unknown_members: UnknownMembers::Ignore,
                ..opts()
            })
            .await;
        bounded(c.execute(QueryStatus::new()))
            .await
            .expect("decodes");
        assert!(c.unknown_members().is_empty());
        assert_eq!(c.stats().unknown_members, 0);
        c.close();
    };
    tokio::join!(newer_qemu_peer(&fake), client);
}

#[tokio::test]
async fn decode_errors_name_the_full_path_inside_union_branches() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        let reply = serde_json::json!({"return": [
            {"name": "str", "meta-type": "builtin", "json-type": "string"},
            {"name": "1", "meta-type": "enum", "values": 5, "members": []}
        ], "id": cmd["id"]});
        send(&mut w, &reply).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake.connect().await;
        let e = bounded(c.execute(qmp_types::QueryQmpSchema::new()))
            .await
            .expect_err("bad values");
        match &e {
            Error::Decode { what, path, .. } => {
                assert_eq!(what, "query-qmp-schema");
                assert_eq!(path, "[1].values", "{e}");
            }
            other => panic!("{other}"),
        }
    };
    tokio::join!(server, client);
}

#[tokio::test]
async fn an_event_stream_is_a_futures_stream_that_ends_after_closed() {
    use futures_core::Stream;
    fn next(
        s: &mut qmp_client::EventStream,
    ) -> impl std::future::Future<
        Output = Option<qmp_client::Result<std::sync::Arc<qmp_client::EventRecord>>>,
    > + '_ {
        std::future::poll_fn(move |cx| std::pin::Pin::new(&mut *s).poll_next(cx))
    }
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        for i in 0..3 {
            send(
                &mut w,
                &serde_json::json!({"event": "STOP", "timestamp": {"seconds": i, "microseconds": 0}}),
            )
            .await;
        }
        send(&mut w, &serde_json::json!({"return": {}, "id": cmd["id"]})).await;
        // Then hang up.
    };
    let client = async {
        let c = fake.connect().await;
        let mut s = c.events();
        bounded(c.execute(qmp_types::Stop::new()))
            .await
            .expect("stop");
        for i in 0..3 {
            let r = bounded(next(&mut s))
                .await
                .expect("an item")
                .expect("an event");
            assert_eq!(r.timestamp.seconds, i);
            assert!(matches!(r.event, AnyEvent::StopEvent(_)));
        }
        let last = bounded(next(&mut s)).await.expect("the Closed item");
        assert!(matches!(last, Err(Error::Closed(_))), "{last:?}");
        assert!(bounded(next(&mut s)).await.is_none(), "then the end");
        // `next` keeps saying why.
        assert!(matches!(bounded(s.next()).await, Err(Error::Closed(_))));
    };
    tokio::join!(server, client);
}
