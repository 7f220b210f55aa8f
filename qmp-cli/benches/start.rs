//! Process start to exit: `qmp exec query-status` against a running
//! guestless qemu-system-x86_64 (started with `qmp_client::launch`),
//! beside QEMU's Python `qmp-shell` (qemu.qmp 0.0.6, installed with pip
//! when missing) answering `query-version` from its stdin, as
//! `echo query-version | qmp-shell SOCK` does, on the same QEMU in the
//! same run, in interleaved rounds. `qmp` reads the connected QEMU's
//! schema from its cache (warm), or, emptied before each run (cold),
//! fetches and writes it. Also the floor: `/bin/true` spawned the same
//! way.
//!
//! `cargo bench -p qmp-cli --bench start` prints medians; see
//! BENCHMARKS.md.

#![allow(missing_docs, reason = "a bench binary")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qmp_client::launch::Launcher;

const QMP: &str = env!("CARGO_BIN_EXE_qmp");
const ROUNDS: usize = 7;
const RUNS: usize = 30;
const PEER_VERSION: &str = "0.0.6";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Spawns `cmd` with `input` on its stdin, waits; wall time from spawn to
/// exit, and whether it printed `expect` and exited 0.
fn timed(cmd: &mut Command, input: &str, expect: &str) -> Duration {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    if let Some(mut i) = child.stdin.take() {
        // Closing it (EOF) ends qmp-shell after the command.
        let _ = i.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().expect("wait");
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(expect),
        "{cmd:?} printed {text:?}"
    );
    took
}

/// `qmp-shell` of qemu.qmp 0.0.6: from PATH, installing it with pip if
/// missing; `None`, said why, when that fails.
fn qmp_shell() -> Option<String> {
    let version = || {
        Command::new("python3")
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('qemu.qmp'))",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if version().as_deref() != Some(PEER_VERSION) {
        eprintln!("installing qemu.qmp=={PEER_VERSION} with pip for the comparison");
        let ok = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                &format!("qemu.qmp=={PEER_VERSION}"),
            ])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("pip install qemu.qmp=={PEER_VERSION} failed: no comparison");
            return None;
        }
    }
    let found = Command::new("sh")
        .args(["-c", "command -v qmp-shell"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if found.is_none() {
        eprintln!("qmp-shell is not on PATH after installing qemu.qmp: no comparison");
    }
    found
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let qemu = Launcher::system_x86_64()
        .guestless()
        .start_timeout(Duration::from_secs(60))
        .start_blocking()
        .expect("qemu-system-x86_64 starts (cargo xtask test installs it)");
    let sock: &Path = qemu.socket();
    let shell = qmp_shell();
    // The schema cache of `qmp exec`: warm (one file for this QEMU,
    // read on every run) and cold (emptied before each run: fetched from
    // QEMU, then written).
    let cache = tests::TempDir::new("qmp-bench-cache").expect("temp dir");
    let exec = |dir: &Path| {
        timed(
            Command::new(QMP)
                .env("QMP_CACHE_DIR", dir)
                .arg("--socket")
                .arg(sock)
                .args(["exec", "--raw", "query-status"]),
            "",
            "\"running\"",
        )
    };
    let ours = || exec(cache.path());
    let cold_dir = tests::TempDir::new("qmp-bench-cold").expect("temp dir");
    let cold = || {
        for e in std::fs::read_dir(cold_dir.path()).expect("dir").flatten() {
            let _ = std::fs::remove_file(e.path());
        }
        exec(cold_dir.path())
    };
    let theirs = |path: &str| timed(Command::new(path).arg(sock), "query-version\n", "\"qemu\"");
    let floor = || timed(&mut Command::new("true"), "", "");
    // Warm the page cache.
    for _ in 0..5 {
        ours();
    }
    let (mut q, mut p, mut f, mut c) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let mut qr = Vec::new();
        let mut fr = Vec::new();
        let mut cr = Vec::new();
        for _ in 0..RUNS {
            qr.push(ms(ours()));
            fr.push(ms(floor()));
            cr.push(ms(cold()));
        }
        let (qm, fm, cm) = (median(qr), median(fr), median(cr));
        q.push(qm);
        f.push(fm);
        c.push(cm);
        let pm = shell.as_deref().map(|s| {
            // Python start-up is slow: fewer runs per round.
            median((0..5).map(|_| ms(theirs(s))).collect())
        });
        if let Some(pm) = pm {
            p.push(pm);
        }
        println!(
            "round {round}: qmp exec query-status {qm:.2} ms (cold cache {cm:.2} ms), spawn floor {fm:.2} ms{}",
            pm.map(|pm| format!(", qmp-shell {pm:.1} ms"))
                .unwrap_or_default()
        );
    }
    let (qm, fm, cm) = (median(q), median(f), median(c));
    println!("\nmedians of {ROUNDS} rounds ({RUNS} runs each; qmp-shell 5 runs each):");
    println!(
        "  qmp exec query-status (start to exit, schema cache warm): {qm:.2} ms (goal: <= 5 ms)"
    );
    println!("  the same, cache cold (query-qmp-schema fetched, written): {cm:.2} ms");
    println!("  spawn floor (/bin/true):               {fm:.2} ms");
    if !p.is_empty() {
        let pm = median(p);
        println!("  echo query-version | qmp-shell SOCK:   {pm:.1} ms (qemu.qmp {PEER_VERSION})");
        println!("  qmp-shell / qmp: {:.0}x", pm / qm);
    }
    drop(qemu);
}
