//! `qmp_client::proxy::Proxy` in front of a real qemu-storage-daemon
//! 10.0.2: this client and QEMU's Python client (qemu.qmp) connected at
//! once, pipelined calls, `exec-oob`, read-only mode and the log, a
//! client that stops reading (dropped, nobody else stalls), 100 clients,
//! and QEMU dying (every client told).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use qmp_client::launch::{Launcher, Qemu};
use qmp_client::proxy::{Proxy, ProxyOptions};
use qmp_client::{Client, Error, Options};
use qmp_types::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

struct Setup {
    qemu: Qemu,
    proxy: Arc<Proxy>,
    path: PathBuf,
    served: tokio::task::JoinHandle<qmp_client::Disconnect>,
    _dir: tests::TempDir,
}

async fn setup(opts: ProxyOptions) -> Setup {
    setup_on(tests::Which::Installed, opts).await
}

/// [`setup`] in front of QEMU `which`'s storage daemon.
async fn setup_on(which: tests::Which, opts: ProxyOptions) -> Setup {
    let qemu = tests::start(tests::launcher(
        which,
        qmp_client::launch::Flavor::StorageDaemon,
    ))
    .await;
    let dir = tests::TempDir::new("proxy").expect("dir");
    let path = dir.path().join("proxy.sock");
    let proxy = Arc::new(Proxy::bind(&path, opts).expect("bind"));
    let upstream = qemu.connect(Options::default()).await.expect("upstream");
    let p = proxy.clone();
    let served = tokio::spawn(async move { p.serve(upstream).await });
    Setup {
        qemu,
        proxy,
        path,
        served,
        _dir: dir,
    }
}

async fn client(path: &Path) -> Client {
    tokio::time::timeout(T, Client::connect_unix(path, Options::default()))
        .await
        .expect("bounded")
        .expect("connects through the proxy")
}

fn null_node(name: &str) -> BlockdevAdd {
    BlockdevAdd::new(
        BlockdevOptions::null_co(BlockdevOptionsNull::new().with_size(1i64 << 20))
            .with_node_name(name),
    )
}

async fn backup(c: &Client, id: &str) {
    let (a, b) = (format!("{id}-a"), format!("{id}-b"));
    c.execute(null_node(&a)).await.expect("a");
    c.execute(null_node(&b)).await.expect("b");
    c.execute(BlockdevBackup::new(a, MirrorSyncMode::Full, b).with_job_id(id))
        .await
        .expect("backup");
}

const PY: &str = r#"
import asyncio, json, sys
from qemu.qmp import QMPClient

