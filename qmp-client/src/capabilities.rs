//! What the connected QEMU has, by its own schema: [`Client::schema`],
//! typed questions ([`Client::has`], [`Client::has_event`],
//! [`Client::probe`]), and the build's identity for caches
//! ([`Client::binary_id`], [`Client::use_schema`]).

use std::sync::Arc;

use qmp_types::{Command, Event, Qmp};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::introspect::{Introspection, Probe};

impl Client {
    /// The connected QEMU's own schema (`query-qmp-schema`, indexed):
    /// fetched on the first need, once per QEMU build per process (see
    /// [`crate::Options::schema`]). [`Error::NoSchema`] when the option
    /// is `Off` or the fetch failed.
    pub async fn schema(&self) -> Result<Arc<Introspection>> {
        self.settled_schema().await.map_err(Error::NoSchema)
    }

    /// Whether the connected QEMU has command `C`: by its schema, or by
    /// the bindings' version tables when the schema is not known.
    pub async fn has<C: Command<Protocol = Qmp>>(&self) -> bool {
        match self.settled_schema().await {
            Ok(s) => s.has::<C>(),
            Err(_) => self.check_available::<C>().is_ok(),
        }
    }

    /// Whether the connected QEMU has event `E`, by its schema (`false`
    /// when the schema is not known: no version table says it).
    pub async fn has_event<E: Event>(&self) -> Result<bool> {
        Ok(self.schema().await?.has_event_type::<E>())
    }

    /// Whether the connected QEMU has what `probe` asks (a member at a
    /// path, an enum value, a branch, a feature): see [`Probe`].
    pub async fn probe(&self, probe: &Probe) -> Result<bool> {
        Ok(self.schema().await?.probe(probe))
    }

    /// A stable text that names the connected QEMU's build: its
    /// executable file (device, inode, size, modification time, found
    /// through the socket's peer) and its greeting. `None` when it can't
    /// be known: a TCP connection, a peer that is not a QEMU (a proxy),
    /// or one this process can't see. Two connections with one id get
    /// one schema: a cache keyed by it never gives one build's schema to
    /// another (see `qmp_client::introspect`).
    pub fn binary_id(&self) -> Option<String> {
        self.binary_key().map(|k| k.text())
    }

    /// Checks against `schema` from now on (a copy cached under
    /// [`Client::binary_id`]), unless this connection settled on one
    /// already; whether it was taken.
    pub fn use_schema(&self, schema: Arc<Introspection>) -> bool {
        self.settle_schema(schema)
    }
}
