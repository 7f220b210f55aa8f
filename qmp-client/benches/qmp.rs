//! Client throughput against a private `qemu-storage-daemon`, each figure
//! beside a raw floor measured in the same run on the same kind of socket
//! (write one line, read one line; no JSON decoding), and client cost
//! against an in-process fake server that answers instantly.
//!
//! `cargo bench -p qmp-client --bench qmp` prints medians of several
//! rounds and the ratios; see BENCHMARKS.md.

#![allow(missing_docs, reason = "a bench binary")]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream as StdUnix;
use std::time::{Duration, Instant};

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
    for i in 0..n {
        w.write_all(format!("{{\"execute\":\"query-version\",\"id\":{i}}}\n").as_bytes())
            .expect("write");
        line.clear();
        r.read_line(&mut line).expect("read");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Raw floor, pipelined: up to `window` commands in flight (QEMU reads at
/// most 8 queued ones).
fn raw_pipelined(path: &std::path::Path, n: usize, window: usize) -> f64 {
    let (mut r, w) = raw_connect(path);
    let start = Instant::now();
    let mut w = w;
    let mut sent = 0;
    let mut got = 0;
    let mut line = String::new();
    while got < n {
        while sent < n && sent - got < window {
            w.write_all(format!("{{\"execute\":\"query-version\",\"id\":{sent}}}\n").as_bytes())
                .expect("write");
            sent += 1;
        }
        line.clear();
        r.read_line(&mut line).expect("read");
        got += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
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
                let id = line
                    .rfind("\"id\":")
                    .map(|i| line[i + 5..].trim_end().trim_end_matches('}').to_string());
                let reply = match id {
                    Some(id) => format!(
                        "{{\"return\": {{\"qemu\": {{\"micro\": 2, \"minor\": 0, \"major\": 10}}, \"package\": \"\"}}, \"id\": {id}}}\n"
                    ),
                    None => "{\"return\": {}}\n".to_string(),
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
    let qsd = tests::Qemu::storage_daemon().expect("start qemu-storage-daemon");
    let path = qsd.socket.clone();
    // The daemon's monitor serves one connection at a time: each
    // measurement connects, measures and hangs up, interleaved by round.
    let mut raw_seq = Vec::new();
    let mut cli_seq = Vec::new();
    let mut raw_pipe = Vec::new();
    let mut cli8 = Vec::new();
    let mut cli64 = Vec::new();
    for _ in 0..ROUNDS {
        raw_seq.push(raw_sequential(&path, CALLS));
        raw_pipe.push(raw_pipelined(&path, CALLS, 8));
        let client = rt
            .block_on(Client::connect_unix(&path, Options::default()))
            .expect("connect");
        cli_seq.push(rt.block_on(client_concurrent(&client, CALLS, 1)));
        cli8.push(rt.block_on(client_concurrent(&client, CALLS, 8)));
        cli64.push(rt.block_on(client_concurrent(&client, CALLS, 64)));
        client.close();
        drop(client);
        // Let the daemon notice the hang-up before the next raw connect.
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ratios within each round (same machine state), then medians.
    let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    let (q_seq, q8, q64) = (
        ratio(&cli_seq, &raw_seq),
        ratio(&cli8, &raw_pipe),
        ratio(&cli64, &raw_pipe),
    );
    let pipe_gain = ratio(&raw_pipe, &raw_seq);
    let (rs, cs, rp, c8, c64) = (
        median(raw_seq),
        median(cli_seq),
        median(raw_pipe),
        median(cli8),
        median(cli64),
    );
    println!(
        "qemu-storage-daemon 10.0.2, query-version, {CALLS} calls x {ROUNDS} rounds (medians; ratios are medians of per-round ratios):"
    );
    println!("  raw floor, sequential        {rs:>9.0} calls/s");
    println!("  client, sequential           {cs:>9.0} calls/s   ratio {q_seq:.3}");
    println!(
        "  raw floor, pipelined (8)     {rp:>9.0} calls/s   ({pipe_gain:.2} x sequential floor)"
    );
    println!("  client, 8 concurrent         {c8:>9.0} calls/s   ratio to pipelined floor {q8:.3}");
    println!(
        "  client, 64 concurrent        {c64:>9.0} calls/s   ratio to pipelined floor {q64:.3}"
    );

    // In-process fake server: client cost.
    let dir = tests::TempDir::new("bench").expect("dir");
    let fake = dir.path().join("fake.sock");
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
    println!("in-process instant server:");
    println!(
        "  client round trip, sequential {:>8.2} µs/call (server and socket included)",
        median(per_call)
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
            let server = tokio::spawn(async move {
                let (r, mut w) = b.into_split();
                let mut r = tokio::io::BufReader::new(r);
                let g = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": []}}\n";
                w.write_all(g).await.expect("greet");
                let mut line = String::new();
                r.read_line(&mut line).await.expect("caps");
                w.write_all(b"{\"return\": {}}\n").await.expect("caps reply");
                let ev = "{\"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"running\", \"id\": \"job0\"}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n".repeat(1000);
                for _ in 0..n / 1000 {
                    w.write_all(ev.as_bytes()).await.expect("flood");
                }
                (r, w)
            });
            let c = Client::from_unix_stream(a, Options::default()).await.expect("connect");
            let mut sub = c.events();
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
}
