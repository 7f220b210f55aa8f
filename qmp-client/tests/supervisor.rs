//! `Supervisor` across a real QEMU restart: qemu-storage-daemon 10.0.2
//! on a socket path of the test's own, killed (a call pending in it ends
//! with `Closed`), started again on the same path; subscribers see the
//! loss and the reconnection with its gap, then events again.

use std::time::Duration;

use qmp_client::{Backoff, Error, Options, Supervised, SupervisedEvents, Supervisor};
use qmp_types::*;

const T: Duration = Duration::from_secs(10);

fn null_node(name: &str) -> BlockdevAdd {
    BlockdevAdd::new(
        BlockdevOptions::null_co(BlockdevOptionsNull::new().with_size(1i64 << 20))
            .with_node_name(name),
    )
}

/// Runs a backup; its events follow.
async fn job(sup: &Supervisor, id: &str) {
    sup.execute(null_node(&format!("{id}-a"))).await.expect("a");
    sup.execute(null_node(&format!("{id}-b"))).await.expect("b");
    let (a, b) = (format!("{id}-a"), format!("{id}-b"));
    sup.execute(BlockdevBackup::new(a, MirrorSyncMode::Full, b).with_job_id(id))
        .await
        .expect("backup");
}

/// The next item that is not an event.
async fn next_change(events: &mut SupervisedEvents) -> Supervised {
    loop {
        match tokio::time::timeout(T, events.next())
            .await
            .expect("bounded")
        {
            Some(Supervised::Event(_)) => continue,
            Some(other) => return other,
            None => panic!("the supervisor stopped"),
        }
    }
}

async fn next_event(events: &mut SupervisedEvents) -> String {
    match tokio::time::timeout(T, events.next())
        .await
        .expect("bounded")
    {
        Some(Supervised::Event(e)) => e.event.name().to_string(),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_across_a_qemu_restart_on_the_same_path() {
    let dir = tests::TempDir::new("supervisor").expect("dir");
    let socket = dir.path().join("qmp.sock");
    let qemu = tests::Daemon::on(&socket);
    let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200));
    let sup = Supervisor::connect_unix(&socket, Options::default(), backoff)
        .await
        .expect("first dial");
    let mut events = sup.events();
    job(&sup, "j1").await;
    assert_eq!(next_event(&mut events).await, "JOB_STATUS_CHANGE");

    // A call pending when QEMU dies: stopped first, so it can't answer.
    let pid = nix::unistd::Pid::from_raw(qemu.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stop");
    let client = sup.client().expect("connected");
    let before = client.stats().sent;
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.execute(QueryVersion::new()).await }
    });
    // Written to the socket: pending in QEMU when it dies.
    while client.stats().sent == before {
        tokio::task::yield_now().await;
    }
    drop(client);
    drop(qemu);
    let r = tokio::time::timeout(T, pending)
        .await
        .expect("bounded")
        .expect("task");
    assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
    assert!(matches!(
        next_change(&mut events).await,
        Supervised::Disconnected(_)
    ));
    // Down: calls fail at once, no retry.
    let down = sup.execute(QueryVersion::new()).await;
    assert!(matches!(down, Err(Error::Closed(_))), "{down:?}");

    // Back, on the same path, after a dial that failed: something on the
    // path that greets wrongly takes one dial, then QEMU is there.
    let down = std::time::Instant::now();
    let _ = std::fs::remove_file(&socket);
    let impostor = tokio::net::UnixListener::bind(&socket).expect("bind");
    let (mut s, _) = tokio::time::timeout(T, impostor.accept())
        .await
        .expect("the supervisor dials")
        .expect("accept");
    tokio::io::AsyncWriteExt::write_all(&mut s, b"{\"not\": \"a greeting\"}\n")
        .await
        .expect("write");
    drop((s, impostor));
    let _ = std::fs::remove_file(&socket);
    let _qemu = tests::Daemon::on(&socket);
    let outage = down.elapsed();
    match next_change(&mut events).await {
        Supervised::Reconnected {
            gap,
            attempts,
            greeting,
        } => {
            assert!(gap >= outage, "{gap:?} < {outage:?}");
            assert!(attempts >= 2, "{attempts}");
            assert_eq!(greeting.version.qemu.major, 10);
        }
        other => panic!("{other:?}"),
    }
    sup.connected(T).await.expect("connected");
    let v = sup
        .execute(QueryVersion::new())
        .await
        .expect("after the restart");
    assert_eq!(v.qemu.major, 10);
    job(&sup, "j2").await;
    assert_eq!(next_event(&mut events).await, "JOB_STATUS_CHANGE");

    sup.close();
    let end = tokio::time::timeout(T, async { while events.next().await.is_some() {} }).await;
    assert!(end.is_ok(), "the subscription ends after close");
    assert!(
        sup.events().next().await.is_none(),
        "and a new one is ended"
    );
}
