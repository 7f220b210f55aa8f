//! How a connection behaves: [`Options`] and the policy for members the
//! bindings don't know ([`UnknownMembers`]).

use std::time::Duration;

/// Generates `with_x` setters, each consuming and returning the settings,
/// for a settings struct whose fields are public but which is
/// `#[non_exhaustive]` (a field added later breaks no one):
/// `Options::default().with_connect_timeout(..)`. `some` sets an
/// `Option` field to `Some`.
macro_rules! setters {
    ($t:ty { $( $kind:ident $setter:ident $field:ident : $ty:ty ),* $(,)? }) => {
        impl $t {
            $( $crate::options::setters!(@one $kind $setter $field : $ty); )*
        }
    };
    (@one plain $setter:ident $field:ident : $ty:ty) => {
        #[doc = ::std::concat!(" Sets [`", ::std::stringify!($field), "`](Self::", ::std::stringify!($field), ").")]
        #[must_use]
        pub fn $setter(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
    };
    (@one some $setter:ident $field:ident : $ty:ty) => {
        #[doc = ::std::concat!(" Sets [`", ::std::stringify!($field), "`](Self::", ::std::stringify!($field), ").")]
        #[must_use]
        pub fn $setter(mut self, value: impl ::std::convert::Into<$ty>) -> Self {
            self.$field = ::std::option::Option::Some(value.into());
            self
        }
    };
}
pub(crate) use setters;

/// Connection settings: `Options::default()` and its `with_x` setters
/// (the fields are public to read and to assign; a field added later
/// breaks no one, as the struct is `#[non_exhaustive]`).
///
/// ```
/// use std::time::Duration;
/// let opts = qmp_client::Options::default()
///     .with_connect_timeout(Duration::from_secs(30))
///     .with_wait_for_socket(true)
///     .with_call_timeout(Duration::from_secs(5));
/// assert!(opts.wait_for_socket);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Deadline for connecting and for the greeting and capabilities
    /// negotiation.
    pub connect_timeout: Duration,
    /// [`crate::Client::connect_unix`] waits, within `connect_timeout`,
    /// for the socket to appear and be listened on (a QEMU just started
    /// has not made it yet), instead of failing at once. Off by default:
    /// a missing socket is then an immediate [`crate::Error::Connect`].
    pub wait_for_socket: bool,
    /// Default per-call timeout (`None`: wait as long as it takes). It
    /// covers the wait for room in the queue too.
    pub call_timeout: Option<Duration>,
    /// Negotiate out-of-band execution when QEMU offers it (on by
    /// default: QEMU then parses commands in its monitor I/O thread while
    /// the main loop runs them, and `exec-oob` calls overtake in-band
    /// ones).
    pub oob: bool,
    /// In-band commands written and not yet answered, at most. QEMU's
    /// in-band queue holds 8; with OOB negotiated it stops reading once
    /// it is full, which would hold back `exec-oob` commands. 7 keeps it
    /// from filling.
    pub max_in_flight: usize,
    /// Send an `id` with in-band commands too. Off by default: QMP
    /// answers in-band commands in the order they were sent, so the client
    /// matches their replies by order and gives ids only to `exec-oob`
    /// commands (which may overtake them). QEMU reads a command a byte at
    /// a time, at the cost of several system calls per byte, so the 7
    /// bytes of `,"id":0` are a fifth of a short command's cost to QEMU's
    /// monitor: without them one monitor answers about 20% more commands
    /// per second (BENCHMARKS.md). Turn it on for a peer that routes
    /// replies by id.
    pub in_band_ids: bool,
    /// Calls that may wait for their turn to be written (per kind:
    /// in-band and out-of-band). Past that, calls wait for room before
    /// they are queued (back-pressure).
    pub queue: usize,
    /// Events kept in the history, at most.
    pub history: usize,
    /// Bytes of events (estimated in memory, see
    /// [`crate::EventRecord::size`]) kept in the history, at most; the
    /// oldest go first.
    pub history_bytes: usize,
    /// Events a subscriber may fall behind before it loses some.
    pub subscriber_buffer: usize,
    /// Bytes of events (estimated in memory, see
    /// [`crate::EventRecord::size`]) a subscriber may hold unread before
    /// it loses its oldest (it is told how many: [`crate::Error::EventsLost`]).
    /// The newest event is always kept, however large.
    pub subscriber_bytes: usize,
    /// Largest message accepted from QEMU, in bytes.
    pub max_message: usize,
    /// Refuse, before sending, a typed command (or an argument given, at
    /// any depth) that the connected QEMU lacks: by its own schema when
    /// it is known ([`Options::schema`]; [`crate::Error::NotInSchema`]),
    /// else by the schemas the bindings cover
    /// ([`crate::Error::Unavailable`]; see `qmp_types::versions`). On by
    /// default.
    pub check_versions: bool,
    /// Where the connected QEMU's own schema comes from (default:
    /// [`SchemaPolicy::Fetch`]).
    pub schema: SchemaPolicy,
    /// What to do with reply and event members the bindings don't know
    /// (a QEMU newer than they cover). Default: [`UnknownMembers::Report`].
    pub unknown_members: UnknownMembers,
    /// Record the session to this file (created or truncated when
    /// connecting): every message sent and received, one JSON line each
    /// (`{"t": seconds, "dir": "send"|"recv", "msg": {..}}`), which
    /// `testing::MockQemu::replay` plays back. Off (`None`) by default.
    pub record: Option<std::path::PathBuf>,
    /// The most a recording may hold, in bytes (default 64 MiB): an event
    /// flood would fill a disk otherwise. Past it, recording stops with a
    /// last line saying so (see [`crate::Client::recording`]).
    pub record_limit: u64,
}

