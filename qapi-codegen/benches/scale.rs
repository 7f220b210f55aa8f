//! How generation grows with the schema: synthetic schemas of 1,000 to
//! 20,000 documented commands (in one module, the worst case for a
//! generator that works module by module), each run in a child process so
//! that its peak memory (`VmHWM`) is its own. Prints, per size: load +
//! check time, generation time, peak RSS after loading and after
//! generating, and time and memory per command (flat = linear growth).
//!
//! `cargo bench -p qapi-codegen --bench scale`; see BENCHMARKS.md.

#![allow(missing_docs, reason = "a bench binary")]

use std::time::Instant;

use qapi_gen::Schema;
use qapi_gen::rust::{Options, generate};

/// The `qapi-codegen` binary's allocator (feature `mimalloc`, on by
/// default), so the figures are the binary's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ALLOCATOR: &str = if cfg!(feature = "mimalloc") {
    "mimalloc, as the qapi-codegen binary"
} else {
    "the system allocator"
};

const SIZES: [usize; 5] = [1000, 2500, 5000, 10_000, 20_000];
const ROUNDS: usize = 3;

fn schema(n: usize) -> String {
    let mut s = String::from("{ 'struct': 'Ret', 'data': { 'x': 'int' } }\n");
    for i in 0..n {
        s.push_str(&format!(
            "##\n# @cmd-{i}:\n#\n# Command {i} does things.\n#\n# @arg: an argument\n#\n# @opt: optional\n#\n# Since: 1.0\n##\n{{ 'command': 'cmd-{i}', 'data': {{ 'arg': 'int', '*opt': 'str' }}, 'returns': 'Ret' }}\n"
        ));
    }
    s
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The child: load, check, generate; print `load_ms gen_ms hwm_load hwm_gen bytes`.
fn child(path: &str) {
    let t = Instant::now();
    let s = Schema::load(path).expect("valid schema");
    let load = t.elapsed();
    let hwm_load = vm_hwm_kib();
    let t = Instant::now();
    let files = generate(&s, &Options::default()).expect("generates");
    let gen_time = t.elapsed();
    let bytes: usize = files.iter().map(|f| f.contents.len()).sum();
    println!(
        "{} {} {} {} {bytes}",
        load.as_secs_f64() * 1e3,
        gen_time.as_secs_f64() * 1e3,
        hwm_load,
        vm_hwm_kib()
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1]);
        return;
    }
    let dir = std::env::temp_dir().join(format!("qapi-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let exe = std::env::current_exe().expect("exe");
    println!(
        "generation of N documented commands in one module ({ALLOCATOR}; medians of {ROUNDS} runs, each in its own process):"
    );
    println!(
        "{:>7} {:>10} {:>10} {:>12} {:>12} {:>11} {:>10} {:>10}",
        "N", "load ms", "gen ms", "RSS load MiB", "RSS gen MiB", "output MiB", "µs/cmd", "KiB/cmd"
    );
    for n in SIZES {
        let path = dir.join(format!("n{n}.json"));
        std::fs::write(&path, schema(n)).expect("write");
        let mut rows = Vec::new();
        for _ in 0..ROUNDS {
            let out = std::process::Command::new(&exe)
                .args(["--child", &path.to_string_lossy()])
                .output()
                .expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            let v: Vec<f64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            assert_eq!(v.len(), 5, "child said: {text}");
            rows.push(v);
        }
        let col = |i: usize| median(rows.iter().map(|r| r[i]).collect());
        let (load, gen_ms, hwm_l, hwm_g, bytes) = (col(0), col(1), col(2), col(3), col(4));
        println!(
            "{n:>7} {load:>10.1} {gen_ms:>10.1} {:>12.1} {:>12.1} {:>11.1} {:>10.1} {:>10.1}",
            hwm_l / 1024.0,
            hwm_g / 1024.0,
            bytes / 1048576.0,
            (load + gen_ms) * 1e3 / n as f64,
            hwm_g / n as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
