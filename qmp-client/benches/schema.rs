//! What knowing the connected QEMU's own schema costs: one guestless
//! qemu-system-x86_64 10.0.2 (`qmp_client::launch`), in interleaved
//! rounds, each the median of its runs:
//!
//! - connect (greeting, `qmp_capabilities`), with the schema fetched and
//!   without: the fetch is not on the connect path;
//! - connect and the first typed call (`query-status`): with the schema
//!   off (the version tables decide), with it fetched on the first call
//!   (a connection with no key to share it by: over a plain stream), with
//!   the process's copy for this QEMU build (a second connection to the
//!   same binary), and with a copy read from disk (what `qmp exec` does
//!   with a warm cache: the file read, decoded and indexed);
//! - what the fetch costs QEMU: its reply's size, the wall time of the
//!   raw exchange, and QEMU's CPU time per `query-qmp-schema` (all its
//!   threads, `/proc/PID/task/*/stat`);
//! - a fleet: one qemu-storage-daemon with 100 monitors, a client on each
//!   and a typed call on every one: how many times the schema was
//!   fetched.
//!
//! `cargo bench -p qmp-client --bench schema`; see BENCHMARKS.md.

#![allow(missing_docs, reason = "a bench binary")]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_client::introspect::Introspection;
use qmp_client::launch::Launcher;
use qmp_client::{Client, Options, SchemaPolicy};
use qmp_types::QueryStatus;

const ROUNDS: usize = 7;
const RUNS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU seconds of all of process `pid`'s threads.
fn cpu_of(pid: u32) -> f64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    dir.filter_map(|e| {
        let stat = std::fs::read_to_string(e.ok()?.path().join("stat")).ok()?;
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some((rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?) / 100.0)
    })
    .sum()
}

/// The raw exchange: `query-qmp-schema` written, its reply read, over a
/// connection made beforehand; (wall time, reply bytes).
fn raw_fetch(path: &Path) -> (Duration, usize) {
    let s = std::os::unix::net::UnixStream::connect(path).expect("connect");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("greeting");
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .expect("write");
    line.clear();
    r.read_line(&mut line).expect("caps");
    let t = Instant::now();
    w.write_all(b"{\"execute\":\"query-qmp-schema\"}\n")
        .expect("write");
    line.clear();
    r.read_line(&mut line).expect("schema");
    (t.elapsed(), line.len())
}

/// Connects as `how` says and makes the first typed call; (connect time,
/// connect + first call).
async fn first_call(path: &Path, how: How, disk: &[u8]) -> (Duration, Duration) {
    let t = Instant::now();
    let c = match how {
        How::Off | How::Process => {
            let schema = match how {
                How::Off => SchemaPolicy::Off,
                _ => SchemaPolicy::Fetch,
            };
            let opts = Options::default().with_schema(schema);
            Client::connect_unix(path, opts).await.expect("connect")
        }
        // No peer to key a shared copy by: fetched for this connection.
        How::Fetch => {
            let s = tokio::net::UnixStream::connect(path).await.expect("dial");
            Client::from_stream(s, Options::default())
                .await
                .expect("connect")
        }
        How::Disk => {
            let c = Client::connect_unix(path, Options::default())
                .await
                .expect("connect");
            let label = "QEMU 10.0.2";
            let s = Introspection::from_json(disk, label).expect("cached schema");
            c.use_schema(Arc::new(s));
            c
        }
    };
    let connected = t.elapsed();
    c.execute(QueryStatus::new()).await.expect("query-status");
    let first = t.elapsed();
    c.close();
    c.closed().await;
    (connected, first)
}

