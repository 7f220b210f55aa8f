//! A QEMU for unit tests (feature `testing`): [`MockQemu`] serves a real
//! QMP connection, in-process or on a Unix socket, as a QEMU version the
//! bindings cover would: its greeting and capabilities, every command
//! checked against that version's schema (answered as that QEMU answers a
//! mistake, and noted as a failure), typed expectations with their
//! answers, events and faults on demand, and recorded sessions played
//! back. [`MockAgent`] does the same for the guest agent.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> qmp_client::Result<()> {
//! use std::time::Duration;
//! use qmp_client::testing::MockQemu;
//! use qmp_client::{ErrorClass, Options};
//! use qmp_types::{DeviceDel, DeviceDeleted};
//!
//! let mock = MockQemu::with_version("10.0.2")?;
//! mock.expect::<DeviceDel>()
//!     .with(|c| c.id == "disk0")
//!     .reply(())
//!     .then_emit(DeviceDeleted::new("/machine/peripheral/disk0").with_device("disk0"));
//! mock.expect::<DeviceDel>()
//!     .fail(ErrorClass::DeviceNotFound, "Device 'nope' not found");
//!
//! let qmp = mock.connect(Options::default()).await?;
//! qmp.unplug("disk0", Duration::from_secs(1)).await?;
//! assert!(qmp.execute(DeviceDel::new("nope")).await.is_err());
//! mock.verify()?; // every expectation met, nothing unexpected
//! # Ok(()) }
//! ```
//!
//! What the double checks and how it fails:
//! - A command the mocked version lacks, an argument it lacks (or
//!   misspelt), a member of the wrong JSON type, an integer out of range,
//!   an enum value it does not accept: answered with QEMU's error
//!   (`CommandNotFound`, or `GenericError` "Parameter 'file.filename' is
//!   missing"), and noted as a failure ([`Mock::allow_invalid`] for a test
//!   that sends mistakes on purpose).
//! - Expectations are met in the order they were made, unless marked
//!   [`Expect::any_order`]; a command no expectation takes goes to the
//!   default responder ([`Mock::respond_by_default`]), else it is answered
//!   with an error and noted as a failure.
//! - [`Mock::verify`] lists every failure and every expectation not met
//!   (with the file and line that made it); a double dropped unverified
//!   with problems panics with the same list (unless the thread is already
//!   panicking).
//!
//! Scripted QEMU behaviour: [`MockQemu::job`], [`MockQemu::migration`] and
//! [`MockQemu::device`] play a job, a migration or a device removal in
//! one call, as real QEMU 7.2, 10.0 or 11.1 did when recorded (events,
//! statuses, the queries' answers, the commands QEMU waits for and its
//! errors for the others): see [`ScriptedJob`].
//!
//! Recordings: [`crate::Options::record`] (or `qmp --record FILE`) writes
//! a live session as JSON lines; [`MockQemu::replay`] plays one back, and
//! libvirt's `.replies` files too.
//!
//! [`guide`] tests a hot-plug function end to end with it.

#[doc = include_str!("../../docs/testing.md")]
pub mod guide {}

mod answer;
mod fill;
mod introspection;
mod link;
mod recorded;
mod replay;
mod scenes;
mod schema;
mod script;
mod scripts;
mod server;

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qmp_types::rt::{Command, Event, Protocol, QemuVersion, Qga, Qmp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::agent::{AgentOptions, GuestAgent};
use crate::client::Client;
use crate::error::{Error, ErrorClass, Result};
use crate::options::{Options, SchemaPolicy};
use answer::{EventText, Outcome, Plan};
use link::{Action, Link};
use script::{Expectation, State};
use server::Shared;

pub use link::MockStream;
pub use script::Call;
pub use scripts::{ScriptedDevice, ScriptedJob, ScriptedMigration};

mod sealed {
    pub trait Sealed {}
    impl Sealed for qmp_types::rt::Qmp {}
    impl Sealed for qmp_types::rt::Qga {}
}

/// The protocols a double speaks: [`Qmp`] ([`MockQemu`]) and [`Qga`]
/// ([`MockAgent`]).
pub trait MockProtocol: Protocol + sealed::Sealed + Send + Sync + 'static {
    #[doc(hidden)]
    const AGENT: bool;
}

impl MockProtocol for Qmp {
    const AGENT: bool = false;
}

impl MockProtocol for Qga {
    const AGENT: bool = true;
}

