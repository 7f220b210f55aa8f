//! Watching 1,000 monitors (`QMP_BENCH_MONITORS=N`) polled every second:
//! `qmp exporter` over guestless qemu-system-x86_64 processes (paused,
//! one disk each; `QMP_BENCH_QEMUS=K`, 4 by default) that serve N/K QMP
//! monitors each, every monitor polled with the collector's
//! six queries (`query-status`, `-blockstats`, `-jobs`, `-migrate`,
//! `-cpus-fast`, `-balloon`; the last answered with an error: no
//! balloon device).
//!
//! Measured over a window after a warm-up: the exporter's CPU per
//! monitor per poll and its memory per monitor (RSS over one watching
//! nothing), a scrape's time and size (HTTP GET of `/metrics`, one per
//! second), and what QEMU spends: its CPU over the same window, less
//! its idle CPU measured first, per poll. Beside it, in the same run,
//! the peer a user writes today: a Python script with qemu.qmp (0.0.6,
//! asyncio; the queries the same, one client per monitor) polling the
//! same monitors every second, measured the same way.
//!
//! `cargo bench -p qmp-cli --bench exporter`; see BENCHMARKS.md.

#![allow(missing_docs, reason = "a bench binary")]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const QMP: &str = env!("CARGO_BIN_EXE_qmp");
const WARM: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_secs(15);

/// A process this bench started, killed by its PID when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn monitors() -> usize {
    std::env::var("QMP_BENCH_MONITORS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's name, which ends at the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 here.
    let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0.0)
}