#[derive(Clone, Copy, PartialEq)]
enum How {
    Off,
    Fetch,
    Process,
    Disk,
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let qemu = Launcher::system_x86_64()
        .guestless()
        .start_timeout(Duration::from_secs(60))
        .start_blocking()
        .expect("qemu-system-x86_64 starts (cargo xtask test installs it)");
    let path = qemu.socket().to_path_buf();
    let pid = qemu.pid();
    // The cached copy `qmp exec` would read.
    let disk: Vec<u8> = {
        let c = rt
            .block_on(Client::connect_unix(&path, Options::default()))
            .expect("connect");
        let v = rt
            .block_on(c.execute_raw("query-qmp-schema", serde_json::json!({})))
            .expect("fetch");
        c.close();
        rt.block_on(c.closed());
        serde_json::to_vec(&v).expect("json")
    };
    // Warm up, and fill the process's copy for this binary.
    for how in [How::Off, How::Fetch, How::Process, How::Disk] {
        rt.block_on(first_call(&path, how, &disk));
    }
    let names = [
        "schema off (version tables)",
        "fetched on the first call (no shared copy)",
        "process's copy (same binary)",
        "read from disk (qmp exec's warm cache)",
    ];
    let hows = [How::Off, How::Fetch, How::Process, How::Disk];
    let mut connect: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut first: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let (mut fetch_wall, mut qemu_cpu, mut parse) = (Vec::new(), Vec::new(), Vec::new());
    let mut size = 0;
    for round in 0..ROUNDS {
        for k in 0..4 {
            // Each round starts with another way.
            let i = (k + round) % 4;
            let (mut cr, mut fr) = (Vec::new(), Vec::new());
            for _ in 0..RUNS {
                let (c, f) = rt.block_on(first_call(&path, hows[i], &disk));
                cr.push(ms(c));
                fr.push(ms(f));
            }
            connect[i].push(median(cr));
            first[i].push(median(fr));
        }
        let mut wr = Vec::new();
        let c0 = cpu_of(pid);
        for _ in 0..RUNS {
            let (d, n) = raw_fetch(&path);
            wr.push(ms(d));
            size = n;
        }
        qemu_cpu.push((cpu_of(pid) - c0) / RUNS as f64 * 1e3);
        fetch_wall.push(median(wr));
        let t = Instant::now();
        for _ in 0..RUNS {
            let s = Introspection::from_json(&disk, "QEMU 10.0.2").expect("parse");
            std::hint::black_box(s);
        }
        parse.push(ms(t.elapsed()) / RUNS as f64);
        eprintln!("round {} done", round + 1);
    }
    println!(
        "QEMU 10.0.2 qemu-system-x86_64, {ROUNDS} rounds x {RUNS} runs, medians of the rounds' medians:"
    );
    println!(
        "{:<46} {:>12} {:>22}",
        "", "connect ms", "connect + 1st call ms"
    );
    for i in 0..4 {
        println!(
            "{:<46} {:>12.3} {:>22.3}",
            names[i],
            median(connect[i].clone()),
            median(first[i].clone())
        );
    }
    println!(
        "query-qmp-schema: {size} bytes; raw exchange {:.2} ms wall; QEMU CPU {:.2} ms per fetch (rounds {:.2}-{:.2})",
        median(fetch_wall.clone()),
        median(qemu_cpu.clone()),
        qemu_cpu.iter().copied().fold(f64::MAX, f64::min),
        qemu_cpu.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "the cached file read back (decode + index, no I/O): {:.2} ms",
        median(parse)
    );
    drop(qemu);

    // A fleet of one binary: how many fetches.
    let dir = tests::TempDir::new("schema-fleet").expect("dir");
    let n = 100;
    let (_d, sockets) = tests::Daemon::with_monitors(dir.path(), n, &[]);
    let sent = rt.block_on(async {
        let mut clients = Vec::new();
        for s in &sockets {
            clients.push(
                Client::connect_unix(s, Options::default())
                    .await
                    .expect("connect"),
            );
        }
        let t = Instant::now();
        // One task each, as the fleet bench does: all calls at once.
        let calls: Vec<_> = clients
            .iter()
            .map(|c| {
                let c = c.clone();
                tokio::spawn(async move { c.execute(qmp_types::QueryVersion::new()).await })
            })
            .collect();
        for call in calls {
            call.await.expect("task").expect("query-version");
        }
        let took = t.elapsed();
        let sent: u64 = clients.iter().map(|c| c.stats().sent).sum();
        (sent, took)
    });
    println!(
        "fleet: {n} monitors of one qemu-storage-daemon, one typed call each, all at once: {} commands sent, so {} schema fetch(es); {:.1} ms",
        sent.0,
        sent.0 - n as u64,
        ms(sent.1)
    );
}
