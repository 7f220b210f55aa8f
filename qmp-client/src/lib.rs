//! An async (tokio) QMP client over the typed commands and events of
//! [`qmp_types`]. Build both crates' docs together, so the links between
//! them work: `cargo doc -p qmp-client -p qmp-types --open`.
//!
//! ```no_run
//! # async fn demo() -> qmp_client::Result<()> {
//! use qmp_client::{Client, Options};
//! use qmp_types::{DeviceDel, DeviceDeleted, QueryStatus};
//! use std::time::Duration;
//!
//! let client = Client::connect_unix("/run/qemu/vm.qmp", Options::default()).await?;
//! let status = client.execute(QueryStatus::new()).await?;
//! println!("{:?}", status.status);
//! let since = client.event_cursor();
//! client.execute(DeviceDel::new("tab0")).await?;
//! client
//!     .events_of::<DeviceDeleted>(since)
//!     .matching(|e| e.device.as_deref() == Some("tab0"))
//!     .wait(Duration::from_secs(5))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! One task owns each connection; any number of [`Client`] handles
//! (clones) send commands to it, pipelined: in-band replies are matched
//! by order (QMP answers in-band commands in the order sent; they carry
//! no `id` unless [`Options::in_band_ids`]), `exec-oob` ones by `id`.
//! Out-of-band execution is negotiated whenever QEMU offers it. Events go
//! to a history bounded by count and bytes, and to every subscriber.
//!
//! What a timeout or a dropped call means: a call that gives up before
//! its command was written to the socket is never sent; once the command
//! was written, QEMU runs it whether or not anyone waits for the reply.
//!
//! Logging goes through [`tracing`](https://docs.rs/tracing): connection state at `debug` (and
//! `warn` for abnormal ends), each command sent and reply received (id,
//! name, time taken) at `debug`, events at `trace`, and event data or a
//! reply that doesn't decode at `warn`.
//!
//! [`agent`] speaks to QEMU's guest agent, with the types of
//! [`qmp_types::qga`]. [`blocking`] is the same client for programs
//! without an async runtime.
//!
//! Features: `launch` (default) adds [`launch`], which starts a private
//! QEMU (or guest agent) on a socket of its own; `testing` adds
//! `testing`, a QEMU for unit tests (`MockQemu`, `MockAgent`, recorded
//! sessions played back).
//!
//! # Start here
//!
//! - Connect: [`Client::connect_unix`] (or [`Client::from_stream`] over any
//!   stream); or start a private QEMU with [`launch::Launcher`] and
//!   [`launch::Qemu::connect`].
//! - Send: [`Client::execute`] takes any command type of `qmp_types` and
//!   returns its reply type (`qmp_types::guide` shows how commands and
//!   their arguments map to QEMU's schema). [`Client::transaction`] takes
//!   a [`TransactionBuilder`], which accepts only transaction actions.
//!   [`Client::human`] runs an HMP command line.
//! - Events: [`Client::events_of`] selects events of one type from a
//!   cursor ([`Client::event_cursor`], taken before the command), narrowed
//!   by filters; then [`EventsOf::found`] looks in the history,
//!   [`EventsOf::wait`] waits for one and [`EventsOf::stream`] follows
//!   them, history first, so an event QEMU sent before the reply is never
//!   missed. [`Client::events`] is every event from now on, an
//!   [`EventStream`] (also a `futures_core::Stream`); [`Client::history`]
//!   looks back at all of them.
//! - What the QEMU has: its own schema decides ([`introspect`]: fetched
//!   before the first typed call, once per QEMU build per process;
//!   [`Options::schema`]); a command or argument it lacks is refused
//!   before sending ([`Error::NotInSchema`], [`Options::check_versions`]);
//!   [`Client::has`], [`Client::probe`] answer capability questions
//!   (libvirt's query strings, typed). Without the schema the greeting's
//!   version and the bindings' tables decide ([`Client::qemu_version`],
//!   [`Error::Unavailable`]). Members, enum values and branches a newer
//!   QEMU sends that the bindings don't know are kept and reported, with
//!   whether that QEMU declares them ([`Options::unknown_members`],
//!   [`Client::unknown_members`]).
//! - Workflows: hot-plug, block jobs ([`Client::start_job`], [`Job`]),
//!   incremental backup ([`Client::start_full_backup`]), live migration
//!   ([`Client::start_migration`]) and HMP, each in one place:
//!   [`workflows`].
//! - Errors: one [`Error`] enum; QEMU's own errors are [`Error::Qmp`] with
//!   their [`ErrorClass`]; a connection that ended is [`Error::Closed`]
//!   with the cause.

// Each module uses only those before it in this list (xtask's tidy test
// checks it; ARCHITECTURE.md says what each does).
// Layers, bottom first: error, check, introspect, options, limits, wire, peer, record, transport, history,
// state, outbox, connection, transaction, schema_slot, client, capabilities, events, events_of, waits, jobs,
// backup, migration, supervisor, proxy, collector, agent, launch, blocking,
// testing.
pub mod agent;
mod backup;
pub mod blocking;
mod capabilities;
mod check;
mod client;
pub mod collector;
mod connection;
mod error;
mod events;
mod events_of;
mod history;
pub mod introspect;
mod jobs;
#[cfg(feature = "launch")]
pub mod launch;
mod limits;
mod migration;
mod options;
mod outbox;
mod peer;
pub mod proxy;
mod record;
mod schema_slot;
mod state;
mod supervisor;
#[cfg(feature = "testing")]
pub mod testing;
mod transaction;
mod transport;
mod waits;
mod wire;

#[doc = include_str!("../docs/workflows.md")]
pub mod workflows {}

/// `qmp_types`'s guide's examples, compiled as doctests here (`qmp-types`
/// runs no doctests of its own: its generated docs quote QEMU's).
#[cfg(doctest)]
#[doc = include_str!("../../qmp-types/docs/guide.md")]
pub struct TypesGuideDoctests;

pub use backup::Bitmap;
pub use client::{Client, Stats};
pub use error::{Disconnect, Error, ErrorClass, Result};
pub use events::EventStream;
pub use events_of::{EventsOf, TypedEvents};
pub use history::{EventRecord, Since};
pub use jobs::{Job, JobProgress, JobUpdate, JobWatch};
pub use migration::{Migration, MigrationProgress};
pub use options::{Options, SchemaPolicy, UnknownMembers};
pub use state::UnknownRecord;
pub use supervisor::{Backoff, Supervised, SupervisedEvents, Supervisor};
pub use transaction::TransactionBuilder;
pub use wire::{Greeting, parse_event};