fn qemus() -> usize {
    std::env::var("QMP_BENCH_QEMUS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
}

/// QEMU number `q` with `n` monitors in `dir/socks` (`q0-m0.sock` ...),
/// paused, one disk.
fn qemu(dir: &Path, q: usize, n: usize) -> Proc {
    let img = dir.join(format!("disk{q}.img"));
    std::fs::write(&img, vec![0u8; 1 << 20]).expect("disk image");
    let mut c = Command::new("qemu-system-x86_64");
    c.args([
        "-nodefaults",
        "-machine",
        "accel=tcg",
        "-m",
        "128",
        "-display",
        "none",
        "-S",
    ])
    .args([
        "-drive",
        &format!("if=none,id=drive0,format=raw,file={}", img.display()),
    ])
    .args(["-device", "virtio-blk-pci,drive=drive0,id=disk0"]);
    let socks = dir.join("socks");
    std::fs::create_dir_all(&socks).expect("dir");
    for i in 0..n {
        c.arg("-qmp").arg(format!(
            "unix:{}/q{q}-m{i}.sock,server=on,wait=off",
            socks.display()
        ));
    }
    let p = Proc(
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-system-x86_64 runs"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mine = |d: std::fs::ReadDir| {
        d.flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("q{q}-"))
            })
            .count()
    };
    while std::fs::read_dir(&socks).map_or(0, mine) < n {
        assert!(Instant::now() < deadline, "QEMU's sockets never all came");
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

fn get(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut r = String::new();
    s.read_to_string(&mut r).expect("reply");
    r.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The sum over monitors of a metric's samples in a scrape.
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// `qmp exporter` over `dir`: the process and its address.
fn exporter(dir: &Path) -> (Proc, String) {
    let mut child = Command::new(QMP)
        .args([
            "exporter",
            "--listen",
            "127.0.0.1:0",
            "--interval-ms",
            "1000",
        ])
        .arg(dir)
        .env_remove("QMP_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp runs");
    let mut line = String::new();
    BufReader::new(child.stderr.take().expect("stderr"))
        .read_line(&mut line)
        .expect("its address");
    let addr = line
        .trim()
        .split("http://")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics"))
        .expect("an address")
        .to_string();
    (Proc(child), addr)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The Python peer: every `interval`, the six queries on each monitor;
/// prints the polls done when it gets a line on stdin.
const PEER: &str = r#"
import asyncio, glob, sys
from qemu.qmp import QMPClient
QUERIES = ["query-status", "query-blockstats", "query-jobs", "query-migrate",
           "query-cpus-fast", "query-balloon"]
polls = 0
async def watch(path):
    global polls
    c = QMPClient("peer")
    await c.connect(path)
    while True:
        for q in QUERIES:
            try:
                await c.execute(q)
            except Exception:
                pass
        polls += 1
        await asyncio.sleep(1.0)
async def main():
    paths = sorted(glob.glob(sys.argv[1] + "/*.sock"))
    tasks = [asyncio.create_task(watch(p)) for p in paths]
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        print(polls, flush=True)
asyncio.run(main())
"#;

struct Figures {
    cpu_us_per_poll: f64,
    rss_kib_per_monitor: f64,
    qemu_us_per_poll: f64,
    polls_per_sec: f64,
}

fn main() {
    let (n, k) = (monitors(), qemus().max(1));
    let dir = tempfile::tempdir().expect("temp dir");
    let qs: Vec<Proc> = (0..k).map(|q| qemu(dir.path(), q, n / k)).collect();
    let n = n / k * k;
    let pids: Vec<u32> = qs.iter().map(|q| q.0.id()).collect();
    let qemu_cpu = || pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    let socks = dir.path().join("socks");

    // QEMU alone, paused: its idle CPU.
    let c0 = qemu_cpu();
    std::thread::sleep(WINDOW);
    let idle = (qemu_cpu() - c0) / WINDOW.as_secs_f64();
    println!(
        "{k} QEMUs with {} monitors each, idle: {:.1} ms of CPU per second in all",
        n / k,
        idle * 1e3
    );

    // The exporter watching nothing: its own memory.
    let empty = tempfile::tempdir().expect("temp dir");
    let (e0, _) = exporter(empty.path());
    std::thread::sleep(Duration::from_secs(2));
    let base_rss = rss_kib(e0.0.id());
    drop(e0);

    // The exporter over the N monitors.
    let (e, addr) = exporter(&socks);
    let epid = e.0.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let up = sum(&get(&addr), "qemu_up");
        if up as usize >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {up} of {n} monitors came up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(WARM);
    let (ec0, qc0, p0, t0) = (
        cpu_secs(epid),
        qemu_cpu(),
        sum(&get(&addr), "qemu_polls_total"),
        Instant::now(),
    );
    let (mut scrape_ms, mut sizes) = (Vec::new(), Vec::new());
    while t0.elapsed() < WINDOW {
        let t = Instant::now();
        let body = get(&addr);
        scrape_ms.push(t.elapsed().as_secs_f64() * 1e3);
        sizes.push(body.len() as f64);
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
    let secs = t0.elapsed().as_secs_f64();
    let polls = sum(&get(&addr), "qemu_polls_total") - p0;
    let ours = Figures {
        cpu_us_per_poll: (cpu_secs(epid) - ec0) / polls * 1e6,
        rss_kib_per_monitor: (rss_kib(epid) - base_rss) / n as f64,
        qemu_us_per_poll: ((qemu_cpu() - qc0) - idle * secs) / polls * 1e6,
        polls_per_sec: polls / secs,
    };
    let slow = sum(&get(&addr), "qemu_slow_polls_total");
    drop(e);
    println!(
        "qmp exporter: {:.0} polls/s ({} monitors at 1 s), {:.1} µs of CPU per monitor per poll, {:.1} KiB per monitor (RSS {:.0} MiB over {:.0} MiB watching nothing), {slow} slow polls",
        ours.polls_per_sec,
        n,
        ours.cpu_us_per_poll,
        ours.rss_kib_per_monitor,
        (base_rss + ours.rss_kib_per_monitor * n as f64) / 1024.0,
        base_rss / 1024.0
    );
    println!(
        "a scrape: median {:.1} ms, {:.0} KiB ({} scrapes)",
        median(scrape_ms.clone()),
        median(sizes) / 1024.0,
        scrape_ms.len()
    );
    println!(
        "QEMU's monitors: {:.1} µs of CPU per poll (6 queries), idle CPU taken out; the QEMUs were busy {:.0}% of a core each",
        ours.qemu_us_per_poll,
        ours.qemu_us_per_poll * ours.polls_per_sec / 1e6 / k as f64 * 100.0
    );

    // The peer.
    let script = dir.path().join("peer.py");
    std::fs::write(&script, PEER).expect("script");
    let mut peer = Command::new("python3");
    peer.arg(&script)
        .arg(&socks)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let Ok(child) = peer.spawn() else {
        println!("python3 did not start: no peer");
        return;
    };
    let mut p = Proc(child);
    let ppid = p.0.id();
    let mut stdin = p.0.stdin.take().expect("stdin");
    let mut out = BufReader::new(p.0.stdout.take().expect("stdout"));
    let mut ask = |stdin: &mut std::process::ChildStdin| -> f64 {
        let _ = writeln!(stdin);
        let mut l = String::new();
        let _ = out.read_line(&mut l);
        l.trim().parse().unwrap_or(f64::NAN)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while ask(&mut stdin) < n as f64 {
        if Instant::now() > deadline {
            println!("the Python peer never polled every monitor: no figures");
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(WARM);
    let (pc0, qc0, pp0, t0) = (cpu_secs(ppid), qemu_cpu(), ask(&mut stdin), Instant::now());
    let peer_rss0 = rss_kib(ppid);
    std::thread::sleep(WINDOW);
    let secs = t0.elapsed().as_secs_f64();
    let polls = ask(&mut stdin) - pp0;
    let theirs = Figures {
        cpu_us_per_poll: (cpu_secs(ppid) - pc0) / polls * 1e6,
        rss_kib_per_monitor: peer_rss0.max(rss_kib(ppid)) / n as f64,
        qemu_us_per_poll: ((qemu_cpu() - qc0) - idle * secs) / polls * 1e6,
        polls_per_sec: polls / secs,
    };
    println!(
        "Python (qemu.qmp) peer: {:.0} polls/s, {:.1} µs of CPU per monitor per poll, {:.1} KiB per monitor (its whole RSS), QEMU {:.1} µs per poll",
        theirs.polls_per_sec,
        theirs.cpu_us_per_poll,
        theirs.rss_kib_per_monitor,
        theirs.qemu_us_per_poll
    );
    println!(
        "ratios: CPU per poll {:.1}x less for qmp exporter; memory per monitor {:.1}x less",
        theirs.cpu_us_per_poll / ours.cpu_us_per_poll,
        theirs.rss_kib_per_monitor / ours.rss_kib_per_monitor
    );
    drop(stdin);
}
