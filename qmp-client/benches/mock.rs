//! What a unit test costs with the test double (`qmp_client::testing`)
//! against the same test with a qemu-storage-daemon started for it.
//!
//! The test, as a user writes it: a fresh tokio runtime (what
//! `#[tokio::test]` makes), a connection, 100 commands (2 `blockdev-add`,
//! 2 `blockdev-backup`, 96 `query-version`, each awaited in turn), and 10
//! events received (the jobs' `JOB_STATUS_CHANGE`s); then the end of the
//! connection (and of QEMU). With the double, the events come from the
//! expectations (`then_emit`), and `verify` is called; with QEMU, from the
//! real backup jobs (null-co nodes), and the daemon is stopped.
//!
//! A third variant plays the two jobs from the double's recordings
//! (`mock.job(ScriptedJob::backup(..))`, 9 events each, the statuses and
//! `query-jobs` state kept) instead of the test's `then_emit`s: what a
//! job script adds to a test is half the difference.
//!
//! Interleaved rounds after a warm-up of both; medians printed, and the
//! median of the rounds' ratios (with the ratio of all runs' medians).
//! `cargo bench -p qmp-client --bench mock`. For a profiler,
//! `QMP_BENCH_MOCK_ONLY=N` runs the double's test N times and nothing
//! else; `QMP_BENCH_EXTRA_COMMANDS=N` adds N commands to each test.

#![allow(missing_docs, reason = "a bench binary")]

use std::time::{Duration, Instant};

use qmp_client::launch::Launcher;
use qmp_client::testing::{MockQemu, ScriptedJob};
use qmp_client::{Client, Options};
use qmp_types::*;

const ROUNDS: usize = 15;
const MOCK_RUNS: usize = 30;
const QSD_RUNS: usize = 2;

fn null_node(name: &str) -> BlockdevAdd {
    BlockdevAdd::new(
        BlockdevOptions::null_co(BlockdevOptionsNull::new().with_size(1i64 << 20))
            .with_node_name(name),
    )
}

