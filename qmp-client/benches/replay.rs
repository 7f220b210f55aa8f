//! How long `MockQemu::replay_str` takes to read a libvirt `.replies`
//! file, by the file's size: linear means the time per MB stays flat
//! from 1 MB to 50 MB (issue 36, case 7: each value's line was counted
//! from the file's start, 3.1 s for 1 MB and 12.6 s for 2 MB).
//!
//! The files: libvirt's own layout (pretty JSON objects, blank lines
//! between), a `qmp_capabilities` and `query-version` exchange, then
//! `query-named-block-nodes` exchanges (a 1 KiB reply each) and a
//! `BLOCK_JOB_COMPLETED` event every tenth, to the size wanted.
//!
//! Beside it, in the same run, the old way of numbering lines (each
//! value's line counted from the start of the file) over the same
//! values' offsets, for the 1 and 2 MB files: the baseline.
//!
//! `cargo bench -p qmp-client --bench replay`; see BENCHMARKS.md.

#![allow(missing_docs, reason = "a bench binary")]

use std::time::Instant;

use qmp_client::testing::MockQemu;

const RUNS: usize = 5;
const MB: usize = 1 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A libvirt `.replies` file of at least `size` bytes.
fn file(size: usize) -> String {
    let mut t = String::from(
        "{\n  \"execute\": \"qmp_capabilities\",\n  \"id\": \"libvirt-1\"\n}\n\n\
         {\n  \"return\": {},\n  \"id\": \"libvirt-1\"\n}\n\n\
         {\n  \"execute\": \"query-version\",\n  \"id\": \"libvirt-2\"\n}\n\n\
         {\n  \"return\": {\n    \"qemu\": {\n      \"micro\": 2,\n      \"minor\": 0,\n      \
         \"major\": 10\n    },\n    \"package\": \"\"\n  },\n  \"id\": \"libvirt-2\"\n}\n\n",
    );
    let mut n = 3;
    while t.len() < size {
        t.push_str(&format!(
            "{{\n  \"execute\": \"query-named-block-nodes\",\n  \"id\": \"libvirt-{n}\"\n}}\n\n"
        ));
        if n % 10 == 0 {
            t.push_str(&format!(
                "{{\n  \"timestamp\": {{\n    \"seconds\": 1765000000,\n    \"microseconds\": {n}\n  }},\n  \
                 \"event\": \"BLOCK_JOB_COMPLETED\",\n  \"data\": {{\n    \"device\": \"j{n}\",\n    \
                 \"len\": 1048576,\n    \"offset\": 1048576,\n    \"speed\": 0,\n    \"type\": \"backup\"\n  }}\n}}\n\n"
            ));
        }
        t.push_str("{\n  \"return\": [\n");
        for node in 0..2 {
            t.push_str(&format!(
                "    {{\n      \"iops_rd\": 0,\n      \"detect_zeroes\": \"off\",\n      \"image\": {{\n        \
                 \"virtual-size\": 1048576,\n        \"filename\": \"null-co://\",\n        \"format\": \"null-co\",\n        \
                 \"dirty-flag\": false\n      }},\n      \"iops_wr\": 0,\n      \"ro\": false,\n      \
                 \"node-name\": \"n{n}-{node}\",\n      \"backing_file_depth\": 0,\n      \"drv\": \"null-co\",\n      \
                 \"iops\": 0,\n      \"bps_wr\": 0,\n      \"write_threshold\": 0,\n      \"encrypted\": false,\n      \
                 \"bps\": 0,\n      \"bps_rd\": 0,\n      \"cache\": {{\n        \"no-flush\": false,\n        \
                 \"direct\": false,\n        \"writeback\": true\n      }},\n      \"file\": \"null-co://\"\n    }}{}\n",
                if node == 0 { "," } else { "" }
            ));
        }
        t.push_str(&format!("  ],\n  \"id\": \"libvirt-{n}\"\n}}\n\n"));
        n += 1;
    }
    t
}

/// The old numbering: each value's line counted from the file's start.
fn lines_from_the_start(text: &str) -> usize {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    let mut sum = 0;
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            Some(Ok(_)) => {
                sum += 1 + text.as_bytes()[..start]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
            }
            _ => return sum,
        }
    }
}

/// The median time of `f`, in ms; what it returns is dropped by `end`,
/// untimed.
fn time<T>(f: impl Fn() -> T, end: impl Fn(T)) -> f64 {
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let out = std::hint::black_box(f());
                let ms = t.elapsed().as_secs_f64() * 1e3;
                end(out);
                ms
            })
            .collect(),
    )
}

fn main() {
    println!("libvirt .replies read by MockQemu::replay_str, median of {RUNS} runs");
    println!(
        "{:>6} {:>10} {:>10} {:>14}",
        "MB", "ms", "ms per MB", "old lines, ms"
    );
    let mut per_mb = Vec::new();
    for mb in [1, 2, 8, 50] {
        let text = file(mb * MB);
        let ms = time(
            || MockQemu::replay_str("bench.replies", &text).expect("parses"),
            // Nothing was played: verify lists it (and the drop is quiet).
            |mock| assert!(mock.verify().is_err()),
        );
        let old = if mb <= 2 {
            format!("{:.1}", time(|| lines_from_the_start(&text), drop))
        } else {
            "-".to_string()
        };
        per_mb.push(ms / mb as f64);
        println!("{mb:>6} {ms:>10.1} {:>10.2} {old:>14}", ms / mb as f64);
    }
    println!(
        "time per MB, 50 MB against 1 MB: {:.2} (1 is linear; counting from the start made it about 50)",
        per_mb[3] / per_mb[0]
    );
}