async def main():
    c = QMPClient('py')
    await c.connect(sys.argv[1])
    v = await c.execute('query-version')
    print(json.dumps({"version": v["qemu"]["major"]}), flush=True)
    async with asyncio.timeout(10):
        async for ev in c.events:
            if ev['event'] == 'JOB_STATUS_CHANGE':
                print(json.dumps({"event": ev["event"], "id": ev["data"]["id"]}), flush=True)
                break
    r = await c.execute('query-jobs')
    print(json.dumps({"jobs": len(r)}), flush=True)
    await c.disconnect()

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_client_and_qemu_qmp_at_once() {
    let s = setup(ProxyOptions::default()).await;
    let mut py = std::process::Command::new("python3")
        .args(["-c", PY, &s.path.display().to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let lines = BufReader::new(py.stdout.take().expect("stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.lines() {
            let _ = tx.send(l);
        }
    });
    let next = || -> serde_json::Value {
        let l = rx
            .recv_timeout(T)
            .expect("qemu.qmp says something")
            .expect("a line");
        serde_json::from_str(&l).expect("JSON")
    };
    assert_eq!(next()["version"], 10, "qemu.qmp connected and asked");

    let c = client(&s.path).await;
    assert!(c.greeting().oob, "OOB negotiated through the proxy");
    let since = c.event_cursor();
    backup(&c, "j1").await;
    let ev = next();
    assert_eq!(ev["event"], "JOB_STATUS_CHANGE");
    assert_eq!(ev["id"], "j1");
    c.events_of::<BlockJobCompleted>(since)
        .matching(|e| e.device == "j1")
        .wait(T)
        .await
        .expect("this client saw the job end too");
    assert!(next()["jobs"].is_number());
    assert!(py.wait().expect("python ends").success());

    // Pipelined calls from many tasks, answered each to its own caller.
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let r = if i % 2 == 0 {
                    c.execute(QueryVersion::new()).await.map(|v| v.qemu.major)
                } else {
                    c.execute(QueryNamedBlockNodes::new())
                        .await
                        .map(|n| n.len() as i64)
                };
                (i, r)
            })
        })
        .collect();
    for call in calls {
        let (i, r) = call.await.expect("task");
        let n = r.expect("answered");
        if i % 2 == 0 {
            assert_eq!(n, 10);
        } else {
            assert_eq!(n, 2);
        }
    }
    // An error comes back as QEMU said it.
    let err = c
        .execute(BlockdevDel::new("nope"))
        .await
        .expect_err("no node");
    assert!(
        err.to_string()
            .contains("Failed to find node with node-name='nope'"),
        "{err}"
    );
    drop(s.qemu);
    let cause = tokio::time::timeout(T, s.served)
        .await
        .expect("bounded")
        .expect("task");
    // A killed QEMU's socket ends with EOF, or with a reset when bytes
    // were still unread in QEMU's receive buffer (the newline after a
    // command's last `}`, which QEMU's parser does not wait for): seen
    // both ways on this machine, both mean QEMU went away.
    let reset = |c: &qmp_client::Disconnect| {
        matches!(c, qmp_client::Disconnect::Io { error, .. }
            if error.kind() == std::io::ErrorKind::ConnectionReset)
    };
    assert!(
        matches!(cause, qmp_client::Disconnect::PeerClosed) || reset(&cause),
        "{cause:?}"
    );
    // Every client is told.
    let closed = tokio::time::timeout(T, c.closed()).await.expect("bounded");
    assert!(matches!(closed, Error::Closed(_)), "{closed:?}");
    let _ = s.proxy;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_and_the_log() {
    let dir = tests::TempDir::new("proxy-log").expect("dir");
    let log = dir.path().join("who.jsonl");
    let mut opts = ProxyOptions::default();
    opts.read_only = true;
    opts.allow = vec!["block-dirty-bitmap-add".into()];
    opts.log = Some(log.clone());
    let s = setup(opts).await;
    let c = client(&s.path).await;
    c.execute(QueryVersion::new()).await.expect("queries pass");
    let err = c.execute(null_node("n0")).await.expect_err("refused");
    assert!(
        err.to_string()
            .contains("blockdev-add is not allowed (read-only"),
        "{err}"
    );
    let err = c
        .execute(BlockDirtyBitmapAdd::new("nope", "b0"))
        .await
        .expect_err("allowed, and QEMU answers");
    assert!(err.to_string().contains("nope"), "{err}");
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let names: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["command"].as_str())
        .collect();
    // The client fetched the schema before its first typed call (the
    // proxy is not a QEMU, so nothing is shared across its clients).
    assert_eq!(
        names,
        [
            "query-qmp-schema",
            "query-version",
            "blockdev-add",
            "block-dirty-bitmap-add"
        ]
    );
    assert_eq!(entries[2]["refused"], true);
    assert_eq!(entries[0]["pid"], std::process::id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_nobody_stalls() {
    let mut opts = ProxyOptions::default();
    opts.client_buffer = 64;
    let s = setup(opts).await;
    // A client that negotiates, then never reads.
    let mut deaf = tokio::net::UnixStream::connect(&s.path)
        .await
        .expect("connect");
    deaf.write_all(b"{\"execute\": \"qmp_capabilities\"}")
        .await
        .expect("write");
    let c = client(&s.path).await;
    tokio::time::timeout(T, async {
        while s.proxy.clients() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("both negotiated");
    // Jobs, one after the other, until the deaf client's socket buffer
    // and queue are full (about 200 KB of events) and it is dropped;
    // this client goes on meanwhile.
    c.execute(null_node("a")).await.expect("a");
    c.execute(null_node("b")).await.expect("b");
    let mut jobs = 0;
    while s.proxy.clients() == 2 {
        assert!(jobs < 1000, "the deaf client was never dropped");
        let id = format!("j{jobs}");
        let since = c.event_cursor();
        c.execute(BlockdevBackup::new("a", MirrorSyncMode::Full, "b").with_job_id(&*id))
            .await
            .expect("backup");
        c.events_of::<BlockJobCompleted>(since)
            .matching(|e| e.device == id)
            .wait(T)
            .await
            .expect("this client goes on");
        jobs += 1;
    }
    assert!(jobs > 10, "{jobs}");
    eprintln!("deaf client dropped after {jobs} jobs");
    c.execute(QueryVersion::new()).await.expect("still served");
    // The deaf client's connection was closed: what was written, then
    // the end.
    let mut rest = Vec::new();
    tokio::time::timeout(T, deaf.read_to_end(&mut rest))
        .await
        .expect("its connection ends")
        .expect("read");
    assert!(rest.starts_with(b"{\"QMP\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients() {
    let s = setup(ProxyOptions::default()).await;
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let path = s.path.clone();
            tokio::spawn(async move {
                let c = client(&path).await;
                let v = c.execute(QueryVersion::new()).await.expect("answered");
                (c, v.qemu.major)
            })
        })
        .collect();
    let mut held = Vec::new();
    for t in clients {
        let (c, major) = t.await.expect("task");
        assert_eq!(major, 10);
        held.push(c);
    }
    // One client's end ends nobody else's session.
    held.pop().expect("a client").close();
    for c in &held {
        c.execute(QueryVersion::new()).await.expect("still served");
    }
    // An event reaches all of them.
    let since = held[0].event_cursor();
    backup(&held[0], "j100").await;
    for c in &held {
        c.events_of::<BlockJobCompleted>(since)
            .matching(|e| e.device == "j100")
            .wait(T)
            .await
            .expect("every client gets the event");
    }
}

#[tokio::test]
async fn a_malformed_line_is_answered_and_the_session_goes_on() {
    let s = setup(ProxyOptions::default()).await;
    let stream = tokio::net::UnixStream::connect(&s.path)
        .await
        .expect("connect");
    let (r, mut w) = stream.into_split();
    let mut r = tokio::io::BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.expect("greeting");
    let mut ask = async |msg: &str| {
        w.write_all(msg.as_bytes()).await.expect("write");
        line.clear();
        r.read_line(&mut line).await.expect("reply");
        line.clone()
    };
    assert!(
        ask("{\"execute\": \"query-version\"}\n")
            .await
            .contains("Expecting capabilities")
    );
    assert!(
        ask("{\"execute\": \"qmp_capabilities\"}\n")
            .await
            .contains("\"return\"")
    );
    assert!(ask("garbage\n").await.contains("JSON parse error"));
    assert!(
        ask("{\"exec-oob\": \"yank\", \"arguments\": {\"instances\": []}, \"id\": 1}\n")
            .await
            .contains("Please enable out-of-band")
    );
    let v = ask("{\"execute\": \"query-version\", \"id\": \"x\"}\n").await;
    assert!(v.contains("\"id\": \"x\"") && v.contains("\"qemu\""), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_oob_stays_out_of_band() {
    let qemu = tests::start(Launcher::system_x86_64().guestless()).await;
    let dir = tests::TempDir::new("proxy-oob").expect("dir");
    let path = dir.path().join("proxy.sock");
    let proxy = Arc::new(Proxy::bind(&path, ProxyOptions::default()).expect("bind"));
    let upstream = qemu.connect(Options::default()).await.expect("upstream");
    assert!(upstream.greeting().oob);
    let p = proxy.clone();
    tokio::spawn(async move { p.serve(upstream).await });
    let c = client(&path).await;
    assert!(c.greeting().oob);
    // migrate-pause allows OOB; without a migration QEMU refuses it, out
    // of band, in its words.
    let err = c
        .execute_oob(MigratePause::new())
        .await
        .expect_err("no migration");
    assert!(
        err.to_string()
            .contains("migrate-pause is currently only supported"),
        "{err}"
    );
}

/// The proxy in front of QEMU 11.1.3 (newer than the bindings): two
/// clients, each checked by 11.1's own schema (fetched through the
/// proxy), a job's events to both, and a read-only client refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_front_of_qemu_11_1() {
    let s = setup_on(tests::Which::Qemu111, ProxyOptions::default()).await;
    let (a, b) = (client(&s.path).await, client(&s.path).await);
    assert_eq!(a.qemu_version().to_string(), "11.1.3");
    let since = b.event_cursor();
    backup(&a, "p11").await;
    b.events_of::<BlockJobCompleted>(since)
        .matching(|e| e.device == "p11")
        .wait(T)
        .await
        .expect("the other client saw the job end");
    // 11.1 dropped query-migrationthreads (a command the storage daemon
    // never had either): refused by the schema, before the proxy.
    #[allow(deprecated, reason = "what 11.1 removed")]
    let e = b
        .execute(QueryMigrationthreads::new())
        .await
        .expect_err("refused");
    assert!(
        e.to_string()
            .starts_with("not sent: QEMU 11.1.3 (connected)"),
        "{e}"
    );
    let mut ro = ProxyOptions::default();
    ro.read_only = true;
    let r = setup_on(tests::Which::Qemu111, ro).await;
    let c = client(&r.path).await;
    c.execute(QueryVersion::new()).await.expect("queries pass");
    let e = c.execute(null_node("n0")).await.expect_err("refused");
    assert!(e.to_string().contains("not allowed (read-only"), "{e}");
}

/// A socket left by a proxy that was killed is replaced; one that is
/// served, or a file that is not a socket, is refused as a listen error.
#[test]
fn a_stale_socket_is_replaced_and_a_served_one_refused() {
    let dir = tests::TempDir::new("proxy-stale").expect("dir");
    let path = dir.path().join("p.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists(), "the socket file stays behind");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _g = rt.enter();
    let p = Proxy::bind(&path, ProxyOptions::default()).expect("replaces the stale socket");
    // Now served: a second proxy there is refused, saying so.
    match Proxy::bind(&path, ProxyOptions::default()) {
        Err(e @ Error::Listen { .. }) => assert!(e.to_string().contains("served"), "{e}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("two proxies on one socket"),
    }
    drop(p);
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"x").expect("file");
    match Proxy::bind(&file, ProxyOptions::default()) {
        Err(e @ Error::Listen { .. }) => assert!(e.to_string().contains("not a socket"), "{e}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a file replaced"),
    }
    assert_eq!(std::fs::read(&file).expect("untouched"), b"x");
}

/// The collector (`qmp top`, `qmp exporter`) watches through a read-only
/// proxy beside a client the proxy lets start a job: its queries pass,
/// and the job's events reach it through the proxy's fan-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_watches_through_a_read_only_proxy() {
    use qmp_client::collector::{Collector, CollectorOptions, Health, Source};
    let mut opts = ProxyOptions::default();
    opts.read_only = true;
    opts.allow = vec!["blockdev-add".into(), "blockdev-backup".into()];
    let s = setup(opts).await;
    let watch = Collector::start(
        vec![Source::Socket(s.path.clone())],
        CollectorOptions::default().with_interval(Duration::from_millis(100)),
    );
    // The job starts once the collector is connected: QEMU's events
    // before that are not its to see.
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let news = watch.changed();
        if watch
            .snapshot()
            .first()
            .is_some_and(|v| v.health == Health::Up)
        {
            break;
        }
        assert!(
            tokio::time::timeout_at(deadline, news).await.is_ok(),
            "the collector never connected through the proxy"
        );
    }
    let other = client(&s.path).await;
    backup(&other, "pj").await;
    loop {
        let news = watch.changed();
        let v = watch.snapshot().remove(0);
        let job_seen = v.events.get("JOB_STATUS_CHANGE").is_some_and(|n| *n >= 4);
        if v.health == Health::Up && v.polls >= 3 && job_seen {
            // The storage daemon has no run state; nothing was refused.
            assert!(v.samples.iter().all(|s| s.status.is_none()), "{v:?}");
            break;
        }
        assert!(
            tokio::time::timeout_at(deadline, news).await.is_ok(),
            "not seen through the proxy: {v:?}"
        );
    }
}