/// `QMP_BENCH_EXTRA_COMMANDS=N`: N more `query-version`s per test (the
/// difference gives the cost of one command).
fn extra_commands() -> usize {
    std::env::var("QMP_BENCH_EXTRA_COMMANDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The test body: 100 commands, then 10 events.
async fn body(c: &Client) {
    let mut events = c.events();
    for n in ["a", "b"] {
        c.execute(null_node(n)).await.expect("blockdev-add");
    }
    for (job, (src, dst)) in [("j1", ("a", "b")), ("j2", ("b", "a"))] {
        c.execute(BlockdevBackup::new(src, MirrorSyncMode::Full, dst).with_job_id(job))
            .await
            .expect("backup");
        // QEMU does not run two backups of one node pair at once.
        loop {
            let e = events.next().await.expect("event");
            if let AnyEvent::BlockJobCompleted(_) = &e.event {
                break;
            }
        }
    }
    for _ in 0..96 + extra_commands() {
        c.execute(QueryVersion::new()).await.expect("query-version");
    }
    let seen = c
        .history(qmp_client::Since::Cursor(0))
        .iter()
        .filter(|r| r.event.name() == "JOB_STATUS_CHANGE")
        .count();
    assert!(seen >= 10, "{seen} events");
}

fn job_events(mock: &MockQemu, job: &'static str) {
    let mut e = mock
        .expect::<BlockdevBackup>()
        .with(move |c| c.job_id.as_deref() == Some(job));
    for status in [
        JobStatus::Created,
        JobStatus::Running,
        JobStatus::Waiting,
        JobStatus::Pending,
        JobStatus::Concluded,
    ] {
        e = e.then_emit(JobStatusChange::new(job, status));
    }
    e.then_emit(BlockJobCompleted::new(
        JobType::Backup,
        job,
        1 << 20,
        1 << 20,
        0,
    ));
}

/// How long `test` takes on a fresh current-thread runtime (what
/// `#[tokio::test]` makes), the runtime's creation and end included.
fn timed<F: std::future::Future<Output = ()>>(test: F) -> Duration {
    let t = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(test);
    drop(rt);
    t.elapsed()
}

fn with_mock() -> Duration {
    timed(async {
        let mock = MockQemu::with_version("10.0.2").expect("covered");
        mock.expect::<BlockdevAdd>().times(2);
        job_events(&mock, "j1");
        job_events(&mock, "j2");
        mock.allow::<QueryVersion>()
            .reply(VersionInfo::new(VersionTriple::new(10, 0, 2), ""));
        let c = mock.connect(Options::default()).await.expect("connect");
        body(&c).await;
        mock.verify().expect("met");
    })
}

/// The same test with the jobs scripted.
fn with_script() -> Duration {
    timed(async {
        let mock = MockQemu::with_version("10.0.2").expect("covered");
        mock.expect::<BlockdevAdd>().times(2);
        mock.job(ScriptedJob::backup("j1"))
            .job(ScriptedJob::backup("j2"));
        mock.allow::<QueryVersion>()
            .reply(VersionInfo::new(VersionTriple::new(10, 0, 2), ""));
        let c = mock.connect(Options::default()).await.expect("connect");
        body(&c).await;
        mock.verify().expect("met");
    })
}

fn with_qsd() -> Duration {
    timed(async {
        let qsd = Launcher::storage_daemon().start().await.expect("qsd");
        let c = qsd.connect(Options::default()).await.expect("connect");
        body(&c).await;
        c.close();
        c.closed().await;
        drop(qsd);
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `QMP_BENCH_MOCK_ONLY=N`: only N runs of the double (for a profiler).
    if let Some(n) = std::env::var("QMP_BENCH_MOCK_ONLY")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        let runs: Vec<f64> = (0..n).map(|_| with_mock().as_secs_f64() * 1e3).collect();
        println!("median of {n} runs of the double: {:.3} ms", median(runs));
        return;
    }
    let (mut mock, mut qsd, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut scripted = Vec::new();
    // Warm-up of both: the schema tables are indexed once per process,
    // and the first runtimes and daemons of a process are slower.
    for _ in 0..MOCK_RUNS {
        with_mock();
        with_script();
    }
    with_qsd();
    for round in 0..ROUNDS {
        let m: Vec<f64> = (0..MOCK_RUNS)
            .map(|_| with_mock().as_secs_f64() * 1e3)
            .collect();
        let sc: Vec<f64> = (0..MOCK_RUNS)
            .map(|_| with_script().as_secs_f64() * 1e3)
            .collect();
        let q: Vec<f64> = (0..QSD_RUNS)
            .map(|_| with_qsd().as_secs_f64() * 1e3)
            .collect();
        let (mm, qm) = (median(m.clone()), median(q.clone()));
        println!(
            "round {round}: mock {mm:.3} ms, qemu-storage-daemon {qm:.1} ms, {:.0}x",
            qm / mm
        );
        ratios.push(qm / mm);
        mock.extend(m);
        scripted.extend(sc);
        qsd.extend(q);
    }
    let (m, q, sc) = (median(mock), median(qsd), median(scripted));
    println!(
        "median of {} mock runs: {m:.3} ms (goal <= 0.3 ms); of {} qemu-storage-daemon runs: {q:.1} ms",
        ROUNDS * MOCK_RUNS,
        ROUNDS * QSD_RUNS
    );
    println!(
        "with the jobs scripted: {sc:.3} ms; a job script adds {:.4} ms (goal <= 0.05 ms)",
        (sc - m) / 2.0
    );
    println!(
        "the double is {:.0}x faster: median of the rounds' ratios (goal >= 100x); {:.0}x the ratio of all runs' medians",
        median(ratios),
        q / m
    );
}
