//! Faults in the greeting and the framing: no greeting, a bad one,
//! garbled JSON, a message cut short, unknown ids, size limits, an error
//! without an id, and any byte stream.

use super::*;

/// QEMU closes a connection made as the previous client's is torn down,
/// before greeting it (about once in fifty when one client follows
/// another at once): the client dials again.
#[tokio::test]
async fn a_connection_closed_before_the_greeting_is_dialled_again() {
    let fake = Fake::new();
    let server = async {
        for _ in 0..2 {
            let (s, _) = fake.listener.accept().await.expect("accept");
            drop(s);
        }
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        assert_eq!(cmd["execute"], "query-version");
        send(&mut w, &serde_json::json!({"return": {"qemu": {"major": 10, "minor": 0, "micro": 2}, "package": "third"}, "id": cmd["id"]})).await;
        (r, w)
    };
    let client = async {
        let c = Client::connect_unix(&fake.path, opts())
            .await
            .expect("the third connection greets");
        let v = c.execute(QueryVersion::new()).await.expect("answered");
        assert_eq!(v.package, "third");
    };
    let (_peer, ()) = bounded(async { tokio::join!(server, client) }).await;

    // A peer that always hangs up: three more dials, then the error.
    let fake = Fake::new();
    let dials = std::sync::atomic::AtomicUsize::new(0);
    let server = async {
        loop {
            let (s, _) = fake.listener.accept().await.expect("accept");
            dials.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            drop(s);
        }
    };
    let client = Client::connect_unix(&fake.path, opts());
    let e = tokio::select! {
        r = bounded(client) => r.expect_err("always closed"),
        () = server => unreachable!("the server loops"),
    };
    assert!(e.is_socket_closed(), "{e}");
    assert_eq!(dials.load(std::sync::atomic::Ordering::Relaxed), 4);
}

#[tokio::test]
async fn no_greeting_times_out() {
    let fake = Fake::new();
    let server = async {
        // Silent until the client has given up.
        let (s, _) = fake.listener.accept().await.expect("accept");
        fake.until_finished().await;
        drop(s);
    };
    let client = async {
        let r = tokio::time::timeout(BOUND, Client::connect_unix(&fake.path, opts())).await;
        let e = r.expect("bounded").expect_err("no greeting");
        assert!(
            matches!(e, Error::Timeout { ref what, .. } if what == "the QMP greeting"),
            "{e}"
        );
    };
    together(&fake, server, client).await;
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
        fake.until_finished().await;
    };
    let (r, ()) = tokio::join!(
        async {
            let r = Client::connect_unix(&fake.path, opts()).await;
            fake.finished.notify_one();
            r
        },
        server
    );
    let e = r.expect_err("bad greeting");
    assert!(
        matches!(e, Error::Protocol(ref m) if m.contains("bad greeting")),
        "{e}"
    );
}

/// Sends `greeting` (and a newline) to the next client, answers
/// `qmp_capabilities`.
async fn greet_with(fake: &Fake, greeting: &[u8]) {
    let (s, _) = fake.listener.accept().await.expect("accept");
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    // The client may hang up first (a refused greeting): writes may fail.
    if w.write_all(greeting).await.is_err() || w.write_all(b"\n").await.is_err() {
        return;
    }
    if read_cmd(&mut r).await.is_some() {
        let _ = w.write_all(b"{\"return\": {}}\n").await;
    }
}

