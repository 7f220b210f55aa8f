//! `qmp`: a command line for QEMU's QMP. Commands are checked against
//! the QAPI schema (through `qmp-types`' generated dispatch) before
//! anything is sent; replies and events are decoded into their types.

mod args;
mod connect;
mod dispatch;
mod error;
mod events;
mod exec;
mod exporter;
mod job;
mod known;
mod migrate;
mod nav;
mod proxy;
mod schema;
mod shell;
mod top;
mod watching;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::connect::Target;
use crate::error::{CliError, Result};

const AFTER_HELP: &str = "\
Where to connect: --socket PATH (or QMP_SOCKET), --tcp HOST:PORT, or --spawn
to start a private qemu-storage-daemon (or --spawn qemu-system-x86_64) for
this run only.

Examples:
  qmp --socket /run/vm.qmp exec query-status
  qmp -s vm.qmp exec blockdev-add driver=null-co node-name=n0 size=1048576
  qmp -s vm.qmp exec device_del '{\"id\": \"net0\"}'
  qmp -s vm.qmp events --follow --filter JOB_STATUS_CHANGE
  qmp -s vm.qmp job watch backup0
  qmp -s vm.qmp job run blockdev-backup job-id=b0 device=src target=dst sync=full
  qmp --spawn shell
  qmp --spawn=qemu-system-x86_64 exec query-machines

Exit codes: 0 done; 1 QEMU answered with an error (or a job failed, or
`conform` found differences); 2 bad input, nothing was sent; 3 QEMU could
not be reached or went away; 4 anything else.";

