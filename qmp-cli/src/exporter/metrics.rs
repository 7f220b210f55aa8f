//! The collector's snapshot as metric families, encoded by
//! `prometheus-client` as OpenMetrics text.

use prometheus_client::collector::Collector as PromCollector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use qmp_client::collector::{Collector, Health, MonitorView};

use crate::watching::ratio;

/// The metrics of every monitor now, as OpenMetrics text.
pub fn encode(collector: &Collector) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(collector.snapshot())));
    let mut out = String::new();
    // Writing into a String does not fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct Snapshot(Vec<MonitorView>);

/// The labels every series of a monitor has.
fn base(m: &MonitorView) -> Vec<(&'static str, String)> {
    vec![
        ("monitor", m.name.clone()),
        ("socket", m.path.display().to_string()),
    ]
}

fn with(
    m: &MonitorView,
    more: impl IntoIterator<Item = (&'static str, String)>,
) -> Vec<(&'static str, String)> {
    let mut l = base(m);
    l.extend(more);
    l
}

/// One family: its descriptor, then one value per label set.
fn family<V: Into<f64>>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    ty: MetricType,
    series: Vec<(Vec<(&'static str, String)>, V)>,
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut f = enc.encode_descriptor(name, help, unit.as_ref(), ty)?;
    for (labels, v) in series {
        let v: f64 = v.into();
        let e = f.encode_family(&labels)?;
        match ty {
            MetricType::Counter => ConstCounter::new(v).encode(e)?,
            _ => ConstGauge::new(v).encode(e)?,
        }
    }
    Ok(())
}

/// A `u64` counter as the float the encoder takes (exact below 2^53).
fn f(v: u64) -> f64 {
    v as f64
}

impl PromCollector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let ms = &self.0;
        let (g, c) = (MetricType::Gauge, MetricType::Counter);
        let up = |m: &MonitorView| matches!(m.health, Health::Up | Health::Slow);
        family(
            &mut enc,
            "qemu_up",
            "Whether the monitor answers (1) or is gone or not yet connected (0).",
            None,
            g,
            ms.iter()
                .map(|m| (base(m), f64::from(u8::from(up(m)))))
                .collect(),
        )?;
        family(
            &mut enc,
            "qemu_slow",
            "Whether the monitor's last poll took longer than the interval.",
            None,
            g,
            ms.iter()
                .map(|m| (base(m), f64::from(u8::from(m.health == Health::Slow))))
                .collect(),
        )?;
        family(
            &mut enc,
            "qemu_info",
            "The QEMU behind the monitor (its version), always 1.",
            None,
            g,
            ms.iter()
                .filter_map(|m| Some((with(m, [("version", m.version.clone()?)]), 1.0)))
                .collect(),
        )?;
        family(
            &mut enc,
            "qemu_polls",
            "Polls done.",
            None,
            c,
            ms.iter().map(|m| (base(m), f(m.polls))).collect(),
        )?;
        family(
            &mut enc,
            "qemu_slow_polls",
            "Polls that took longer than the interval.",
            None,
            c,
            ms.iter().map(|m| (base(m), f(m.slow_polls))).collect(),
        )?;
        family(
            &mut enc,
            "qemu_poll_duration",
            "How long the last poll's queries took.",
            Some(Unit::Seconds),
            g,
            ms.iter()
                .filter_map(|m| Some((base(m), m.last()?.took.as_secs_f64())))
                .collect(),
        )?;
        family(
            &mut enc,
            "qemu_run_state",
            "The VM's run state (query-status), 1 for the current one.",
            None,
            g,
            ms.iter()
                .filter_map(|m| {
                    let s = m.last()?.status.as_ref()?;
                    Some((with(m, [("state", s.to_string())]), 1.0))
                })
                .collect(),
        )?;
        block(&mut enc, ms)?;
        jobs_and_migration(&mut enc, ms)?;
        family(
            &mut enc,
            "qemu_vcpus",
            "vCPUs (query-cpus-fast).",
            None,
            g,
            ms.iter()
                .filter_map(|m| {
                    let s = m.last()?;
                    (!s.vcpus.is_empty()).then(|| (base(m), s.vcpus.len() as f64))
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "qemu_vcpu_info",
            "A vCPU and the host thread that runs it, always 1.",
            None,
            g,
            ms.iter()
                .flat_map(|m| {
                    m.last().into_iter().flat_map(move |s| {
                        s.vcpus.iter().map(move |v| {
                            let l = [
                                ("vcpu", v.index.to_string()),
                                ("thread_id", v.thread_id.to_string()),
                            ];
                            (with(m, l), 1.0)
                        })
                    })
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "qemu_balloon_actual",
            "The guest's memory as the balloon sets it.",
            Some(Unit::Bytes),
            g,
            ms.iter()
                .filter_map(|m| Some((base(m), m.last()?.balloon? as f64)))
                .collect(),
        )?;
        family(
            &mut enc,
            "qemu_events",
            "Events received from the monitor, by name.",
            None,
            c,
            ms.iter()
                .flat_map(|m| {
                    m.events
                        .iter()
                        .map(move |(e, n)| (with(m, [("event", e.clone())]), f(*n)))
                })
                .collect(),
        )?;
        Ok(())
    }
}

/// The block devices' counters (`query-blockstats`).
fn block(enc: &mut DescriptorEncoder<'_>, ms: &[MonitorView]) -> Result<(), std::fmt::Error> {
    type Pick = fn(&qmp_client::collector::BlockIo) -> f64;
    let families: [(&str, &str, Option<Unit>, Pick); 9] = [
        (
            "qemu_block_read",
            "Bytes read by the device.",
            Some(Unit::Bytes),
            |b| f(b.read_bytes),
        ),
        (
            "qemu_block_written",
            "Bytes written by the device.",
            Some(Unit::Bytes),
            |b| f(b.written_bytes),
        ),
        ("qemu_block_read_ops", "Read operations.", None, |b| {
            f(b.read_ops)
        }),
        ("qemu_block_write_ops", "Write operations.", None, |b| {
            f(b.write_ops)
        }),
        ("qemu_block_flush_ops", "Flush operations.", None, |b| {
            f(b.flush_ops)
        }),
        (
            "qemu_block_read_time",
            "Time spent reading.",
            Some(Unit::Seconds),
            |b| f(b.read_time_ns) / 1e9,
        ),
        (
            "qemu_block_write_time",
            "Time spent writing.",
            Some(Unit::Seconds),
            |b| f(b.write_time_ns) / 1e9,
        ),
        (
            "qemu_block_failed_read_ops",
            "Read operations that failed.",
            None,
            |b| f(b.failed_reads),
        ),
        (
            "qemu_block_failed_write_ops",
            "Write operations that failed.",
            None,
            |b| f(b.failed_writes),
        ),
    ];
    for (name, help, unit, pick) in families {
        let series = ms
            .iter()
            .flat_map(|m| {
                m.last().into_iter().flat_map(move |s| {
                    s.block.iter().map(move |b| {
                        let l = [
                            ("device", b.device.clone().unwrap_or_default()),
                            ("node", b.node.clone().unwrap_or_default()),
                        ];
                        (with(m, l), pick(b))
                    })
                })
            })
            .collect();
        family(enc, name, help, unit, MetricType::Counter, series)?;
    }
    Ok(())
}

/// Jobs (`query-jobs`) and the migration (`query-migrate`).
fn jobs_and_migration(
    enc: &mut DescriptorEncoder<'_>,
    ms: &[MonitorView],
) -> Result<(), std::fmt::Error> {
    let jobs = |pick: fn(&qmp_types::JobInfo) -> f64| {
        ms.iter()
            .flat_map(move |m| {
                m.last().into_iter().flat_map(move |s| {
                    s.jobs.iter().map(move |j| {
                        let l = [
                            ("job_id", j.id.clone()),
                            ("type", j.r#type.to_string()),
                            ("status", j.status.to_string()),
                        ];
                        (with(m, l), pick(j))
                    })
                })
            })
            .collect::<Vec<_>>()
    };
    family(
        enc,
        "qemu_job_progress_ratio",
        "A job's progress, from 0 to 1 (query-jobs).",
        None,
        MetricType::Gauge,
        jobs(|j| ratio(j.current_progress as f64, j.total_progress as f64)),
    )?;
    let migration = |pick: fn(&qmp_client::MigrationProgress) -> f64| {
        ms.iter()
            .filter_map(move |m| {
                let p = m.last()?.migration.as_ref()?;
                let status = p
                    .status
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                Some((with(m, [("status", status)]), pick(p)))
            })
            .collect::<Vec<_>>()
    };
    type Pick = fn(&qmp_client::MigrationProgress) -> f64;
    let families: [(&str, &str, Option<Unit>, Pick); 4] = [
        (
            "qemu_migration_transferred",
            "RAM sent so far by the migration.",
            Some(Unit::Bytes),
            |p| f(p.transferred),
        ),
        (
            "qemu_migration_remaining",
            "RAM the migration has still to send.",
            Some(Unit::Bytes),
            |p| f(p.remaining),
        ),
        (
            "qemu_migration_ram",
            "RAM the migration moves in all.",
            Some(Unit::Bytes),
            |p| f(p.total),
        ),
        (
            "qemu_migration_throughput_bytes_per_second",
            "The migration's throughput as QEMU measures it.",
            None,
            |p| p.mbps * 1e6 / 8.0,
        ),
    ];
    for (name, help, unit, pick) in families {
        family(enc, name, help, unit, MetricType::Gauge, migration(pick))?;
    }
    Ok(())
}
