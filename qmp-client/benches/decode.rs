//! Typed decoding against `serde_json::Value` and arcnmx's `qapi-qmp`
//! (a dev-dependency of this bench), in one run, on replies recorded from
//! real QEMU at the start:
//!
//! - `query-qmp-schema` of a guestless qemu-system-x86_64 (10.0.2);
//! - `query-named-block-nodes` of a qemu-storage-daemon holding 20
//!   `null-co` nodes;
//! - a flood of 10,000 events (lines shaped as QEMU sends them: job
//!   status changes, block job completions, STOP/RESUME, DEVICE_DELETED),
//!   through `qmp_client::parse_event`.
//!
//! "typed" is what the client does with a reply: `serde_json::from_str`
//! into the command's reply type while collecting unknown members
//! (`UnknownMembers::Report`, the default). Criterion measures each; then
//! interleaved rounds give the ratios (medians of per-round ratios) and a
//! counting allocator the bytes allocated per decode.
//!
//! `cargo bench -p qmp-client --bench decode`; see BENCHMARKS.md.

#![allow(missing_docs, reason = "a bench binary")]

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use qmp_client::launch::Launcher;
use serde_json::Value;

/// The system allocator, counting (the `stats_alloc` crate: this
/// workspace forbids `unsafe`).
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Bytes `f` allocates.
fn allocated(f: impl FnOnce()) -> usize {
    let region = stats_alloc::Region::new(GLOBAL);
    f();
    region.change().bytes_allocated
}

/// The replies, recorded from real QEMU.
struct Recorded {
    schema: String,
    nodes: String,
    events: Vec<String>,
}

fn record() -> Recorded {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sys = Launcher::system_x86_64()
            .start()
            .await
            .expect("qemu-system-x86_64 (README's test command installs it)");
        let c = qmp_client::Client::connect_unix(sys.socket(), Default::default())
            .await
            .expect("connect");
        let schema = c
            .execute_raw("query-qmp-schema", serde_json::json!({}))
            .await
            .expect("query-qmp-schema")
            .to_string();
        let qsd = Launcher::storage_daemon().start().await.expect("qsd");
        let d = qmp_client::Client::connect_unix(qsd.socket(), Default::default())
            .await
            .expect("connect");
        for i in 0..20 {
            d.execute_raw(
                "blockdev-add",
                serde_json::json!({"driver": "null-co", "node-name": format!("n{i}"),
                    "size": 1u64 << 30}),
            )
            .await
            .expect("blockdev-add");
        }
        let nodes = d
            .execute_raw("query-named-block-nodes", serde_json::json!({}))
            .await
            .expect("query-named-block-nodes")
            .to_string();
        Recorded {
            schema,
            nodes,
            events: events(10_000),
        }
    })
}