#[tokio::test]
async fn greetings_out_of_shape_are_refused_or_trimmed() {
    // Capabilities that aren't strings are skipped, nested or not.
    let fake = Fake::new();
    let greeting = br#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": ["oob", {"a": [1, {"b": [[], null]}]}, 5, true, null, [["x"]], "y"]}}"#;
    let (r, ()) = tokio::join!(
        bounded(Client::connect_unix(&fake.path, opts())),
        greet_with(&fake, greeting)
    );
    let c = r.expect("connects");
    assert_eq!(c.greeting().capabilities, ["oob", "y"]);
    c.close();
    // Versions out of range: refused, named.
    for (major, shown) in [
        ("-1", "major version -1"),
        ("99999999999", "major version 99999999999"),
    ] {
        let fake = Fake::new();
        let greeting = format!(
            r#"{{"QMP": {{"version": {{"qemu": {{"micro": 0, "minor": 0, "major": {major}}}, "package": ""}}, "capabilities": []}}}}"#
        );
        let (r, ()) = tokio::join!(
            bounded(Client::connect_unix(&fake.path, opts())),
            greet_with(&fake, greeting.as_bytes())
        );
        let e = r.expect_err("out of range");
        assert!(
            matches!(&e, Error::Protocol(m) if m.contains(shown) && m.contains("out of range")),
            "{e}"
        );
    }
    // A greeting of megabytes: refused once 64 KiB are read, not decoded.
    let fake = Fake::new();
    let mut huge = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": [".to_vec();
    for _ in 0..200_000 {
        huge.extend_from_slice(b"{\"a\":[1,2,3]},");
    }
    huge.extend_from_slice(b"\"oob\"]}}");
    let (r, ()) = tokio::join!(
        bounded(Client::connect_unix(&fake.path, opts())),
        greet_with(&fake, &huge)
    );
    let e = r.expect_err("too large");
    assert!(
        matches!(&e, Error::Protocol(m) if m.contains("bad greeting: over 65536 bytes")),
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
async fn ten_megabyte_message_and_the_size_limit() {
    let fake = Fake::new();
    let big = "x".repeat(10 << 20);
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        send(&mut w, &serde_json::json!({"return": big, "id": cmd["id"]})).await;
        fake.until_finished().await;
    };
    let client = async {
        let c = fake.connect().await;
        let v = tokio::time::timeout(BOUND, c.execute_raw("x-big", serde_json::json!({})))
            .await
            .expect("bounded")
            .expect("10 MB reply");
        assert_eq!(v.as_str().map(str::len), Some(10 << 20));
    };
    together(&fake, server, client).await;
    // Over the limit: a protocol error, not unbounded memory.
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        read_cmd(&mut r).await.expect("a command");
        let _ = w.write_all(&vec![b'a'; 2 << 20]).await;
        fake.until_finished().await;
    };
    let client = async {
        let c = fake.connect_with(opts().with_max_message(1 << 20)).await;
        let e = bounded(c.execute(QueryStatus::new()))
            .await
            .expect_err("too big");
        assert!(e.to_string().contains("message over 1048576 bytes"), "{e}");
    };
    together(&fake, server, client).await;
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

/// In-band commands go without an id and QMP answers them in order: an
/// error without an id (QEMU failing to parse what it read) is the oldest
/// in-band call's, and the connection goes on.
#[tokio::test]
async fn an_error_without_id_answers_the_oldest_in_band_call() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let first = read_cmd(&mut r).await.expect("a command");
        let second = read_cmd(&mut r).await.expect("a command");
        assert!(first.get("id").is_none() && second.get("id").is_none());
        w.write_all(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, duplicate key\"}}\n")
            .await
            .expect("write");
        send(
            &mut w,
            &serde_json::json!({"return": {"running": true, "status": "running"}}),
        )
        .await;
        fake.until_finished().await;
    };
    let client = async {
        let c = fake.connect().await;
        // The first handed to the connection (polled once) before the
        // second: written in that order.
        let first = c.execute(QueryStatus::new());
        tokio::pin!(first);
        let early =
            std::future::poll_fn(|cx| std::task::Poll::Ready(first.as_mut().poll(cx))).await;
        let second = bounded(c.execute(QueryStatus::new()));
        let (a, b) = match early {
            std::task::Poll::Ready(a) => (a, second.await),
            std::task::Poll::Pending => tokio::join!(bounded(first), second),
        };
        let e = a.expect_err("QEMU's parse error");
        assert!(
            matches!(&e, qmp_client::Error::Qmp { desc, .. } if desc.contains("duplicate key")),
            "{e}"
        );
        assert!(b.expect("the second call's reply").running);
        assert!(!c.is_closed());
    };
    together(&fake, server, client).await;
}

/// With `Options::in_band_ids`, every command has an id: an error without
/// one cannot be matched with any call, and ends the connection with its
/// text.
#[tokio::test]
async fn an_error_without_id_ends_the_connection_when_commands_have_ids() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        assert_eq!(cmd["id"], 0, "{cmd}");
        w.write_all(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, too deeply nested\"}}\n")
            .await
            .expect("write");
        fake.until_finished().await;
    };
    let client = async {
        let c = fake.connect_with(opts().with_in_band_ids(true)).await;
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
    together(&fake, server, client).await;
}