/// A QEMU monitor for unit tests (see the [module docs](self)).
pub type MockQemu = Mock<Qmp>;

/// A guest agent for unit tests: `guest-sync-delimited` and `guest-sync`
/// answered as qemu-ga answers them, every other command checked against
/// the agent's schema and answered by the script.
pub type MockAgent = Mock<Qga>;

/// An answer from the default responder ([`Mock::respond_by_default`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Reply {
    /// `{"return": ..}` (`{}` for a command that returns nothing).
    Return(Value),
    /// An error, as QEMU sends one.
    Error {
        /// Its class.
        class: ErrorClass,
        /// Its text.
        desc: String,
    },
}

impl Reply {
    fn into_outcome(self) -> Outcome {
        match self {
            Reply::Return(v) => Outcome::returning(&v),
            Reply::Error { class, desc } => Outcome::Error {
                class: class.as_str().to_string(),
                desc,
            },
        }
    }
}

/// Where the test's actions go: the connection being served, or a queue
/// for the next one.
#[derive(Default)]
struct Router {
    current: Option<Arc<Link>>,
    queued: Vec<Action>,
}

/// The test double: see [`MockQemu`] and [`MockAgent`].
pub struct Mock<P: MockProtocol> {
    shared: Arc<Shared>,
    router: Arc<Mutex<Router>>,
    /// The Unix socket's accept loop.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    socket: Mutex<Option<(PathBuf, tempfile::TempDir)>>,
    _protocol: PhantomData<P>,
}

/// The version label of `tables` that `wanted` names (`10.0.2`, or just
/// `10.0`).
fn find_version(versions: &'static [&'static str], wanted: &str) -> Option<&'static str> {
    let series = |v: &str| QemuVersion::parse(v).map(|v| v.series());
    versions
        .iter()
        .find(|v| **v == wanted)
        .or_else(|| {
            let want = series(wanted)?;
            versions.iter().find(|v| series(v) == Some(want))
        })
        .copied()
}

fn qmp_greeting(version: &str, oob: bool) -> Value {
    let v = QemuVersion::parse(version).unwrap_or(QemuVersion::new(0, 0, 0));
    let caps: Vec<&str> = if oob { vec!["oob"] } else { Vec::new() };
    json!({"QMP": {"version": {"qemu": {"major": v.major, "minor": v.minor, "micro": v.micro}, "package": ""}, "capabilities": caps}})
}

/// An event message (stamped when sent).
fn event_text<E: Event + Serialize>(e: &E) -> EventText {
    // Data that don't encode (a map with non-string keys) go as none.
    let data = serde_json::to_string(e).unwrap_or_default();
    EventText::of(
        E::NAME,
        Some(data.as_str()).filter(|d| !d.is_empty() && *d != "null"),
    )
}

