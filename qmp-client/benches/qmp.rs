//! Client throughput against a private `qemu-storage-daemon` (started
//! with `qmp_client::launch`), each figure beside baselines measured in
//! the same run on the same daemon, in interleaved rounds:
//!
//! - the raw sequential floor: one command line written (the client's
//!   bytes: `{"execute":"query-version"}`), one reply line read, on a Unix
//!   socket, no JSON decoding;
//! - the client with 1, 8 and 64 callers (`Options::default()`: OOB
//!   negotiated, at most 7 in-band commands in flight, in-band commands
//!   without ids), and with 8 callers and `in_band_ids` (every command
//!   with an id, as before that option existed);
//! - QEMU's Python client, qemu.qmp, with 8 asyncio tasks (installed
//!   with pip when missing; left out, and said so, when that fails).
//!
//! Each round also prints the client's CPU time per call (user + system,
//! `getrusage` of this process, whose only work then is the client),
//! qemu.qmp's (Python's `process_time`), and the CPU time per call of
//! QEMU's busiest thread (its monitor I/O thread) and of all its threads,
//! read from `/proc`: the client's rate follows the I/O thread's cost.
//!
//! Then client cost against an in-process fake server that answers at
//! once, typed event decoding, and what `tracing` costs with no
//! subscriber (its disabled call sites, per call) against with one.
//!
//! `cargo bench -p qmp-client --bench qmp` prints medians of the rounds
//! and the ratios (medians of per-round ratios); see BENCHMARKS.md.

#![allow(missing_docs, reason = "a bench binary")]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream as StdUnix;
use std::time::{Duration, Instant};

use qmp_client::launch::Launcher;
use qmp_client::{Client, Options};
use qmp_types::QueryVersion;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const ROUNDS: usize = 9;
const CALLS: usize = 4000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Connects raw, negotiates, returns reader and writer.
fn raw_connect(path: &std::path::Path) -> (BufReader<StdUnix>, StdUnix) {
    let s = StdUnix::connect(path).expect("connect");
    let w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("greeting");
    let mut w2 = w.try_clone().expect("clone");
    w2.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .expect("caps");
    line.clear();
    r.read_line(&mut line).expect("caps reply");
    (r, w)
}

