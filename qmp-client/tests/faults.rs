//! Faults QEMU won't produce, from a scripted fake server: no greeting, a
//! bad greeting, garbled JSON, a message cut mid-line, a reply with an
//! unknown id, a 10 MB message, an event flood, a disconnect with calls
//! pending, a reply that doesn't decode, error classes QEMU here can't
//! send. Each must end in a clear error or correct handling: no panic, no
//! hang, no call left waiting.

use std::time::Duration;

use qmp_client::{Client, Error, Options};
use qmp_types::{QueryStatus, QueryVersion, StopEvent};
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
        Client::connect_unix(&self.path, opts())
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
        let reply =
            serde_json::json!({"return": {"running": true, "status": "running"}, "id": cmd["id"]});
        w.write_all(format!("{reply}\n").as_bytes())
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let client = async {
        let c = fake.connect().await;
        let s = bounded(c.execute(QueryStatus::new())).await.expect("reply");
        assert!(s.running, "the right reply reached the caller");
        assert_eq!(c.stray_replies(), 2);
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
        let reply = serde_json::json!({"return": big, "id": cmd["id"]});
        w.write_all(format!("{reply}\n").as_bytes())
            .await
            .expect("write");
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
        let c = Client::connect_unix(
            &fake.path,
            Options {
                max_message: 1 << 20,
                ..opts()
            },
        )
        .await
        .expect("connect");
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
        let counter = tokio::spawn(async move {
            let mut n = 0usize;
            while n < EVENTS {
                match fast.next().await {
                    Ok(_) => n += 1,
                    Err(Error::EventsLost(k)) => n += usize::try_from(k).unwrap_or(0),
                    Err(e) => panic!("{e}"),
                }
            }
            n
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
        for _ in 0..10 {
            read_cmd(&mut r).await.expect("a command");
        }
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
        let reply =
            serde_json::json!({"return": {"running": true, "status": "running"}, "id": cmd["id"]});
        w.write_all(format!("{reply}\n").as_bytes())
            .await
            .expect("reply");
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
            let reply =
                serde_json::json!({"error": {"class": class, "desc": "no"}, "id": cmd["id"]});
            w.write_all(format!("{reply}\n").as_bytes())
                .await
                .expect("write");
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
        assert_eq!(classes[0], qmp_client::ErrorClass::KvmMissingCap);
        assert_eq!(classes[0].as_str(), "KVMMissingCap");
        assert_eq!(
            classes[1],
            qmp_client::ErrorClass::Other("SomeFutureClass".into())
        );
    };
    tokio::join!(server, client);
}