/// A command line for QEMU's QMP, checked against the QAPI schema.
#[derive(Debug, Parser)]
#[command(name = "qmp", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one command and print its reply (pretty JSON). Its arguments
    /// are checked against the schema first: an unknown command, argument
    /// or a value of the wrong type is refused with the member's path,
    /// and nothing is sent.
    #[command(
        after_help = "Examples:\n  qmp -s vm.qmp exec query-status\n  qmp -s vm.qmp exec blockdev-add driver=qcow2 node-name=disk file.driver=file file.filename=/tmp/d.qcow2\n  qmp -s vm.qmp exec block-job-set-speed device=job0 speed=0\n  qmp exec --dry-run device_del id=net0"
    )]
    Exec(exec::ExecArgs),
    /// Print QEMU's events as JSON lines (`timestamp`, `time`, `event`,
    /// `data`).
    Events(events::EventsArgs),
    /// An interactive prompt: Tab completion of commands and argument
    /// names, `help NAME`, `hmp LINE`, history, events between prompts.
    Shell(shell::ShellArgs),
    /// Follow QEMU's jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// Start a live migration and follow it to its end (`qmp -s src.qmp
    /// migrate unix:/tmp/mig.sock`; on the destination, started with
    /// `-incoming defer`, `migrate --incoming URI` first); exit code 1
    /// when it failed or was cancelled.
    Migrate(migrate::MigrateArgs),
    /// Share QEMU's monitor: serve any number of clients on a socket of
    /// the proxy's own (`qmp -s vm.qmp proxy --listen shared.qmp`), each
    /// with its own greeting, its replies and every event; read-only mode
    /// and a log of who sent what by option. Exit code 3 when QEMU goes
    /// (unless `--wait`).
    Proxy(proxy::ProxyArgs),
    /// A dashboard in the terminal (`qmp top /run/vms`): one line per VM
    /// (state, IOPS, throughput, jobs, migration, events), sortable, and a
    /// detail view per VM; keys as in top. Watches every socket named and
    /// every socket in the directories named.
    Top(top::TopArgs),
    /// Serve the monitors' metrics for Prometheus (`qmp exporter
    /// --listen 127.0.0.1:9677 /run/vms`): OpenMetrics text at
    /// `/metrics`, polled from every socket named and every socket in the
    /// directories named.
    Exporter(exporter::ExporterArgs),
    /// Compare QAPI schemas.
    #[command(subcommand)]
    Schema(SchemaCmd),
    /// Compare the connected QEMU's `query-qmp-schema` with the schemas
    /// the bindings were made from; exit code 1 when they differ in a way
    /// the bindings don't explain.
    Conform {
        #[command(flatten)]
        dir: schema::SchemaDir,
        /// The server is (`true`) or is not (`false`) qemu-storage-daemon;
        /// by default, told from its schema.
        #[arg(long, value_name = "BOOL")]
        storage_daemon: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
enum JobCmd {
    /// Progress bars for a job (or all jobs) until it concludes, then its
    /// final status and error; exit code 1 when a job failed or was
    /// cancelled.
    Watch(job::WatchArgs),
    /// Start a job and follow it to its end (`qmp job run blockdev-backup
    /// job-id=b0 device=src target=dst sync=full`): a progress bar, then
    /// its outcome; exit code 1 when it failed or was cancelled.
    Run(job::RunArgs),
}

#[derive(Debug, Subcommand)]
enum SchemaCmd {
    /// What changed between two QAPI schemas (Markdown): each a
    /// `qapi-schema.json`, a folder with one, or a version the manifest
    /// lists (`qmp schema diff 7.2.0 10.0.2`).
    Diff {
        #[command(flatten)]
        dir: schema::SchemaDir,
        /// The older schema.
        old: String,
        /// The newer schema.
        new: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = run(cli);
    let recordings = connect::check_recordings();
    let r = match (r, recordings) {
        (Err(e), Err(rec)) => {
            eprintln!("qmp: {rec}");
            Err(e)
        }
        (Ok(()), rec) => rec,
        (e, Ok(())) => e,
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // An error already told on stdout adds nothing here.
            let text = e.message_with_causes();
            if !text.is_empty() {
                eprintln!("qmp: {text}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    // Work that needs no QEMU runs without a runtime.
    if let Cmd::Schema(SchemaCmd::Diff { dir, old, new }) = &cli.command {
        return schema::diff(dir, old, new);
    }
    if let Cmd::Shell(a) = &cli.command {
        // The prompt blocks this thread; events are printed from the
        // runtime's own.
        let rt = runtime(true)?;
        let session = rt.block_on(cli.target.connect())?;
        // Completion and help follow the connected QEMU's own schema
        // (cached on disk per QEMU build).
        if let Some(schema) = rt.block_on(known::schema(&session.client)) {
            nav::use_connected(&schema);
        }
        let client = Arc::new(session.client);
        let r = shell::run(&rt, client, a);
        drop(session.spawned);
        return r;
    }
    let rt = runtime(false)?;
    rt.block_on(async {
        match &cli.command {
            Cmd::Exec(a) => exec::run(&cli.target, a).await,
            Cmd::Events(a) => {
                events::check_filter(&a.filter)?;
                let s = cli.target.connect_keeping_ctrl_c().await?;
                events::run(&s.client, a).await
            }
            Cmd::Job(JobCmd::Watch(a)) => {
                let s = cli.target.connect_keeping_ctrl_c().await?;
                job::watch(&s.client, a).await
            }
            Cmd::Job(JobCmd::Run(a)) => job::run(&cli.target, a).await,
            Cmd::Migrate(a) => migrate::run(&cli.target, a).await,
            Cmd::Proxy(a) => proxy::run(&cli.target, a).await,
            Cmd::Exporter(a) => exporter::run(&cli.target, a).await,
            Cmd::Top(a) => top::run(&cli.target, a).await,
            Cmd::Conform {
                dir,
                storage_daemon,
            } => {
                let s = cli.target.connect().await?;
                schema::conform(&s.client, dir, *storage_daemon).await
            }
            Cmd::Shell(_) | Cmd::Schema(_) => Ok(()),
        }
    })
}

fn runtime(threaded: bool) -> Result<tokio::runtime::Runtime> {
    let mut b = if threaded {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(1);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("can't start the async runtime: {e}")))
}
