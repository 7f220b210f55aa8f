//! What a connection's task shares with its client handles and event
//! streams: the event hub, the counters, the unknown members met, the
//! request to close, and how the connection ended, stored once.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, watch};

use crate::error::{Disconnect, Error};
use crate::history::Hub;
use crate::introspect::Introspection;
use crate::options::UnknownMembers;
use crate::record::Tap;

/// A member, enum value or branch the bindings don't know, where it came
/// from, and whether the connected QEMU declares it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UnknownRecord {
    /// The command whose reply, or the event whose data, had it.
    pub source: String,
    /// The member (or value, or branch), its value and the type it was
    /// in.
    pub member: qmp_types::rt::UnknownMember,
    /// Whether the connected QEMU's own schema has it where it came
    /// from: `Some(true)`, a QEMU newer than the bindings;
    /// `Some(false)`, a QEMU that sends what it does not declare (a bug,
    /// or a corrupt message); `None`, the schema is not known (see
    /// `Options::schema`).
    pub in_schema: Option<bool>,
}

/// Counters of a connection (see [`crate::Client::stats`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) replies: AtomicU64,
    pub(crate) late_replies: AtomicU64,
    pub(crate) stray_replies: AtomicU64,
    pub(crate) abandoned: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) malformed_events: AtomicU64,
    pub(crate) unknown_members: AtomicU64,
}

/// What the connection task shares with client handles and event
/// streams. It holds no sender of the task's channels, so it keeps
/// nothing alive.
pub(crate) struct Shared {
    pub(crate) hub: Hub,
    /// How the connection ended: `None` while it is up, then the cause,
    /// set once by the connection task (see [`Shared::finish`]).
    end: watch::Sender<Option<Disconnect>>,
    pub(crate) close_requested: Notify,
    pub(crate) counters: Counters,
    /// What to do with members the bindings don't know.
    pub(crate) unknown_policy: UnknownMembers,
    /// The latest unknown members met (at most [`KEPT_UNKNOWN`]).
    pub(crate) unknown: std::sync::Mutex<std::collections::VecDeque<UnknownRecord>>,
    /// The connected QEMU's schema, once a handle settled on it.
    pub(crate) schema: std::sync::OnceLock<std::sync::Arc<Introspection>>,
    /// The session recording, if one was asked for.
    pub(crate) tap: Option<std::sync::Arc<Tap>>,
}

/// Unknown members kept for [`crate::Client::unknown_members`], at most.
pub(crate) const KEPT_UNKNOWN: usize = 256;

impl Shared {
    /// The state of a new connection.
    pub(crate) fn new(
        hub: Hub,
        unknown_policy: UnknownMembers,
        tap: Option<std::sync::Arc<Tap>>,
    ) -> Shared {
        Shared {
            hub,
            end: watch::Sender::new(None),
            close_requested: Notify::new(),
            counters: Counters::default(),
            unknown_policy,
            unknown: std::sync::Mutex::default(),
            schema: std::sync::OnceLock::new(),
            tap,
        }
    }

    /// Counts and logs unknown members met decoding `source` (a command's
    /// reply or an event) and, unless the policy denies them (the reply
    /// or event then fails, naming them), keeps them.
    pub(crate) fn report_unknown(&self, source: &str, found: Vec<qmp_types::rt::UnknownMember>) {
        if found.is_empty() {
            return;
        }
        self.counters
            .unknown_members
            .fetch_add(found.len() as u64, Ordering::Relaxed);
        if self.unknown_policy == UnknownMembers::Deny {
            return;
        }
        let schema = self.schema.get();
        let mut kept = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        for member in found {
            let in_schema = schema.map(|s| s.reaches(source, member.kind, &member.key));
            match in_schema {
                Some(true) => {
                    tracing::warn!(%source, %member, "unknown to the bindings; the connected QEMU declares it (newer than the bindings)")
                }
                Some(false) => {
                    tracing::warn!(%source, %member, "unknown to the bindings, and the connected QEMU's schema does not declare it there (a QEMU bug or a corrupt message)")
                }
                None => {
                    tracing::warn!(%source, %member, "unknown to the bindings (a QEMU newer than they cover?)")
                }
            }
            if kept.len() == KEPT_UNKNOWN {
                kept.pop_front();
            }
            kept.push_back(UnknownRecord {
                source: source.to_string(),
                member,
                in_schema,
            });
        }
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.end.borrow().is_some()
    }

    /// Records why the connection ended (the first cause stays) and wakes
    /// everyone waiting for the end.
    pub(crate) fn finish(&self, cause: Disconnect) {
        self.end.send_if_modified(|end| {
            if end.is_some() {
                return false;
            }
            *end = Some(cause);
            true
        });
    }

    /// Waits until the connection has ended.
    pub(crate) async fn ended(&self) {
        let mut rx = self.end.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// [`Error::Closed`] with the cause (before the end is recorded, which
    /// only a caller racing the task sees: the handles were dropped).
    pub(crate) fn closed_error(&self) -> Error {
        Error::Closed(
            self.end
                .borrow()
                .clone()
                .unwrap_or(Disconnect::HandlesDropped),
        )
    }
}