/// Raw floor, sequential: one command line out, one reply line in.
fn raw_sequential(path: &std::path::Path, n: usize) -> f64 {
    let (mut r, mut w) = raw_connect(path);
    let mut line = String::new();
    let start = Instant::now();
    for _ in 0..n {
        w.write_all(b"{\"execute\":\"query-version\"}\n")
            .expect("write");
        line.clear();
        r.read_line(&mut line).expect("read");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// qemu.qmp's throughput with `tasks` asyncio tasks sharing one
/// connection (Python's own timing, start-up excluded), and its CPU time
/// per call in µs.
const QEMU_QMP_PEER: &str = r#"
import asyncio, sys, time
from qemu.qmp import QMPClient
async def main(path, n, tasks):
    qmp = QMPClient("bench")
    await qmp.connect(path)
    per = n // tasks
    async def worker():
        for _ in range(per):
            await qmp.execute("query-version")
    t = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*[worker() for _ in range(tasks)])
    el = time.perf_counter() - t
    cpu = time.process_time() - cpu
    await qmp.disconnect()
    print(per * tasks / el, cpu / (per * tasks) * 1e6)
asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"#;

/// Whether qemu.qmp can be imported, installing it with pip if not.
fn qemu_qmp_available() -> Result<String, String> {
    let has = || {
        std::process::Command::new("python3")
            .args([
                "-c",
                "import qemu.qmp, importlib.metadata as m; print(m.version('qemu.qmp'))",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(v) = has() {
        return Ok(v);
    }
    eprintln!(
        "qemu.qmp is not installed: installing it with `python3 -m pip install qemu.qmp` for the comparison"
    );
    let st = std::process::Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "qemu.qmp"])
        .status()
        .map_err(|e| format!("can't run pip: {e}"))?;
    if !st.success() {
        return Err(format!("pip install qemu.qmp failed ({st})"));
    }
    has().ok_or_else(|| "qemu.qmp still can't be imported".to_string())
}

fn qemu_qmp(path: &std::path::Path, n: usize, tasks: usize) -> Option<(f64, f64)> {
    let out = std::process::Command::new("python3")
        .args(["-c", QEMU_QMP_PEER])
        .arg(path)
        .arg(n.to_string())
        .arg(tasks.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "qemu.qmp run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace().map(str::parse::<f64>);
    match (f.next(), f.next()) {
        (Some(Ok(rate)), Some(Ok(cpu))) => Some((rate, cpu)),
        _ => None,
    }
}

/// This process's CPU time (user + system), in seconds.
fn cpu_self() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 * 1e-6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// CPU time (seconds) of each thread of process `pid`, by thread id.
fn thread_cpu(pid: u32) -> Vec<(u32, f64)> {
    let tick = 100.0; // USER_HZ on Linux
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // Fields after the command name, which may hold spaces.
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?;
        Some((tid, ticks / tick))
    })
    .collect()
}

/// QEMU's CPU time per call in µs during a measurement: its busiest
/// thread's and all threads'.
struct QemuCpu {
    busiest: f64,
    total: f64,
}

fn qemu_cpu(before: &[(u32, f64)], after: &[(u32, f64)], calls: usize) -> QemuCpu {
    let deltas: Vec<f64> = after
        .iter()
        .map(|(tid, t)| t - before.iter().find(|(b, _)| b == tid).map_or(0.0, |b| b.1))
        .collect();
    let per = |s: f64| s / calls as f64 * 1e6;
    QemuCpu {
        busiest: per(deltas.iter().copied().fold(0.0, f64::max)),
        total: per(deltas.iter().sum()),
    }
}

/// A measurement of the client: calls per second, its CPU time per call
/// (µs), QEMU's.
struct Measured {
    rate: f64,
    cpu: f64,
    qemu: QemuCpu,
}

fn measure(rt: &tokio::runtime::Runtime, c: &Client, pid: u32, tasks: usize) -> Measured {
    let (q0, c0) = (thread_cpu(pid), cpu_self());
    let rate = rt.block_on(client_concurrent(c, CALLS, tasks));
    let (q1, c1) = (thread_cpu(pid), cpu_self());
    let calls = CALLS / tasks * tasks;
    Measured {
        rate,
        cpu: (c1 - c0) / calls as f64 * 1e6,
        qemu: qemu_cpu(&q0, &q1, calls),
    }
}

async fn client_concurrent(c: &Client, n: usize, tasks: usize) -> f64 {
    let start = Instant::now();
    let per = n / tasks;
    let mut hs = Vec::new();
    for _ in 0..tasks {
        let c = c.clone();
        hs.push(tokio::spawn(async move {
            for _ in 0..per {
                c.execute(QueryVersion::new()).await.expect("reply");
            }
        }));
    }
    for h in hs {
        h.await.expect("task");
    }
    (per * tasks) as f64 / start.elapsed().as_secs_f64()
}

/// An in-process server answering every command at once with a canned
/// query-version reply, or flooding events.
async fn fake_server(listener: tokio::net::UnixListener) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let (r, mut w) = s.into_split();
            let mut r = tokio::io::BufReader::new(r);
            let greeting = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": []}}\n";
            if w.write_all(greeting).await.is_err() {
                return;
            }
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                // In-band commands come without an id (replies by order);
                // an id, if any, is echoed.
                let id = line
                    .rfind("\"id\":")
                    .map(|i| line[i + 5..].trim_end().trim_end_matches('}').to_string());
                let reply = match (id, line.contains("qmp_capabilities")) {
                    (_, true) => "{\"return\": {}}\n".to_string(),
                    (Some(id), false) => format!(
                        "{{\"return\": {{\"qemu\": {{\"micro\": 2, \"minor\": 0, \"major\": 10}}, \"package\": \"\"}}, \"id\": {id}}}\n"
                    ),
                    (None, false) => "{\"return\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"\"}}\n".to_string(),
                };
                if w.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let qsd = rt
        .block_on(Launcher::storage_daemon().start())
        .expect("start qemu-storage-daemon");
    let path = qsd.socket().to_path_buf();
    let peer = match qemu_qmp_available() {
        Ok(v) => {
            println!("comparing with qemu.qmp {v} (Python {})", python_version());
            true
        }
        Err(e) => {
            println!("qemu.qmp left out of the comparison: {e}");
            false
        }
    };
    // The daemon's monitor serves one connection at a time: each
    // measurement connects, measures and hangs up, interleaved by round.
    let pid = qsd.pid();
    let mut raw_seq = Vec::new();
    let mut cli1 = Vec::new();
    let mut cli8 = Vec::new();
    let mut cli64 = Vec::new();
    let mut ids8 = Vec::new();
    let mut py8 = Vec::new();
    let connect = |in_band_ids: bool| {
        let c = rt
            .block_on(Client::connect_unix(
                &path,
                Options::default().with_in_band_ids(in_band_ids),
            ))
            .expect("connect");
        assert!(c.greeting().oob, "OOB negotiated by default");
        c
    };
    let hang_up = |c: Client| {
        c.close();
        rt.block_on(c.closed());
    };
    println!(
        "per round: calls/s, client CPU µs/call, QEMU's monitor I/O thread / all threads CPU µs/call"
    );
    for round in 0..ROUNDS {
        raw_seq.push(raw_sequential(&path, CALLS));
        let client = connect(false);
        cli1.push(measure(&rt, &client, pid, 1));
        cli8.push(measure(&rt, &client, pid, 8));
        cli64.push(measure(&rt, &client, pid, 64));
        hang_up(client);
        let client = connect(true);
        ids8.push(measure(&rt, &client, pid, 8));
        hang_up(client);
        let py = if peer {
            qemu_qmp(&path, CALLS, 8)
        } else {
            None
        };
        let show = |m: &Measured| {
            format!(
                "{:>5.0} {:>4.1} {:>3.0}/{:>3.0}",
                m.rate, m.cpu, m.qemu.busiest, m.qemu.total
            )
        };
        print!(
            "  round {round}: 1 caller {} | 8 {} | 64 {} | 8 with ids {}",
            show(&cli1[round]),
            show(&cli8[round]),
            show(&cli64[round]),
            show(&ids8[round])
        );
        if let Some((rate, cpu)) = py {
            print!(
                " | qemu.qmp {rate:>5.0} {cpu:>5.1}: 8 callers {:.3} x qemu.qmp",
                cli8[round].rate / rate
            );
            py8.push((rate, cpu));
        }
        println!();
    }
    let rates = |v: &[Measured]| v.iter().map(|m| m.rate).collect::<Vec<_>>();
    let cpus = |v: &[Measured]| median(v.iter().map(|m| m.cpu).collect());
    let io = |v: &[Measured]| median(v.iter().map(|m| m.qemu.busiest).collect());
    let (r1, r8, r64, ri8) = (rates(&cli1), rates(&cli8), rates(&cli64), rates(&ids8));
    let py_rates: Vec<f64> = py8.iter().map(|p| p.0).collect();
    // Ratios within each round (same machine state), then medians.
    let per_round = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x / y).collect::<Vec<_>>();
    let ratio = |a: &[f64], b: &[f64]| median(per_round(a, b));
    println!(
        "qemu-storage-daemon 10.0.2, query-version, {CALLS} calls x {ROUNDS} rounds (medians; ratios are medians of per-round ratios):"
    );
    println!(
        "  raw floor, sequential        {:>9.0} calls/s",
        median(raw_seq.clone())
    );
    println!(
        "  client, 1 caller             {:>9.0} calls/s   {:.3} x raw floor (goal >= 0.97); client CPU {:.1} µs/call, QEMU I/O thread {:.0} µs/call",
        median(r1.clone()),
        ratio(&r1, &raw_seq),
        cpus(&cli1),
        io(&cli1)
    );
    for (name, v, m) in [
        ("8 callers ", &r8, &cli8),
        ("64 callers", &r64, &cli64),
        ("8, ids    ", &ri8, &ids8),
    ] {
        print!(
            "  client, {name}           {:>9.0} calls/s   {:.3} x raw floor",
            median(v.clone()),
            ratio(v, &raw_seq),
        );
        if py8.len() == ROUNDS {
            let rs = per_round(v, &py_rates);
            let worst = rs.iter().copied().fold(f64::INFINITY, f64::min);
            print!(
                ", {:.3} x qemu.qmp (worst round {worst:.3})",
                median(rs.clone())
            );
        }
        println!(
            "; client CPU {:.1} µs/call, QEMU I/O thread {:.0} µs/call",
            cpus(m),
            io(m)
        );
    }
    println!(
        "  in-band commands without ids vs with (8 callers): {:.3} x",
        ratio(&r8, &ri8)
    );
    if py8.len() == ROUNDS {
        println!(
            "  qemu.qmp, 8 tasks            {:>9.0} calls/s   {:.3} x raw floor; its CPU {:.1} µs/call",
            median(py_rates.clone()),
            ratio(&py_rates, &raw_seq),
            median(py8.iter().map(|p| p.1).collect())
        );
    } else if peer {
        println!("  qemu.qmp: {} of {ROUNDS} rounds ran; no ratio", py8.len());
    }

    // In-process fake server: client cost.
    let fake = qsd.dir().join("fake.sock");
    let listener = rt
        .block_on(async { tokio::net::UnixListener::bind(&fake) })
        .expect("bind");
    rt.spawn(fake_server(listener));
    let fc = rt
        .block_on(Client::connect_unix(&fake, Options::default()))
        .expect("connect fake");
    let mut per_call = Vec::new();
    for _ in 0..ROUNDS {
        let rate = rt.block_on(client_concurrent(&fc, 20_000, 1));
        per_call.push(1e6 / rate);
    }
    let round_trip = median(per_call);
    println!("in-process instant server:");
    println!(
        "  client round trip, sequential {round_trip:>8.2} µs/call (server and socket included; no tracing subscriber)"
    );

    // Typed event decoding, one core.
    let lines: Vec<Vec<u8>> = [
        r#"{"event": "JOB_STATUS_CHANGE", "data": {"status": "running", "id": "job0"}, "timestamp": {"seconds": 1795545909, "microseconds": 123456}}"#,
        r#"{"event": "BLOCK_JOB_COMPLETED", "data": {"device": "job0", "len": 16777216, "offset": 16777216, "speed": 0, "type": "stream"}, "timestamp": {"seconds": 1795545909, "microseconds": 123457}}"#,
        r#"{"event": "DEVICE_DELETED", "data": {"device": "tab0", "path": "/machine/peripheral/tab0"}, "timestamp": {"seconds": 1795545909, "microseconds": 123458}}"#,
        r#"{"event": "STOP", "timestamp": {"seconds": 1795545909, "microseconds": 123459}}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let n = 400_000;
        let start = Instant::now();
        for i in 0..n {
            let ev = qmp_client::parse_event(&lines[i % lines.len()]).expect("decodes");
            std::hint::black_box(ev);
        }
        rates.push(n as f64 / start.elapsed().as_secs_f64());
    }
    let er = median(rates);
    println!(
        "  typed event decoding          {er:>8.0} events/s ({:.2} µs/event, one core)",
        1e6 / er
    );

    // Events through a live connection: flood from the fake peer.
    let mut per_event = Vec::new();
    for _ in 0..3 {
        let (a, b) = {
            let _g = rt.enter();
            tokio::net::UnixStream::pair().expect("pair")
        };
        let n = 100_000usize;
        let us = rt.block_on(async move {
            // The flood starts once the subscriber exists.
            let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(async move {
                let (r, mut w) = b.into_split();
                let mut r = tokio::io::BufReader::new(r);
                let g = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": []}}\n";
                w.write_all(g).await.expect("greet");
                let mut line = String::new();
                r.read_line(&mut line).await.expect("caps");
                w.write_all(b"{\"return\": {}}\n").await.expect("caps reply");
                let _ = go_rx.await;
                let ev = "{\"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"running\", \"id\": \"job0\"}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n".repeat(1000);
                for _ in 0..n / 1000 {
                    w.write_all(ev.as_bytes()).await.expect("flood");
                }
                (r, w)
            });
            let c = Client::from_unix_stream(a, Options::default()).await.expect("connect");
            let mut sub = c.events();
            let _ = go_tx.send(());
            let start = Instant::now();
            let mut got = 0;
            while got < n {
                match sub.next().await {
                    Ok(_) => got += 1,
                    Err(qmp_client::Error::EventsLost(k)) => got += k as usize,
                    Err(e) => panic!("{e}"),
                }
            }
            let el = start.elapsed();
            drop(server.await);
            el.as_secs_f64() * 1e6 / n as f64
        });
        per_event.push(us);
    }
    println!(
        "  event through a connection    {:>8.2} µs/event (read, decode, history, one subscriber)",
        median(per_event)
    );

    // Memory per idle connection.
    let before = rss_kib();
    let conns: Vec<Client> = (0..200)
        .map(|_| {
            rt.block_on(Client::connect_unix(&fake, Options::default()))
                .expect("connect")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_kib();
    println!(
        "  memory per idle connection    {:>8.1} KiB (RSS delta over {} connections, fake server's side included)",
        (after.saturating_sub(before)) as f64 / conns.len() as f64,
        conns.len()
    );
    drop(conns);

    // tracing: with no subscriber, each call site is a check of one
    // static; a call passes 3 of them (sent, received, and the event or
    // nothing). Measured directly, then with a subscriber at `debug`.
    let n = 10_000_000u64;
    let start = Instant::now();
    for i in 0..n {
        tracing::debug!(id = i, command = "query-version", "command sent");
        std::hint::black_box(i);
    }
    let disabled_ns = start.elapsed().as_secs_f64() * 1e9 / n as f64;
    println!(
        "  tracing, no subscriber: {disabled_ns:.2} ns per call site; 3 per call = {:.4}% of a round trip",
        3.0 * disabled_ns / (round_trip * 1e3) * 100.0
    );
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("subscriber");
    let mut per_call = Vec::new();
    for _ in 0..ROUNDS {
        let rate = rt.block_on(client_concurrent(&fc, 20_000, 1));
        per_call.push(1e6 / rate);
    }
    println!(
        "  client round trip with a debug-level subscriber (formatting to a sink) {:>8.2} µs/call",
        median(per_call)
    );
}

fn python_version() -> String {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches("Python ")
                .to_string()
        })
        .unwrap_or_default()
}