/// What a client does with members of replies and events that the
/// bindings don't know, or whose value their type cannot hold (a newer
/// QEMU widened it). Within the QEMU versions they cover there are none;
/// a newer QEMU may send some. Whatever the policy, a decoded value keeps
/// them (each struct's `extra`) and encodes to the JSON QEMU sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnknownMembers {
    /// Say nothing of them. A reply or event whose optional member does
    /// not fit its type is decoded again leniently (the member kept in
    /// `extra`), as with `Report`.
    Ignore,
    /// Decode as usual, and keep them with their values (the latest 256,
    /// `Client::unknown_members`), count them (`Stats::unknown_members`)
    /// and log each at `warn` level (tracing). A reply or event that
    /// fails only because an optional member's value does not fit its
    /// type (an object where the bindings expect a string) is decoded
    /// again leniently: that member left absent, its value kept in
    /// `extra` and reported (`UnknownMember::mismatch`), instead of the
    /// call failing.
    #[default]
    Report,
    /// Fail: a reply with one is [`crate::Error::UnknownMembers`] (or,
    /// for a value that does not fit, the decode error naming its path);
    /// an event with one becomes `AnyEvent::Malformed`.
    Deny,
}

/// Where a client learns what the connected QEMU has: its own
/// `query-qmp-schema`, which a build with backported features or a QEMU
/// newer than the bindings answers truly, where a version number does
/// not. See [`crate::introspect`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum SchemaPolicy {
    /// Fetched before the first decision that needs it (the first typed
    /// call's check, [`crate::Client::schema`], [`crate::Client::probe`]),
    /// not while connecting, so a connect costs what it did. Once per
    /// QEMU build per process: connections to QEMU processes of one
    /// executable share one fetch (see [`crate::Client::binary_id`]). If
    /// the fetch fails, the checks use the bindings' version tables.
    #[default]
    Fetch,
    /// This schema (a cached copy, or one a test made): nothing is
    /// fetched.
    Given(std::sync::Arc<crate::introspect::Introspection>),
    /// Never fetched: the checks use the bindings' version tables alone,
    /// and capability questions fail ([`crate::Error::NoSchema`]).
    Off,
}

setters!(Options {
    plain with_connect_timeout connect_timeout: Duration,
    plain with_wait_for_socket wait_for_socket: bool,
    some with_call_timeout call_timeout: Duration,
    plain with_oob oob: bool,
    plain with_max_in_flight max_in_flight: usize,
    plain with_in_band_ids in_band_ids: bool,
    plain with_queue queue: usize,
    plain with_history history: usize,
    plain with_history_bytes history_bytes: usize,
    plain with_subscriber_buffer subscriber_buffer: usize,
    plain with_subscriber_bytes subscriber_bytes: usize,
    plain with_max_message max_message: usize,
    plain with_check_versions check_versions: bool,
    plain with_schema schema: SchemaPolicy,
    plain with_unknown_members unknown_members: UnknownMembers,
    some with_record record: std::path::PathBuf,
    plain with_record_limit record_limit: u64,
});

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(10),
            wait_for_socket: false,
            call_timeout: None,
            oob: true,
            max_in_flight: 7,
            in_band_ids: false,
            queue: 64,
            history: 1024,
            history_bytes: 16 << 20,
            subscriber_buffer: 1024,
            subscriber_bytes: 16 << 20,
            max_message: 64 << 20,
            check_versions: true,
            schema: SchemaPolicy::Fetch,
            unknown_members: UnknownMembers::Report,
            record: None,
            record_limit: 64 << 20,
        }
    }
}