impl<P: MockProtocol> Mock<P> {
    fn build(version: Option<&'static str>, greeting: Option<Value>, mut state: State) -> Mock<P> {
        let tables = if P::AGENT {
            schema::Tables::qga()
        } else {
            schema::Tables::qmp()
        };
        // The QEMU its scripts play: its schema's version, or the one its
        // greeting announces (a double of a QEMU's own introspection).
        state.scenes.version = version.and_then(QemuVersion::parse).or_else(|| {
            let v = &greeting.as_ref()?["QMP"]["version"]["qemu"];
            let n = |k: &str| v[k].as_u64().and_then(|n| u32::try_from(n).ok());
            Some(QemuVersion::new(n("major")?, n("minor")?, n("micro")?))
        });
        let oob_offered = greeting.as_ref().is_some_and(|g| {
            g["QMP"]["capabilities"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "oob"))
        });
        Mock {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                tables,
                version,
                greeting: greeting.as_ref().map(crate::peer::line),
                intro: None,
                oob_offered,
                agent: P::AGENT,
            }),
            router: Arc::new(Mutex::new(Router::default())),
            tasks: Mutex::new(Vec::new()),
            socket: Mutex::new(None),
            _protocol: PhantomData,
        }
    }

    /// A double of the newest QEMU the bindings cover, offering OOB.
    pub fn new() -> Mock<P> {
        let tables = if P::AGENT {
            schema::Tables::qga()
        } else {
            schema::Tables::qmp()
        };
        let newest = tables.versions.last().copied().unwrap_or("0.0.0");
        Self::with_known_version(newest)
    }

    fn with_known_version(version: &'static str) -> Mock<P> {
        let greeting = (!P::AGENT).then(|| qmp_greeting(version, true));
        Self::build(Some(version), greeting, State::default())
    }

    /// A double of QEMU `version`: one of those the bindings cover
    /// (`qmp_types::VERSIONS`; `10.0` names `10.0.2`).
    pub fn with_version(version: &str) -> Result<Mock<P>> {
        let tables = if P::AGENT {
            schema::Tables::qga()
        } else {
            schema::Tables::qmp()
        };
        let v = find_version(tables.versions, version).ok_or_else(|| {
            Error::Mock(format!(
                "QEMU {version} is not one the bindings cover ({})",
                tables.versions.join(", ")
            ))
        })?;
        Ok(Self::with_known_version(v))
    }

    /// The QEMU version whose schema the double checks commands against
    /// (`None` for a recording of a QEMU the bindings don't cover).
    pub fn version(&self) -> Option<&'static str> {
        self.shared.version
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Expects command `C` (once, after the expectations made before it,
    /// answered `{}` unless told otherwise): see [`Expect`].
    #[track_caller]
    pub fn expect<C>(&self) -> Expect<'_, P, C>
    where
        C: Command<Protocol = P> + DeserializeOwned + 'static,
    {
        let at = std::panic::Location::caller();
        let mut st = self.lock();
        st.expectations.push(Expectation {
            name: C::NAME,
            at,
            matcher: None,
            plan: Plan::answer(Outcome::returning(&json!({}))),
            min: 1,
            max: 1,
            calls: 0,
            ordered: true,
        });
        Expect {
            mock: self,
            index: st.expectations.len() - 1,
            _command: PhantomData,
        }
    }

    /// Allows command `C` any number of times (none included), in any
    /// order: a stub, not an expectation.
    #[track_caller]
    pub fn allow<C>(&self) -> Expect<'_, P, C>
    where
        C: Command<Protocol = P> + DeserializeOwned + 'static,
    {
        self.expect::<C>().any_order().any_times()
    }

    /// Answers commands that no expectation takes: `f` gets the command's
    /// name and arguments; `None` leaves it unexpected.
    pub fn respond_by_default(
        &self,
        f: impl Fn(&str, &Value) -> Option<Reply> + Send + Sync + 'static,
    ) -> &Self {
        self.lock().responder = Some(Box::new(f));
        self
    }

    /// Answers schema mistakes as QEMU would without noting them as
    /// failures: for a test that sends them on purpose.
    pub fn allow_invalid(&self) -> &Self {
        self.lock().allow_invalid = true;
        self
    }

    fn act(&self, a: Action) {
        let mut r = self.router.lock().unwrap_or_else(|p| p.into_inner());
        match r.current.clone() {
            Some(link) if !link.ended() => {
                drop(r);
                link.act(a);
            }
            _ => r.queued.push(a),
        }
    }

    /// Sends event `e` now (once a connection has negotiated; queued
    /// until then).
    pub fn emit<E: Event + Serialize>(&self, e: E) {
        self.act(Action::Event(event_text(&e)));
    }

    /// Sends each of `events`, in order, at once.
    pub fn emit_burst<E: Event + Serialize>(&self, events: impl IntoIterator<Item = E>) {
        for e in events {
            self.emit(e);
        }
    }

    /// Sends an event by name, with `data` as given (a newer QEMU's event,
    /// or data the bindings would not build).
    pub fn emit_json(&self, name: &str, data: Value) {
        self.act(Action::Event(EventText::of(name, Some(&data.to_string()))));
    }

    /// Sends `bytes` as they are (garbage, a partial line, ...).
    pub fn send_raw(&self, bytes: impl Into<Vec<u8>>) {
        self.act(Action::Raw(bytes.into()));
    }

    /// Sends the first half of a message, then closes the connection.
    pub fn cut_line(&self) {
        self.act(Action::Cut);
    }

    /// Stops reading commands (a stuck QEMU): they stay unanswered.
    pub fn stop_reading(&self) {
        self.act(Action::StopReading);
    }

    /// Closes the connection now (QEMU died).
    pub fn close(&self) {
        self.act(Action::Close);
    }

    /// Answers `n` more commands, then closes the connection when the
    /// next arrives, without answering it (QEMU dying mid-call).
    pub fn die_after(&self, n: usize) {
        self.lock().die_after = Some(n);
    }

    /// Every command received so far (negotiation and the agent's
    /// synchronisation aside), in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// `Ok` when every expectation was met and nothing went wrong; else
    /// [`Error::Mock`] listing it all.
    pub fn verify(&self) -> Result<()> {
        let mut st = self.lock();
        st.verified = true;
        let problems = st.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Mock(format!(
                "the code under test departed from the script:\n  - {}",
                problems.join("\n  - ")
            )))
        }
    }

    /// A new connection to the double, the client's end: it starts with
    /// the greeting (QMP), and the connections before it no longer get
    /// the test's actions.
    pub fn stream(&self) -> MockStream {
        open(&self.shared, &self.router, false)
    }

    /// Listens on a Unix socket in a private temporary directory, so that
    /// code that connects by path runs unchanged; returns the path. The
    /// directory goes when the double is dropped.
    pub async fn listen_unix(&self) -> Result<PathBuf> {
        if let Some((p, _)) = &*self.socket.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(p.clone());
        }
        let dir = tempfile::Builder::new()
            .prefix("qmp-mock-")
            .tempdir()
            .map_err(Error::Io)?;
        let path = dir
            .path()
            .join(if P::AGENT { "qga.sock" } else { "qmp.sock" });
        let listener = tokio::net::UnixListener::bind(&path).map_err(Error::Io)?;
        let (shared, router) = (self.shared.clone(), self.router.clone());
        // One connection at a time, as QEMU's monitor serves them.
        let accept = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut link = open(&shared, &router, false);
                let _ = tokio::io::copy_bidirectional(&mut s, &mut link).await;
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(accept);
        *self.socket.lock().unwrap_or_else(|p| p.into_inner()) = Some((path.clone(), dir));
        Ok(path)
    }
}

