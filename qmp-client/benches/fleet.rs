//! Many monitors in one process: one qemu-storage-daemon with N QMP
//! monitors (`--monitor` on N sockets; default 1,000, `QMP_BENCH_FLEET=N`),
//! a client on each, held at once.
//!
//! Measured: memory per idle connection (this process's RSS over the N
//! connections), tasks per connection (tokio's count), then a flood:
//! backup jobs run one after the other on monitor 0 for 3 s, and since
//! QEMU sends every event to every monitor, each job's events arrive N
//! times; one consumer receives them all, routed per VM (a forwarding
//! task per connection). Reported: the fan-in rate, whether every
//! monitor got every event, and the latency of `query-version` on
//! monitor 1 meanwhile (p50, p99), against the same calls with no flood.
//! `cargo bench -p qmp-client --bench fleet`.

#![allow(missing_docs, reason = "a bench binary")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use qmp_client::{Client, Options};
use qmp_types::*;

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn daemon(dir: &Path, n: usize) -> (tests::Daemon, Vec<PathBuf>) {
    let args: Vec<String> = vec![
        "--blockdev".into(),
        "driver=null-co,node-name=a,size=1048576".into(),
        "--blockdev".into(),
        "driver=null-co,node-name=b,size=1048576".into(),
    ];
    tests::Daemon::with_monitors(dir, n, &args)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// `query-version` round trips on `c` every 10 ms until `stop`: their
/// times, in µs.
async fn probe(c: Client, stop: Arc<AtomicBool>) -> Vec<f64> {
    let mut times = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        c.execute(QueryVersion::new()).await.expect("query-version");
        times.push(t.elapsed().as_secs_f64() * 1e6);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    times
}

fn main() {
    let n: usize = std::env::var("QMP_BENCH_FLEET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // Two sockets per monitor (ours and QEMU's) and some more.
    let want = (4 * n + 256) as u64;
    if let Ok((soft, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        && soft < want
    {
        let _ = nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
            want.min(hard),
            hard,
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (_qemu, sockets) = daemon(dir.path(), n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let tasks0 = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let rss0 = rss_kib();
        let mut clients = Vec::with_capacity(n);
        let t = Instant::now();
        for s in &sockets {
            clients.push(Client::connect_unix(s, Options::default()).await.expect("connect"));
        }
        let connect_time = t.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss1 = rss_kib();
        let tasks1 = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        println!(
            "{n} monitors connected in {:.2} s; RSS {rss0} -> {rss1} KiB: {:.1} KiB per idle connection (goal <= 32); {:.2} tasks per connection",
            connect_time.as_secs_f64(),
            (rss1 - rss0) as f64 / n as f64,
            (tasks1 - tasks0) as f64 / n as f64
        );

        // Quiet latency first.
        let stop = Arc::new(AtomicBool::new(false));
        let quiet = tokio::spawn(probe(clients[1].clone(), stop.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        let mut quiet = quiet.await.expect("probe");

        // The consumer: every event of every VM, routed by VM.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Arc<qmp_client::EventRecord>)>(1 << 16);
        for (vm, c) in clients.iter().enumerate() {
            let mut events = c.events();
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok(e) = events.next().await {
                    if tx.send((vm, e)).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let tasks2 = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let consumer = tokio::spawn(async move {
            let mut per_vm = vec![0u64; n];
            let mut first: Option<Instant> = None;
            let mut last = Instant::now();
            while let Some((vm, _e)) = rx.recv().await {
                per_vm[vm] += 1;
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
            }
            (per_vm, first.map(|f| last - f))
        });

        // The flood: jobs on monitor 0 for 3 s; latency on monitor 1.
        let stop = Arc::new(AtomicBool::new(false));
        let busy = tokio::spawn(probe(clients[1].clone(), stop.clone()));
        let driver = clients[0].clone();
        let t = Instant::now();
        let mut jobs = 0u64;
        while t.elapsed() < Duration::from_secs(3) {
            let id = format!("j{jobs}");
            let since = driver.event_cursor();
            driver
                .execute(BlockdevBackup::new("a", MirrorSyncMode::Full, "b").with_job_id(&*id))
                .await
                .expect("backup");
            driver
                .events_of::<BlockJobCompleted>(since).matching(|e| e.device == id).wait(Duration::from_secs(10))
                .await
                .expect("job done");
            jobs += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let mut busy = busy.await.expect("probe");
        // Let the last events arrive everywhere, then end the streams.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss2 = rss_kib();
        for c in &clients {
            c.close();
        }
        let (per_vm, span) = consumer.await.expect("consumer");
        let total: u64 = per_vm.iter().sum();
        let (min, max) = (
            per_vm.iter().min().copied().unwrap_or(0),
            per_vm.iter().max().copied().unwrap_or(0),
        );
        let span = span.unwrap_or_default().as_secs_f64();
        println!(
            "flood: {jobs} jobs in 3 s, {} events each VM (min {min}, max {max}: {}), {total} events in {span:.2} s: {:.0} events/s into one consumer (goal >= 10,000)",
            per_vm[0],
            if min == max { "every VM got every event" } else { "NOT every VM got every event" },
            total as f64 / span.max(1e-9)
        );
        println!(
            "tasks per connection with a forwarder each: {:.2}; RSS after the flood {rss2} KiB",
            (tasks2 - tasks0) as f64 / n as f64
        );
        println!(
            "query-version on monitor 1: quiet p50 {:.0} µs p99 {:.0} µs ({} calls); during the flood p50 {:.0} µs p99 {:.0} µs ({} calls)",
            percentile(&mut quiet, 0.5),
            percentile(&mut quiet, 0.99),
            quiet.len(),
            percentile(&mut busy, 0.5),
            percentile(&mut busy, 0.99),
            busy.len()
        );
    });
}
