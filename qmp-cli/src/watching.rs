//! What `qmp top` and `qmp exporter` share: the monitors to watch, from
//! the command line (sockets and directories, and `--socket`), and the
//! collector over them.

use std::path::PathBuf;
use std::time::Duration;

use qmp_client::collector::{Collector, CollectorOptions, Queries, Source};

use crate::connect::Target;
use crate::error::{CliError, Result};

/// `done` of `total`, from 0 to 1 (0 while the total is unknown): a job's
/// or a migration's progress, as both tools show it.
pub fn ratio(done: f64, total: f64) -> f64 {
    if total > 0.0 { done / total } else { 0.0 }
}

/// The monitors to watch and how often.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// QMP sockets, and directories whose sockets come and go (each
    /// looked at every interval); `--socket` counts too. A `qmp proxy`'s
    /// socket works as well, beside other clients.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Time between polls of each monitor, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub interval_ms: u64,
    /// The queries of a poll, of: status, block, jobs, migration, vcpus,
    /// balloon (each only where the QEMU has it).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "status,block,jobs,migration,vcpus,balloon"
    )]
    pub queries: Vec<String>,
}

/// The queries named.
fn queries(names: &[String]) -> Result<Queries> {
    let mut q = Queries::none();
    for n in names {
        let on = match n.trim() {
            "status" => &mut q.status,
            "block" => &mut q.block,
            "jobs" => &mut q.jobs,
            "migration" => &mut q.migration,
            "vcpus" => &mut q.vcpus,
            "balloon" => &mut q.balloon,
            other => {
                return Err(CliError::Usage(format!(
                    "--queries: unknown query '{other}' (status, block, jobs, migration, vcpus, balloon)"
                )));
            }
        };
        *on = true;
    }
    Ok(q)
}

impl WatchArgs {
    /// The collector over the monitors named (started in the runtime),
    /// keeping `keep` samples of each.
    pub fn start(&self, target: &Target, keep: usize) -> Result<Collector> {
        let mut sources = Vec::new();
        for p in self.paths.iter().chain(&target.socket) {
            sources.push(if p.is_dir() {
                Source::Directory(p.clone())
            } else {
                Source::Socket(p.clone())
            });
        }
        if sources.is_empty() {
            return Err(CliError::Usage(
                "name the monitors to watch: sockets or directories of sockets (or --socket)"
                    .into(),
            ));
        }
        let interval = Duration::from_millis(self.interval_ms.max(10));
        Ok(Collector::start(
            sources,
            CollectorOptions::default()
                .with_interval(interval)
                .with_queries(queries(&self.queries)?)
                .with_keep(keep),
        ))
    }
}