impl<P: MockProtocol> Default for Mock<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl MockQemu {
    /// A double that offers no out-of-band execution (as QEMU without an
    /// I/O thread for its monitor).
    pub fn without_oob(self) -> MockQemu {
        let version = self.shared.version.unwrap_or("0.0.0");
        let st = std::mem::take(&mut *self.lock());
        MockQemu::build(self.shared.version, Some(qmp_greeting(version, false)), st)
    }

    /// A client connected in-process.
    pub async fn connect(&self, mut opts: Options) -> Result<Client> {
        // The schema goes to the client at once instead of over the
        // connection: with an introspection, that one; without, the
        // version tables, which decide as the double does.
        if matches!(opts.schema, SchemaPolicy::Fetch) {
            opts.schema = match &self.shared.intro {
                Some(i) => SchemaPolicy::Given(i.index.clone()),
                None => SchemaPolicy::Off,
            };
        }
        // The client's connection task reads after each write.
        Client::from_stream(open(&self.shared, &self.router, true), opts).await
    }

    /// A double that plays back the recording at `path`: this client's
    /// ([`crate::Options::record`], `qmp --record`) or a libvirt
    /// `.replies` file. Each command the code sends must be the next one
    /// recorded (same name and arguments; ids are remapped); it gets what
    /// QEMU answered then, events included. A departure is answered with
    /// an error and noted with the file and line
    /// ([`Mock::verify`]), as are commands the code never sent. Commands
    /// are checked against the recorded QEMU's own schema when the
    /// recording holds its `query-qmp-schema` reply (libvirt's files do;
    /// so do this client's, which fetch it before the first typed call),
    /// else against the schema of its version (same major.minor) when
    /// the bindings cover it. The recorded `query-qmp-schema` exchanges
    /// are not part of the sequence: the double answers that command
    /// itself, whenever it comes.
    pub fn replay(path: impl AsRef<Path>) -> Result<MockQemu> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Mock(format!("can't read the recording {}: {e}", path.display()))
        })?;
        Self::replay_str(&path.display().to_string(), &text)
    }

    /// [`MockQemu::replay`] of a recording in memory, named `name` in
    /// messages.
    pub fn replay_str(name: &str, text: &str) -> Result<MockQemu> {
        let mut r = replay::Replay::parse(name, text)?;
        let schema = r.take_schema();
        let recorded = r.version();
        let version = recorded.and_then(|(a, b, c)| {
            find_version(schema::Tables::qmp().versions, &format!("{a}.{b}.{c}"))
        });
        let greeting = r.greeting.clone().unwrap_or_else(|| {
            let (a, b, c) = recorded.unwrap_or_default();
            // libvirt's files have no greeting: one without OOB, as
            // libvirt negotiates none.
            qmp_greeting(&format!("{a}.{b}.{c}"), false)
        });
        let st = State {
            replay: Some(r),
            ..State::default()
        };
        let mut mock = MockQemu::build(version, Some(greeting), st);
        if let Some(list) = schema {
            let (a, b, c) = recorded.unwrap_or_default();
            mock.set_introspection(introspection::Intro::of(
                list,
                &format!("QEMU {a}.{b}.{c}"),
            )?);
        }
        Ok(mock)
    }
}

