//! Faults under load and at the end: an event flood, a disconnect with
//! calls pending, a peer that stops reading, the history's bounds, close
//! and drop against a deaf peer, event streams after the end.

use super::*;

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
            !c.events_of::<StopEvent>(qmp_client::Since::Cursor(0))
                .found()
                .is_empty()
        );
        c.close();
    };
    tokio::join!(server, client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_fails_every_pending_call_at_once() {
    let fake = Fake::new();
    let (handed_tx, handed_rx) = tokio::sync::oneshot::channel();
    let server = async {
        let (mut r, w) = fake.accept(true).await;
        // Seven are written (the in-flight window); three wait in the
        // client's queue. All ten must fail.
        for _ in 0..7 {
            read_cmd(&mut r).await.expect("a command");
        }
        // Every call handed to the connection.
        handed_rx.await.expect("the calls are handed over");
        drop(w);
        drop(r);
    };
    let client = async {
        let c = fake.connect().await;
        let mut calls = Vec::new();
        for _ in 0..10 {
            let c = c.clone();
            calls.push(
                tests::spawn_polled(async move { c.execute(QueryStatus::new()).await }).await,
            );
        }
        let _ = handed_tx.send(());
        // The first to learn of the end within BOUND; the others with
        // it, in one go (within 200 ms of the first, not each within
        // its own bound).
        let mut calls = calls.into_iter();
        let first = calls.next().expect("ten calls");
        let r = tokio::time::timeout(BOUND, first)
            .await
            .expect("bounded")
            .expect("task");
        assert!(r.expect_err("disconnected").is_socket_closed());
        let together = tokio::time::Instant::now() + Duration::from_millis(200);
        for call in calls {
            let r = tokio::time::timeout_at(together, call)
                .await
                .expect("failed with the first")
                .expect("task");
            assert!(r.expect_err("disconnected").is_socket_closed());
        }
    };
    tokio::join!(server, client);
}

/// A peer that stops reading: the queue is bounded (callers wait for
/// room, memory stays flat), and when the peer reads again, no command
/// whose caller had given up arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_gets_no_abandoned_command() {
    let fake = Fake::new();
    let (tx_ids, rx_ids) = tokio::sync::oneshot::channel::<Vec<String>>();
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
                // In-band commands go without an id (replies by order).
                assert!(cmd.get("id").is_none(), "{cmd}");
                ids.push(cmd["execute"].to_string());
                let reply = serde_json::json!({"return": {"qemu": {"major": 10, "minor": 0, "micro": 2}, "package": ""}});
                if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
            let _ = tx_ids.send(ids);
        }
    };
    let client = async {
        let c = fake.connect_with(opts().with_queue(16)).await;
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
        // The books: every call that gave up is either never sent
        // (abandoned, also those that timed out waiting for room in the
        // queue) or answered late.
        assert_eq!(st2.abandoned, 300 - st.sent, "{st2:?}");
        assert_eq!(st2.late_replies, st.sent, "{st2:?}");
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

/// Sends 40 `X_BIG` events of about 256 KiB each (`data.i` 0 to 39).
async fn big_events(w: &mut tokio::net::unix::OwnedWriteHalf) {
    let pad = "y".repeat(256 << 10);
    for i in 0..40 {
        let ev = serde_json::json!({"event": "X_BIG", "data": {"i": i, "pad": pad},
            "timestamp": {"seconds": 1, "microseconds": i}});
        send(w, &ev).await;
    }
}

#[tokio::test]
async fn the_history_is_bounded_by_bytes() {
    let fake = Fake::new();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        // 40 events of about 256 KiB each (10 MiB) against a 1 MiB bound.
        big_events(&mut w).await;
        send(&mut w, &serde_json::json!({"return": {}, "id": cmd["id"]})).await;
        // Open until the client has looked.
        let _ = done_rx.await;
    };
    let client = async {
        let c = fake.connect_with(opts().with_history_bytes(1 << 20)).await;
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
        let _ = done_tx.send(());
    };
    tokio::join!(server, client);
}

/// An event stream nobody reads holds at most its bounds: with a 1 MiB
/// budget, 40 events of 256 KiB and then an array of 100,000 integers
/// (which counts for over 1 MiB alone, as sizes count decoded memory), it
/// keeps only that newest event and reports the 40 before it as lost.
#[tokio::test]
async fn an_idle_subscriber_is_bounded_by_bytes_and_sizes_reflect_memory() {
    let fake = Fake::new();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        big_events(&mut w).await;
        let zeros = vec![0; 100_000];
        let ev = serde_json::json!({"event": "X_INTS", "data": {"v": zeros},
            "timestamp": {"seconds": 2, "microseconds": 0}});
        send(&mut w, &ev).await;
        send(&mut w, &serde_json::json!({"return": {}, "id": cmd["id"]})).await;
        // Open until the client has looked.
        let _ = done_rx.await;
    };
    let client = async {
        let c = fake
            .connect_with(
                opts()
                    .with_subscriber_bytes(1 << 20)
                    .with_history_bytes(64 << 20),
            )
            .await;
        let mut idle = c.events();
        bounded(c.execute_raw("x-flush", serde_json::json!({})))
            .await
            .expect("reply");
        // Kept: the newest within 1 MiB. The 100,000 integers alone count
        // for over 1 MiB, so they are kept alone (the newest always is).
        let first = bounded(idle.next()).await;
        assert!(
            matches!(first, Err(qmp_client::Error::EventsLost(40))),
            "{first:?}"
        );
        let ints = bounded(idle.next()).await.expect("the newest");
        assert_eq!(ints.event.name(), "X_INTS");
        assert!(
            ints.size > 10 * ints.wire_size,
            "{} estimated for {} on the wire",
            ints.size,
            ints.wire_size
        );
        // A string-heavy event counts about its bytes.
        let h = c.history(qmp_client::Since::Cursor(0));
        let big = &h[0];
        assert_eq!(big.event.name(), "X_BIG");
        assert!(
            big.size < 2 * big.wire_size,
            "{} for {}",
            big.size,
            big.wire_size
        );
        let _ = done_tx.send(());
        c.close();
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
    // The server task counts from its spawn.
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
            tests::spawn_polled(
                async move { c.execute(qmp_types::HumanMonitorCommand::new(big)).await },
            )
            .await
        };
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
    assert_eq!(
        tests::tasks_settle(&metrics, tasks_before).await,
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
