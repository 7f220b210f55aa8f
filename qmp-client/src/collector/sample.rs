//! What one poll of a monitor found (a [`Sample`]), and what two
//! samples say together (an [`IoRate`]).

use std::time::{Duration, SystemTime};

use qmp_types::{BlockStats, JobInfo, RunState};

use crate::migration::MigrationProgress;

/// One poll of one monitor: what each query that ran answered (`None`,
/// or empty, for a query not asked: turned off, or one this QEMU lacks,
/// as the storage daemon lacks `query-status`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Sample {
    /// When the poll began.
    pub at: Option<SystemTime>,
    /// How long the batch of queries took.
    pub took: Duration,
    /// `query-status`: the run state.
    pub status: Option<RunState>,
    /// `query-blockstats` (with `query-nodes`): per device and node.
    pub block: Vec<BlockIo>,
    /// `query-jobs`.
    pub jobs: Vec<JobInfo>,
    /// `query-migrate` (`None` also before any migration).
    pub migration: Option<MigrationProgress>,
    /// `query-cpus-fast`: the vCPUs and their host threads.
    pub vcpus: Vec<Vcpu>,
    /// `query-balloon`: the guest's memory, in bytes (`None` without a
    /// balloon device).
    pub balloon: Option<i64>,
}

/// I/O counters of one block device or node (`query-blockstats`), as
/// QEMU counts them since the node was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockIo {
    /// The device's name (its `-drive` id or qdev id), if it has one.
    pub device: Option<String>,
    /// The node's name, if it has one.
    pub node: Option<String>,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub written_bytes: u64,
    /// Read operations.
    pub read_ops: u64,
    /// Write operations.
    pub write_ops: u64,
    /// Flush operations.
    pub flush_ops: u64,
    /// Time spent reading, in nanoseconds.
    pub read_time_ns: u64,
    /// Time spent writing, in nanoseconds.
    pub write_time_ns: u64,
    /// Time spent flushing, in nanoseconds.
    pub flush_time_ns: u64,
    /// Reads that failed.
    pub failed_reads: u64,
    /// Writes that failed.
    pub failed_writes: u64,
}

impl BlockIo {
    /// The name it is shown by: the device's, else the node's.
    pub fn name(&self) -> &str {
        self.device
            .as_deref()
            .filter(|d| !d.is_empty())
            .or(self.node.as_deref())
            .unwrap_or("?")
    }

    pub(crate) fn from_stats(s: &BlockStats) -> BlockIo {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let st = &s.stats;
        BlockIo {
            device: s
                .device
                .clone()
                .filter(|d| !d.is_empty())
                .or(s.qdev.clone()),
            node: s.node_name.clone(),
            read_bytes: n(st.rd_bytes),
            written_bytes: n(st.wr_bytes),
            read_ops: n(st.rd_operations),
            write_ops: n(st.wr_operations),
            flush_ops: n(st.flush_operations),
            read_time_ns: n(st.rd_total_time_ns),
            write_time_ns: n(st.wr_total_time_ns),
            flush_time_ns: n(st.flush_total_time_ns),
            failed_reads: n(st.failed_rd_operations),
            failed_writes: n(st.failed_wr_operations),
        }
    }
}

/// A vCPU and the host thread that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Vcpu {
    /// Its index.
    pub index: i64,
    /// The host thread's id.
    pub thread_id: i64,
}

/// I/O between two samples, per second, summed over every device (or
/// of one device: [`IoRate::of_device`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct IoRate {
    /// Read operations per second.
    pub read_iops: f64,
    /// Write operations per second.
    pub write_iops: f64,
    /// Bytes read per second.
    pub read_bps: f64,
    /// Bytes written per second.
    pub write_bps: f64,
    /// Mean time of a read completed between the samples, in
    /// milliseconds (0 without reads).
    pub read_latency_ms: f64,
    /// Mean time of a write completed between the samples, in
    /// milliseconds (0 without writes).
    pub write_latency_ms: f64,
}

impl IoRate {
    /// The rate of every device with a name (the guest's devices; the
    /// storage daemon's named nodes), from `before` to `after`.
    pub fn between(before: &Sample, after: &Sample) -> IoRate {
        Self::of(before, after, None)
    }

    /// The rate of the device or node named `name`.
    pub fn of_device(before: &Sample, after: &Sample, name: &str) -> IoRate {
        Self::of(before, after, Some(name))
    }

    fn of(before: &Sample, after: &Sample, name: Option<&str>) -> IoRate {
        let secs = match (before.at, after.at) {
            (Some(b), Some(a)) => a.duration_since(b).unwrap_or_default().as_secs_f64(),
            _ => 0.0,
        };
        if secs <= 0.0 {
            return IoRate::default();
        }
        let pick = |s: &Sample| -> BlockIo {
            let mut sum = BlockIo::default();
            for b in s
                .block
                .iter()
                .filter(|b| name.is_none_or(|n| b.name() == n))
            {
                sum.read_ops += b.read_ops;
                sum.write_ops += b.write_ops;
                sum.read_bytes += b.read_bytes;
                sum.written_bytes += b.written_bytes;
                sum.read_time_ns += b.read_time_ns;
                sum.write_time_ns += b.write_time_ns;
            }
            sum
        };
        let (b, a) = (pick(before), pick(after));
        // A counter that went back (a node re-opened) counts from zero.
        let delta = |x: u64, y: u64| (if y >= x { y - x } else { y }) as f64;
        let d = |x: u64, y: u64| delta(x, y) / secs;
        let per_op = |t0: u64, t1: u64, o0: u64, o1: u64| {
            let ops = delta(o0, o1);
            if ops > 0.0 {
                delta(t0, t1) / ops / 1e6
            } else {
                0.0
            }
        };
        IoRate {
            read_iops: d(b.read_ops, a.read_ops),
            write_iops: d(b.write_ops, a.write_ops),
            read_bps: d(b.read_bytes, a.read_bytes),
            write_bps: d(b.written_bytes, a.written_bytes),
            read_latency_ms: per_op(b.read_time_ns, a.read_time_ns, b.read_ops, a.read_ops),
            write_latency_ms: per_op(b.write_time_ns, a.write_time_ns, b.write_ops, a.write_ops),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(secs: u64, ops: u64, time_ns: u64, bytes: u64) -> Sample {
        Sample {
            at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
            block: vec![BlockIo {
                device: Some("drive0".into()),
                read_ops: ops,
                read_time_ns: time_ns,
                read_bytes: bytes,
                ..BlockIo::default()
            }],
            ..Sample::default()
        }
    }

    #[test]
    fn a_rate_is_per_second_and_a_latency_per_operation() {
        let (a, b) = (
            sample(10, 100, 1_000_000, 4096),
            sample(12, 120, 11_000_000, 8192),
        );
        let r = IoRate::between(&a, &b);
        assert_eq!((r.read_iops, r.read_bps), (10.0, 2048.0));
        assert_eq!(r.read_latency_ms, 0.5);
        assert_eq!(r.write_latency_ms, 0.0);
        assert_eq!(IoRate::of_device(&a, &b, "other"), IoRate::default());
        // A counter that went back (the node re-opened) counts from zero.
        let r = IoRate::between(&b, &sample(13, 5, 0, 0));
        assert_eq!(r.read_iops, 5.0);
        // No time between them: no rate.
        assert_eq!(IoRate::between(&a, &a), IoRate::default());
    }
}