impl MockAgent {
    /// A guest agent client connected in-process.
    pub async fn connect(&self, opts: AgentOptions) -> Result<GuestAgent> {
        GuestAgent::from_stream(self.stream(), opts).await
    }
}

/// A new connection: the test's queued actions go to it, and from now
/// on its later ones.
/// `reads_after_write`: see [`MockStream`].
fn open(shared: &Arc<Shared>, router: &Mutex<Router>, reads_after_write: bool) -> MockStream {
    let mut r = router.lock().unwrap_or_else(|p| p.into_inner());
    let queued = std::mem::take(&mut r.queued);
    let (stream, link) = MockStream::open(shared.clone(), queued, reads_after_write);
    r.current = Some(link);
    stream
}

impl<P: MockProtocol> Drop for Mock<P> {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
        let st = self.lock();
        if st.verified || std::thread::panicking() {
            return;
        }
        let problems = st.problems();
        drop(st);
        if !problems.is_empty() {
            panic!(
                "MockQemu dropped unverified, and the code under test departed from the script:\n  - {}",
                problems.join("\n  - ")
            );
        }
    }
}

/// An expectation being made ([`Mock::expect`]): each method changes it
/// and gives it back, so they chain.
pub struct Expect<'m, P: MockProtocol, C> {
    mock: &'m Mock<P>,
    index: usize,
    _command: PhantomData<fn() -> C>,
}