/// `n` event lines as QEMU writes them.
fn events(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let ts = format!(r#""timestamp": {{"seconds": {}, "microseconds": {}}}"#, 1_700_000_000 + i, i % 1_000_000);
            match i % 5 {
                0 => format!(r#"{{"event": "JOB_STATUS_CHANGE", "data": {{"status": "running", "id": "job{i}"}}, {ts}}}"#),
                1 => format!(r#"{{"event": "BLOCK_JOB_COMPLETED", "data": {{"device": "job{i}", "len": 1073741824, "offset": 1073741824, "speed": 0, "type": "backup"}}, {ts}}}"#),
                2 => format!(r#"{{"event": "STOP", {ts}}}"#),
                3 => format!(r#"{{"event": "RESUME", {ts}}}"#),
                _ => format!(r#"{{"event": "DEVICE_DELETED", "data": {{"path": "/machine/peripheral/d{i}/virtio-backend", "device": "d{i}"}}, {ts}}}"#),
            }
        })
        .collect()
}

/// What the client does with a reply of type `T`.
fn typed<T: serde::de::DeserializeOwned>(text: &str) -> T {
    let (r, _unknown) = qmp_types::rt::collect_unknown_members(|| serde_json::from_str::<T>(text));
    r.expect("the typed decode")
}

type Schema = Vec<qmp_types::SchemaInfo>;
type Nodes = Vec<qmp_types::BlockDeviceInfo>;

/// One way to decode one payload.
struct Way<'a> {
    name: &'static str,
    run: Box<dyn Fn() + 'a>,
}

/// The ways to decode each payload, Value first (the baseline).
fn ways(r: &Recorded) -> Vec<(&'static str, Vec<Way<'_>>)> {
    let qapi_schema_ok = serde_json::from_str::<Vec<qapi_qmp::SchemaInfo>>(&r.schema).is_ok();
    let qapi_nodes = serde_json::from_str::<Vec<qapi_qmp::BlockDeviceInfo>>(&r.nodes);
    let qapi_events_ok = r
        .events
        .iter()
        .all(|l| serde_json::from_str::<qapi_qmp::Event>(l).is_ok());
    if let Err(e) = &qapi_nodes {
        println!("note: qapi-qmp cannot decode query-named-block-nodes of 10.0.2: {e}");
    }
    let mut schema = vec![
        Way {
            name: "Value",
            run: Box::new(|| {
                black_box(serde_json::from_str::<Value>(&r.schema).expect("json"));
            }),
        },
        Way {
            name: "typed",
            run: Box::new(|| {
                black_box(typed::<Schema>(&r.schema));
            }),
        },
    ];
    if qapi_schema_ok {
        schema.push(Way {
            name: "qapi-qmp",
            run: Box::new(|| {
                black_box(
                    serde_json::from_str::<Vec<qapi_qmp::SchemaInfo>>(&r.schema).expect("qapi-qmp"),
                );
            }),
        });
    }
    let mut nodes = vec![
        Way {
            name: "Value",
            run: Box::new(|| {
                black_box(serde_json::from_str::<Value>(&r.nodes).expect("json"));
            }),
        },
        Way {
            name: "typed",
            run: Box::new(|| {
                black_box(typed::<Nodes>(&r.nodes));
            }),
        },
    ];
    if qapi_nodes.is_ok() {
        nodes.push(Way {
            name: "qapi-qmp",
            run: Box::new(|| {
                black_box(
                    serde_json::from_str::<Vec<qapi_qmp::BlockDeviceInfo>>(&r.nodes)
                        .expect("qapi-qmp"),
                );
            }),
        });
    }
    let mut events = vec![
        Way {
            name: "Value",
            run: Box::new(|| {
                for l in &r.events {
                    black_box(serde_json::from_str::<Value>(l).expect("json"));
                }
            }),
        },
        Way {
            name: "typed",
            run: Box::new(|| {
                for l in &r.events {
                    black_box(qmp_client::parse_event(l.as_bytes()).expect("event"));
                }
            }),
        },
    ];
    if qapi_events_ok {
        events.push(Way {
            name: "qapi-qmp",
            run: Box::new(|| {
                for l in &r.events {
                    black_box(serde_json::from_str::<qapi_qmp::Event>(l).expect("qapi-qmp"));
                }
            }),
        });
    } else {
        println!("note: qapi-qmp cannot decode every event line");
    }
    vec![
        ("query-qmp-schema", schema),
        ("query-named-block-nodes (20 nodes)", nodes),
        ("10,000 events", events),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let r = record();
    println!(
        "recorded: query-qmp-schema {} bytes, query-named-block-nodes {} bytes, {} event lines",
        r.schema.len(),
        r.nodes.len(),
        r.events.len()
    );
    let all = ways(&r);
    let mut c = Criterion::default().configure_from_args().sample_size(30);
    for (payload, ways) in &all {
        let mut g = c.benchmark_group(*payload);
        for w in ways {
            g.bench_function(w.name, |b| b.iter(|| (w.run)()));
        }
        g.finish();
    }
    // Ratios from interleaved rounds: each round times every way once
    // (a few milliseconds of runs each), so machine drift hits them
    // alike; each round starts with another way, so none always runs
    // after the same one (a way timed right after `Value` met the
    // allocator and caches as `Value` left them: in 125-µs timings that
    // cost the way after it a few percent).
    const ROUNDS: usize = 15;
    println!(
        "\nratios to Value (medians of {ROUNDS} interleaved rounds' ratios), bytes allocated per decode:"
    );
    for (payload, ways) in &all {
        // About 2 ms or more per timing: the block-node reply decodes in
        // 25 µs, the schema in 2 ms, the event flood in 5 ms.
        let reps = match *payload {
            p if p.starts_with("10,000") => 1,
            p if p.starts_with("query-qmp-schema") => 2,
            _ => 80,
        };
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); ways.len()];
        for round in 0..ROUNDS {
            for j in 0..ways.len() {
                let i = (round + j) % ways.len();
                let w = &ways[i];
                let t = Instant::now();
                for _ in 0..reps {
                    (w.run)();
                }
                times[i].push(t.elapsed().as_secs_f64() / reps as f64);
            }
        }
        println!("{payload}:");
        for (i, w) in ways.iter().enumerate() {
            let ratios: Vec<f64> = (0..ROUNDS).map(|k| times[i][k] / times[0][k]).collect();
            let bytes = allocated(|| (w.run)());
            let t = median(times[i].clone());
            let rate = if payload.starts_with("10,000") {
                format!(", {:.0} events/s", 10_000.0 / t)
            } else {
                String::new()
            };
            println!(
                "  {:9} {:8.3} ms  {:.3} × Value  {} bytes allocated{rate}",
                w.name,
                t * 1e3,
                median(ratios),
                bytes
            );
        }
        let at = |name: &str| ways.iter().position(|w| w.name == name);
        if let (Some(t), Some(q)) = (at("typed"), at("qapi-qmp")) {
            let ratios: Vec<f64> = (0..ROUNDS).map(|k| times[t][k] / times[q][k]).collect();
            let worst = ratios.iter().copied().fold(0.0, f64::max);
            println!(
                "  typed / qapi-qmp: {:.3} (median of rounds), {worst:.3} at worst",
                median(ratios)
            );
        }
    }
}
