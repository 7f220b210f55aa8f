//! The connection itself against real QEMU: many tasks on one
//! connection, calls that give up, how a connection ends, QEMU's parser
//! limits, error classes, OOB, fd passing and the version check.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_and_typed_commands() {
    let qsd = storage_daemon().await;
    let c = connect(&qsd, Options::default()).await;
    let g = c.greeting();
    assert_eq!(
        (
            g.version.qemu.major,
            g.version.qemu.minor,
            g.version.qemu.micro
        ),
        (10, 0, 2)
    );
    assert!(g.capabilities.iter().any(|c| c == "oob"));
    assert!(g.oob, "OOB is negotiated by default");
    let v = c.execute(QueryVersion::new()).await.expect("query-version");
    assert_eq!(v.qemu.major, 10);
    c.execute(null_node("n0")).await.expect("blockdev-add");
    let nodes = c
        .execute(QueryNamedBlockNodes::new().with_flat(true))
        .await
        .expect("query");
    assert!(nodes.iter().any(|n| n.node_name.as_deref() == Some("n0")));
    // execute_raw for anything.
    let raw = c
        .execute_raw("query-block-exports", serde_json::json!({}))
        .await
        .expect("raw");
    assert_eq!(raw, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_share_one_connection() {
    let qsd = storage_daemon().await;
    let c = connect(&qsd, Options::default()).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..20 {
                // An error whose text names this task's node: it must come
                // back to this task and no other.
                let node = format!("node-{i}-{round}");
                match c.execute(BlockDirtyBitmapAdd::new(node.clone(), "b")).await {
                    Err(Error::Qmp {
                        class,
                        desc,
                        command,
                    }) => {
                        assert_eq!(class, ErrorClass::GenericError);
                        assert_eq!(command, "block-dirty-bitmap-add");
                        assert!(desc.contains(&node), "{desc} is not about {node}");
                    }
                    other => panic!("unexpected {other:?}"),
                }
                let v = c.execute(QueryVersion::new()).await.expect("query-version");
                assert_eq!(v.qemu.micro, 2);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(c.stats().stray_replies, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_give_up_are_never_sent_late_and_never_desynchronize() {
    let qsd = storage_daemon().await;
    let c = connect(&qsd, Options::default()).await;
    c.execute(null_node("n0")).await.expect("blockdev-add");
    // Deterministic: QEMU's main loop is stalled and the in-flight window
    // is full, so calls that give up now were never written, and must
    // never be.
    let before = c.stats();
    let (stalled, peer) = stall(&c, qsd.dir()).await;
    let window: Vec<_> = (0..6)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.execute(QueryVersion::new()).await })
        })
        .collect();
    let deadline = std::time::Instant::now() + T;
    while c.stats().sent < before.sent + 7 {
        assert!(std::time::Instant::now() < deadline, "window not filled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..50 {
        let r = c
            .execute_timeout(QueryNamedBlockNodes::new(), Duration::from_millis(20))
            .await;
        assert!(r.expect_err("gave up").is_timeout());
    }
    drop(peer);
    let _ = stalled.await.expect("task");
    for w in window {
        w.await.expect("task").expect("answered after the stall");
    }
    c.execute(QueryVersion::new()).await.expect("sync");
    let after = c.stats();
    assert_eq!(after.abandoned - before.abandoned, 50, "{after:?}");
    assert_eq!(
        after.sent - before.sent,
        1 + 6 + 1,
        "the stall, the window and the sync call; none of the 50: {after:?}"
    );
    // Racy: a zero timeout may or may not beat the write. Either way the
    // books balance and nobody gets another call's reply.
    let before = c.stats();
    let (mut ok, mut timed_out) = (0u64, 0u64);
    for _ in 0..50 {
        match c
            .execute_timeout(QueryNamedBlockNodes::new(), Duration::ZERO)
            .await
        {
            Ok(nodes) => {
                assert_eq!(nodes[0].node_name.as_deref(), Some("n0"));
                ok += 1;
            }
            Err(e) => {
                assert!(e.is_timeout(), "{e}");
                timed_out += 1;
            }
        }
    }
    c.execute(QueryVersion::new()).await.expect("sync");
    let after = c.stats();
    let (sent, late, abandoned) = (
        after.sent - before.sent,
        after.late_replies - before.late_replies,
        after.abandoned - before.abandoned,
    );
    eprintln!(
        "zero timeouts: {ok} answered, {timed_out} gave up: {abandoned} never sent, {late} answered late"
    );
    assert_eq!(abandoned + late, timed_out, "{after:?}");
    assert_eq!(sent, ok + late + 1, "{after:?}");
    // Dropped mid-flight: while QEMU is stalled, five calls are polled
    // until their commands are on the socket, then dropped. QEMU still
    // answers them; the replies are recognised as late and no later
    // caller gets one.
    let before = c.stats();
    let (stalled, peer) = stall(&c, qsd.dir()).await;
    let mut futs: Vec<_> = (0..5)
        .map(|_| Box::pin(c.execute(QueryBlockJobs::new())))
        .collect();
    let deadline = std::time::Instant::now() + T;
    while c.stats().sent < before.sent + 6 {
        assert!(std::time::Instant::now() < deadline, "never written");
        for f in &mut futs {
            tokio::select! {
                biased;
                r = f => panic!("answered during the stall: {r:?}"),
                () = std::future::ready(()) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(futs);
    drop(peer);
    let _ = stalled.await.expect("task");
    let v = c.execute(QueryVersion::new()).await.expect("own reply");
    assert_eq!(v.qemu.major, 10);
    let after = c.stats();
    // In-band replies come in order: the late ones came first.
    assert_eq!(after.late_replies - before.late_replies, 5, "{after:?}");
    assert_eq!(after.sent - before.sent, 7, "{after:?}");
    assert_eq!(c.stats().stray_replies, 0);
}

/// Holds QEMU's main loop: `blockdev-add` of an NBD client whose server
/// (this test) accepts and never speaks. Dropping the returned peer
/// releases it. In-band commands sent meanwhile stay pending.
async fn stall(
    c: &Client,
    dir: &std::path::Path,
) -> (
    tokio::task::JoinHandle<qmp_client::Result<serde_json::Value>>,
    std::os::unix::net::UnixStream,
) {
    let _ = std::fs::remove_file(dir.join("nbd-stall.sock"));
    let path = dir.join("nbd-stall.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let task = {
        let c = c.clone();
        let path = path.to_string_lossy().into_owned();
        tokio::spawn(async move {
            c.execute_raw(
                "blockdev-add",
                serde_json::json!({"driver": "nbd", "node-name": "stall",
                    "server": {"type": "unix", "path": path}}),
            )
            .await
        })
    };
    let peer = tokio::task::spawn_blocking(move || listener.accept().map(|(s, _)| s))
        .await
        .expect("task")
        .expect("QEMU connects");
    (task, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_reaches_every_waiter_within_a_second() {
    // Three ways to end, each with a client handle alive: QEMU killed,
    // QEMU quitting (it hangs up), close(). The event stream, a typed
    // wait and ten pending calls must all end within 1 s, with the cause.
    for how in ["kill", "quit", "close"] {
        let qemu = system(&[]).await;
        let c = connect(&qemu, Options::default()).await;
        let mut events = c.events();
        let waiter = {
            let c = c.clone();
            let since = c.event_cursor();
            tokio::spawn(async move {
                c.events_of::<DeviceDeleted>(since)
                    .wait(Duration::from_secs(60))
                    .await
            })
        };
        let stream = tokio::spawn(async move {
            loop {
                if let Err(e) = events.next().await {
                    return e;
                }
            }
        });
        let (stalled, peer) = stall(&c, qemu.dir()).await;
        let quit = match how {
            "quit" => {
                let c = c.clone();
                Some(tests::spawn_polled(async move { c.execute(Quit::new()).await }).await)
            }
            _ => None,
        };
        let mut calls = Vec::new();
        for _ in 0..10 {
            let c = c.clone();
            calls.push(
                tests::spawn_polled(async move { c.execute(QueryStatus::new()).await }).await,
            );
        }
        assert!(calls.iter().all(|t| !t.is_finished()), "{how}: not pending");
        let started = std::time::Instant::now();
        let mut qemu = Some(qemu);
        let mut peer = Some(peer);
        match how {
            "kill" => drop(qemu.take()),
            // QEMU finishes the stalled command, runs `quit`, hangs up.
            "quit" => drop(peer.take()),
            _ => c.close(),
        }
        // One deadline for everyone: all are told within a second of
        // the end, not each within a second of the one before.
        let deadline = tokio::time::Instant::from_std(started) + Duration::from_secs(1);
        let e = tokio::time::timeout_at(deadline, stream)
            .await
            .unwrap_or_else(|_| panic!("{how}: event stream still pending"))
            .expect("task");
        assert!(e.is_socket_closed(), "{how}: {e}");
        let w = tokio::time::timeout_at(deadline, waiter)
            .await
            .unwrap_or_else(|_| panic!("{how}: wait_for still pending"))
            .expect("task")
            .expect_err("no DEVICE_DELETED");
        assert!(w.is_socket_closed(), "{how}: {w}");
        for call in calls {
            let r = tokio::time::timeout_at(deadline, call)
                .await
                .unwrap_or_else(|_| panic!("{how}: a call still pending"))
                .expect("task");
            assert!(r.expect_err("ended").is_socket_closed(), "{how}");
        }
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(1), "{how}: took {elapsed:?}");
        let r = tokio::time::timeout(Duration::from_secs(1), stalled)
            .await
            .expect("bounded")
            .expect("task");
        if how != "quit" {
            assert!(r.expect_err("ended").is_socket_closed(), "{how}");
        }
        if let Some(q) = quit {
            let r = q.await.expect("task");
            assert!(
                r.is_ok() || r.as_ref().is_err_and(Error::is_socket_closed),
                "{r:?}"
            );
        }
        let cause = c.closed().await;
        match (how, cause.disconnect()) {
            ("close", Some(Disconnect::ClosedByClient)) => {}
            ("quit" | "kill", Some(Disconnect::PeerClosed | Disconnect::Io { .. })) => {}
            other => panic!("unexpected cause {other:?}"),
        }
        eprintln!("{how}: everyone told in {elapsed:?}: {cause}");
        // Later calls fail at once, with the same cause.
        let e = c.execute(QueryStatus::new()).await.expect_err("closed");
        assert_eq!(e.to_string(), cause.to_string());
        if let Some(Disconnect::Io { error, .. }) = cause.disconnect() {
            // The io::Error is reachable through source().
            let src = std::error::Error::source(&cause).expect("a source");
            assert_eq!(
                src.downcast_ref::<std::io::Error>()
                    .map(std::io::Error::kind),
                Some(error.kind())
            );
        }
        drop((qemu, peer));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_stream_close_and_drop_leak_nothing_over_200_cycles() {
    let qsd = storage_daemon().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    let opts = Options::default().with_connect_timeout(Duration::from_secs(2));
    for i in 0..200 {
        // qemu-storage-daemon serves one client at a time: the previous
        // connection must really be gone for this greeting to come. A
        // connection made as the previous one is torn down is sometimes
        // closed before its greeting (a QEMU race, about once in fifty;
        // `connect_unix` dials again, `from_stream` can't): dial again
        // here, at most three times.
        let mut attempt = 0;
        let c = loop {
            let s = tokio::net::UnixStream::connect(qsd.socket())
                .await
                .expect("connect");
            match Client::from_stream(s, opts.clone()).await {
                Err(Error::Closed(Disconnect::PeerClosed)) if attempt < 3 => attempt += 1,
                r => break r.unwrap_or_else(|e| panic!("cycle {i}: {e}")),
            }
        };
        let mut events = c.events();
        c.execute(QueryVersion::new()).await.expect("query-version");
        if i % 2 == 0 {
            c.close();
        }
        drop(c);
        // The stream learns the end either way: close(), or the last
        // handle dropped.
        let e = tokio::time::timeout(Duration::from_secs(1), events.next())
            .await
            .expect("stream ended")
            .expect_err("no events");
        assert!(
            matches!(
                e.disconnect(),
                Some(Disconnect::ClosedByClient | Disconnect::HandlesDropped)
            ),
            "{e}"
        );
    }
    // Give the tasks their last poll.
    assert_eq!(
        tests::tasks_settle(&metrics, tasks_before).await,
        tasks_before,
        "tasks left behind"
    );
    // (That each socket was closed shows in the daemon, which serves one
    // client at a time, greeting the next one.)
}

#[test]
fn commands_over_qemus_parser_limits_are_refused_before_sending() {
    // 2,000-deep JSON values need a deep stack to build, encode and drop.
    let t = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(parser_limits())
        })
        .expect("thread");
    t.join().expect("test thread");
}

async fn parser_limits() {
    let qsd = storage_daemon().await;
    let c = connect(&qsd, Options::default()).await;
    let nested = |depth: usize| {
        let mut v = serde_json::json!(1);
        for _ in 0..depth {
            v = serde_json::json!([v]);
        }
        v
    };
    let e = tokio::time::timeout(
        T,
        c.execute_raw("query-version", serde_json::json!({"x": nested(2000)})),
    )
    .await
    .expect("no hang")
    .expect_err("refused");
    assert!(matches!(e, Error::Unsendable { .. }), "{e}");
    assert!(e.to_string().contains("nested 2002 levels"), "{e}");
    // Just under QEMU's limit goes through, and QEMU answers it by id.
    let e = c
        .execute_raw("query-version", serde_json::json!({"x": nested(1020)}))
        .await
        .expect_err("QEMU refuses the argument");
    assert_eq!(e.class(), Some(&ErrorClass::GenericError), "{e}");
    let st = c.stats();
    assert_eq!((st.stray_replies, st.sent), (0, 1), "{st:?}");
    assert!(!c.is_closed());
    c.execute(QueryVersion::new()).await.expect("still fine");
    // A noncharacter, which QEMU's parser refuses: refused before sending.
    let e = c
        .execute(BlockJobCancel::new("job\u{FFFE}"))
        .await
        .expect_err("refused before sending");
    assert!(
        matches!(e, Error::Unsendable { .. }) && e.to_string().contains("U+FFFE"),
        "{e}"
    );
    // Not even sent: the connection is as it was.
    c.execute(QueryVersion::new()).await.expect("still fine");
    assert_eq!(c.stats().stray_replies, 0);
    assert!(!c.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oob_overtakes_a_full_in_band_queue_with_64_callers() {
    let qemu = system(&[]).await;
    let c = connect(&qemu, Options::default()).await;
    assert!(c.greeting().oob);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                if i % 8 == 0 {
                    let y = tokio::time::timeout(T, c.execute_oob(QueryYank::new()))
                        .await
                        .expect("an OOB call is never stuck")
                        .expect("query-yank");
                    assert!(!y.is_empty());
                } else {
                    let s = tokio::time::timeout(T, c.execute(QueryStatus::new()))
                        .await
                        .expect("no stall")
                        .expect("query-status");
                    assert!(s.running);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let st = c.stats();
    assert_eq!(st.sent, 64 * 25, "{st:?}");
    assert_eq!(st.replies, 64 * 25, "{st:?}");
    assert_eq!(st.stray_replies, 0, "{st:?}");
    // No COMMAND_DROPPED (it doesn't exist in 10.0's schema, and nothing
    // was dropped): every event seen is one the schema knows.
    assert!(
        c.history(Since::Cursor(0))
            .iter()
            .all(|r| !matches!(r.event, AnyEvent::Unknown { .. })),
    );
    // While QEMU's main loop is stalled by an in-band command, OOB still
    // answers at once.
    let (stalled, peer) = stall(&c, qemu.dir()).await;
    let mut queued = Vec::new();
    for _ in 0..20 {
        let c = c.clone();
        queued.push(tests::spawn_polled(async move { c.execute(QueryStatus::new()).await }).await);
    }
    let y = tokio::time::timeout(Duration::from_secs(2), c.execute_oob(QueryYank::new()))
        .await
        .expect("OOB answered while 20 in-band calls wait behind a stall")
        .expect("query-yank");
    assert!(!y.is_empty());
    assert!(queued.iter().all(|t| !t.is_finished()), "the stall held");
    drop(peer);
    for q in queued {
        q.await.expect("task").expect("answered after the stall");
    }
    let _ = stalled.await.expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_classes() {
    let qemu = system(&[]).await;
    let c = connect(&qemu, Options::default()).await;
    let e = c
        .execute_raw("no-such-command", serde_json::json!({}))
        .await
        .expect_err("unknown");
    assert_eq!(e.class(), Some(&ErrorClass::CommandNotFound));
    let e = c
        .execute(DeviceDel::new("nope"))
        .await
        .expect_err("no device");
    assert_eq!(e.class(), Some(&ErrorClass::DeviceNotFound));
    let e = c
        .execute(BlockJobCancel::new("nojob"))
        .await
        .expect_err("no job");
    assert_eq!(e.class(), Some(&ErrorClass::DeviceNotActive));
    let e = c
        .execute(QomGet::new("/machine", "nope"))
        .await
        .expect_err("no property");
    assert_eq!(e.class(), Some(&ErrorClass::GenericError));
    assert!(
        e.to_string().starts_with("qom-get: GenericError: Property"),
        "{e}"
    );
    // A reply that doesn't fit the type names the bad member.
    let e = c
        .execute_raw("query-status", serde_json::json!({"foo": 1}))
        .await
        .expect_err("bad args");
    assert_eq!(e.class(), Some(&ErrorClass::GenericError));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_execution() {
    let qemu = system(&[]).await;
    let plain = connect(&qemu, Options::default().with_oob(false)).await;
    assert!(!plain.greeting().oob);
    let e = plain
        .execute_oob(QueryYank::new())
        .await
        .expect_err("not negotiated");
    assert!(matches!(e, Error::OobNotAvailable { .. }), "{e}");
    drop(plain);
    let qemu2 = system(&[]).await;
    let c = connect(&qemu2, Options::default()).await;
    assert!(c.greeting().oob);
    let yank = c
        .execute_oob(QueryYank::new())
        .await
        .expect("query-yank oob");
    assert!(!yank.is_empty());
    let e = c
        .execute_oob(QueryStatus::new())
        .await
        .expect_err("not allow-oob");
    assert!(matches!(
        e,
        Error::OobNotAvailable {
            reason: "the command doesn't allow it",
            ..
        }
    ));
    // In-band still works alongside.
    c.execute(QueryStatus::new()).await.expect("in-band");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_descriptors_ride_with_commands() {
    let qemu = system(&[]).await;
    let c = connect(&qemu, Options::default()).await;
    let e = c
        .execute(Getfd::new("myfd"))
        .await
        .expect_err("no fd attached");
    assert!(
        e.to_string()
            .contains("No file descriptor supplied via SCM_RIGHTS"),
        "{e}"
    );
    let (r, _w) = nix::unistd::pipe().expect("pipe");
    c.execute_with_fds(Getfd::new("myfd"), vec![r])
        .await
        .expect("getfd");
    c.execute(Closefd::new("myfd")).await.expect("closefd");
    // Borrowed: the caller keeps its file.
    let f = std::fs::File::open("/dev/null").expect("open");
    let info = c
        .execute_with_fds(AddFd::new().with_opaque("ro copy"), [&f])
        .await
        .expect("add-fd");
    assert!(f.metadata().is_ok(), "still ours");
    let sets = c.execute(QueryFdsets::new()).await.expect("query-fdsets");
    let set = sets
        .iter()
        .find(|s| s.fdset_id == info.fdset_id)
        .expect("listed");
    assert_eq!(set.fds[0].opaque.as_deref(), Some("ro copy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_arguments_the_connected_qemu_lacks_are_not_sent_by_its_schema() {
    let qemu = system_of(Which::Qemu72, &["-S"]).await;
    let c = connect(&qemu, Options::default()).await;
    let e = c.execute(QueryCryptodev::new()).await.expect_err("refused");
    assert!(
        matches!(&e, Error::NotInSchema { qemu, command, .. } if qemu.starts_with("QEMU 7.2.") && command == "query-cryptodev"),
        "{e}"
    );
    assert!(
        e.to_string().starts_with("not sent: QEMU 7.2.")
            && e.to_string()
                .ends_with("(connected) has no command `query-cryptodev`"),
        "{e}"
    );
    let e = c
        .execute(QueryMachines::new().with_compat_props(true))
        .await
        .expect_err("refused");
    assert!(
        e.to_string()
            .ends_with("has no argument `compat-props` of `query-machines`"),
        "{e}"
    );
    c.execute(QueryMachines::new())
        .await
        .expect("query-machines");
    // The schema's fetch and query-machines: the refused calls were never
    // written.
    assert_eq!(c.stats().sent, 2);
    assert!(c.has::<QueryStatus>().await);
    assert!(!c.has::<QueryCryptodev>().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_arguments_the_connected_qemu_lacks_are_not_sent_by_version_tables() {
    let qemu = system_of(Which::Qemu72, &["-S"]).await;
    // Without its schema the version tables decide.
    let tables = || Options::default().with_schema(qmp_client::SchemaPolicy::Off);
    let c = connect(&qemu, tables()).await;
    assert_eq!(c.qemu_version().series(), (7, 2));
    // query-cryptodev came in 8.0.
    let e = c.execute(QueryCryptodev::new()).await.expect_err("refused");
    match &e {
        Error::Unavailable(u) => {
            assert_eq!(u.needs, "needs QEMU ≥ 8.0");
            assert_eq!(u.known_in, ["10.0.2", "10.2.2"]);
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .starts_with("not sent: command `query-cryptodev` needs QEMU ≥ 8.0, connected to 7.2."),
        "{e}"
    );
    // An argument 7.2 lacks; without it the same command works.
    let e = c
        .execute(QueryMachines::new().with_compat_props(true))
        .await
        .expect_err("refused");
    assert!(
        e.to_string()
            .contains("argument `compat-props` of `query-machines`"),
        "{e}"
    );
    let machines = c
        .execute(QueryMachines::new())
        .await
        .expect("query-machines");
    // 7.2's reply has no `acpi` (8.0): optional in the merged bindings.
    assert!(machines.iter().all(|m| m.acpi.is_none()));
    assert_eq!(c.stats().sent, 1, "the refused calls were never written");
    assert!(c.check_available::<QueryStatus>().is_ok());
    // With the check off, QEMU itself answers (one QMP client at a time).
    c.close();
    tokio::time::timeout(T, c.closed()).await.expect("closed");
    drop(c);
    let c2 = connect(&qemu, Options::default().with_check_versions(false)).await;
    let e = c2
        .execute(QueryCryptodev::new())
        .await
        .expect_err("unknown");
    assert_eq!(e.class(), Some(&ErrorClass::CommandNotFound));
}

/// QEMU 11.1.3, newer than the bindings: what it removed is refused
/// before sending, naming it; what it added goes through; its schema is
/// fetched once per binary for every connection of this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated, reason = "what 11.1 removed is deprecated in the bindings")]
async fn qemu_11_1_is_checked_by_its_own_schema() {
    let (q1, q2) = (
        system_of(Which::Qemu111, &["-S"]).await,
        system_of(Which::Qemu111, &["-S"]).await,
    );
    let c = connect(&q1, Options::default()).await;
    assert_eq!(c.qemu_version().to_string(), "11.1.3");
    let e = c
        .execute(QueryMigrationthreads::new())
        .await
        .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "not sent: QEMU 11.1.3 (connected) has no command `query-migrationthreads`"
    );
    let e = c
        .execute(
            Migrate::new()
                .with_uri("unix:/nonexistent")
                .with_detach(true),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "not sent: QEMU 11.1.3 (connected) has no argument `detach` of `migrate`"
    );
    let poll = qmp_client::introspect::Probe::args::<ObjectAdd>()
        .branch("iothread")
        .member("poll-weight");
    assert!(c.probe(&poll).await.expect("schema"));
    // An argument only 11.1 has: sent, and QEMU takes it.
    c.execute_raw(
        "object-add",
        serde_json::json!({"qom-type": "iothread", "id": "io1", "poll-weight": 3}),
    )
    .await
    .expect("11.1 takes poll-weight");
    // The same binary in another process: the schema is not fetched again.
    assert!(c.binary_id().is_some());
    let c2 = connect(&q2, Options::default()).await;
    assert_eq!(c2.binary_id(), c.binary_id());
    c2.execute(QueryStatus::new()).await.expect("status");
    assert_eq!(c2.stats().sent, 1, "no second fetch for the same binary");
    // Another binary (10.0.2's daemon) has another id and its own schema.
    let qsd = storage_daemon().await;
    let c3 = connect(&qsd, Options::default()).await;
    assert_ne!(c3.binary_id(), c.binary_id());
    let own = c3.schema().await.expect("its own");
    assert_eq!(own.label(), "QEMU 10.0.2");
    assert!(own.has_command("query-named-block-nodes") && !own.has_command("query-machines"));
}

/// Issue 38 (1): with `Options::wait_for_socket`, a connect made before
/// QEMU has made its socket waits for it (within `connect_timeout`);
/// without, a missing socket fails at once; a socket that never appears
/// fails at the deadline, saying it waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_waits_for_a_socket_qemu_has_not_made_yet() {
    let dir = tests::TempDir::new("wait-socket").expect("dir");
    let socket = dir.path().join("late.qmp");
    let e = Client::connect_unix(&socket, Options::default())
        .await
        .expect_err("no socket");
    assert!(e.is_socket_not_available(), "{e}");
    let waiting = Options::default()
        .with_wait_for_socket(true)
        .with_connect_timeout(Duration::from_secs(30));
    let connecting = tests::spawn_polled({
        let (socket, opts) = (socket.clone(), waiting.clone());
        async move { Client::connect_unix(&socket, opts).await }
    })
    .await;
    let _qemu = tests::Daemon::on(&socket);
    let c = tokio::time::timeout(T * 3, connecting)
        .await
        .expect("bounded")
        .expect("task")
        .expect("connected once the socket appeared");
    c.execute(QueryVersion::new()).await.expect("a call");
    let never = dir.path().join("never.qmp");
    let e = Client::connect_unix(
        &never,
        waiting.with_connect_timeout(Duration::from_millis(300)),
    )
    .await
    .expect_err("never appears");
    assert!(
        e.to_string().contains("waited 300ms for it to appear"),
        "{e}"
    );
}