impl<P: MockProtocol, C> Expect<'_, P, C>
where
    C: Command<Protocol = P> + DeserializeOwned + 'static,
{
    fn edit(self, f: impl FnOnce(&mut Expectation)) -> Self {
        {
            let mut st = self.mock.lock();
            if let Some(e) = st.expectations.get_mut(self.index) {
                f(e);
            }
        }
        self
    }

    /// Takes only a command whose arguments pass `f` (decoded as `C`).
    pub fn with(self, f: impl Fn(&C) -> bool + Send + Sync + 'static) -> Self {
        self.edit(|e| {
            e.matcher = Some(Box::new(move |args: &Value| {
                serde_json::from_value::<C>(args.clone()).is_ok_and(|c| f(&c))
            }));
        })
    }

    /// Answers with `r`, the command's reply type.
    pub fn reply(self, r: C::Returns) -> Self
    where
        C::Returns: Serialize,
    {
        let v = match serde_json::to_value(&r) {
            Ok(Value::Null) | Err(_) => json!({}),
            Ok(v) => v,
        };
        // Typed, so valid already.
        self.reply_invalid(v)
    }

    /// Answers with `v` as the `return` value, checked now: `v` must
    /// decode as the command's reply type. If it does not, [`Mock::verify`]
    /// says which member is missing or wrong, with this expectation's
    /// file and line (and the call still gets `v`, so the code under test
    /// meets what it would). [`Expect::reply_invalid`] sends one on
    /// purpose; [`Expect::reply_with`] fills in what a test leaves out.
    pub fn reply_json(self, v: Value) -> Self {
        // `{}` is how QEMU says "done" for a command without a reply
        // type, which the client reads as `()`.
        let unit = v.as_object().is_some_and(|m| m.is_empty())
            && serde_json::from_value::<C::Returns>(Value::Null).is_ok();
        if let (false, Err(e)) = (unit, serde_path_to_error::deserialize::<_, C::Returns>(&v)) {
            let path = e.path().to_string();
            let at = self.at();
            self.mock.lock().failures.push(format!(
                "{}: the scripted reply of {at} is not a valid reply: {}{} (send it with \
                 reply_invalid if that is the point; reply_with fills in required members)",
                C::NAME,
                if path == "." {
                    String::new()
                } else {
                    format!("at {path}: ")
                },
                e.inner()
            ));
        }
        self.reply_invalid(v)
    }

    /// Answers with `v` as the `return` value, unchecked: a reply QEMU
    /// would not send, on purpose.
    pub fn reply_invalid(self, v: Value) -> Self {
        let outcome = Outcome::returning(&v);
        self.edit(|e| e.plan.outcome = outcome)
    }

    /// Answers with a reply made from `fields`, the members the test cares
    /// about: every required member left out gets a plainly fake value
    /// that is valid for the schema (`"fake-<member>"`, `0`, `false`, an
    /// enum's first value, `[]`, and the same inside nested objects and
    /// list elements; a union gets its first branch unless `fields` names
    /// one). Then checked as [`Expect::reply_json`] is.
    ///
    /// ```
    /// # async fn demo() -> qmp_client::Result<()> {
    /// use qmp_client::testing::MockQemu;
    /// use qmp_types::QueryNamedBlockNodes;
    /// let mock = MockQemu::new();
    /// mock.expect::<QueryNamedBlockNodes>().reply_with(serde_json::json!([
    ///     {"node-name": "disk0", "drv": "qcow2", "image": {"filename": "/vm/disk0.qcow2"}},
    /// ]));
    /// let qmp = mock.connect(Default::default()).await?;
    /// let nodes = qmp.execute(QueryNamedBlockNodes::new()).await?;
    /// assert_eq!(nodes[0].image.filename, "/vm/disk0.qcow2");
    /// assert_eq!(nodes[0].file, "fake-file");
    /// # mock.verify() }
    /// ```
    pub fn reply_with(self, fields: Value) -> Self {
        let tables = if P::AGENT {
            schema::Tables::qga()
        } else {
            schema::Tables::qmp()
        };
        let v = match C::META.ret_type {
            Some(ty) => fill::complete(tables, ty, Some(fields), "return"),
            None => fields,
        };
        self.reply_json(v)
    }

    /// Where this expectation was made (file:line).
    fn at(&self) -> String {
        let st = self.mock.lock();
        st.expectations
            .get(self.index)
            .map_or_else(String::new, |e| format!("{}:{}", e.at.file(), e.at.line()))
    }

    /// Answers with an error of `class`, saying `desc`.
    pub fn fail(self, class: ErrorClass, desc: impl Into<String>) -> Self {
        let desc = desc.into();
        self.edit(|e| {
            e.plan.outcome = Outcome::Error {
                class: class.as_str().to_string(),
                desc,
            }
        })
    }

    /// Sends event `ev` after the answer.
    pub fn then_emit<E: Event + Serialize>(self, ev: E) -> Self {
        let v = event_text(&ev);
        self.edit(|e| e.plan.after.push(v))
    }

    /// Sends event `ev` before the answer (QEMU often does).
    pub fn emit_before<E: Event + Serialize>(self, ev: E) -> Self {
        let v = event_text(&ev);
        self.edit(|e| e.plan.before.push(v))
    }

    /// Waits `d` before answering (the connection answers nothing else
    /// meanwhile, as QEMU's monitor runs one in-band command at a time).
    pub fn delay(self, d: Duration) -> Self {
        self.edit(|e| e.plan.delay = d)
    }

    /// Expects exactly `n` such commands (`0`: none may come).
    pub fn times(self, n: usize) -> Self {
        self.edit(|e| {
            e.min = n;
            e.max = n;
        })
    }

    /// Takes any number of such commands, none included.
    pub fn any_times(self) -> Self {
        self.edit(|e| {
            e.min = 0;
            e.max = usize::MAX;
        })
    }

    /// Takes the command whenever it comes, outside the order of the
    /// other expectations.
    pub fn any_order(self) -> Self {
        self.edit(|e| e.ordered = false)
    }

    /// Never answers (the call waits until it times out or the
    /// connection ends).
    pub fn never_answer(self) -> Self {
        self.edit(|e| e.plan.outcome = Outcome::Silence)
    }

    /// Closes the connection instead of answering (QEMU dies mid-call).
    pub fn close_instead(self) -> Self {
        self.edit(|e| e.plan.outcome = Outcome::Close)
    }

    /// Sends `bytes` as they are instead of an answer (garbage, a broken
    /// reply).
    pub fn reply_raw(self, bytes: impl Into<Vec<u8>>) -> Self {
        let b = bytes.into();
        self.edit(|e| e.plan.outcome = Outcome::Raw(b))
    }

    /// Sends the first half of the answer set so far (its
    /// [`Expect::reply`] or [`Expect::fail`]; `{"return": {}}` by
    /// default), then closes the connection.
    pub fn cut_reply(self) -> Self {
        self.edit(|e| {
            let answer = std::mem::replace(&mut e.plan.outcome, Outcome::Silence);
            e.plan.outcome = Outcome::CutReply(Box::new(answer));
        })
    }
}
