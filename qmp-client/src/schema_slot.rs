//! A connection's share of the connected QEMU's schema: where it comes
//! from (`Options::schema`), the cell it is fetched into (shared by every
//! connection to one build), and the check a command goes through
//! before it is sent.

use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::check::Refusal;
use crate::error::Error;
use crate::introspect::Introspection;
use crate::introspect::cache::{self, BinaryKey};
use crate::options::SchemaPolicy;
use crate::wire::Greeting;

/// What one connection knows of its QEMU's schema.
pub(crate) struct SchemaSlot {
    /// `None`: never fetched (`SchemaPolicy::Off`).
    pub(crate) cell: Option<cache::Cell>,
    /// The build's key, when the peer is a QEMU this process can see.
    pub(crate) key: Option<BinaryKey>,
    /// What this connection settled on: the schema, or why there is none
    /// (a failed fetch is not tried again on this connection).
    pub(crate) settled: tokio::sync::OnceCell<Result<Arc<Introspection>, String>>,
    /// How messages name the QEMU (`QEMU 11.1.3`).
    pub(crate) label: String,
}

impl SchemaSlot {
    /// The slot of a new connection to the peer process `peer_pid`.
    pub(crate) fn new(
        policy: &SchemaPolicy,
        peer_pid: Option<i32>,
        greeting: &Greeting,
    ) -> SchemaSlot {
        let q = &greeting.version.qemu;
        let version = format!("{}.{}.{}", q.major, q.minor, q.micro);
        let key =
            peer_pid.and_then(|pid| BinaryKey::of_pid(pid, &version, &greeting.version.package));
        let settled = tokio::sync::OnceCell::new();
        let cell = match policy {
            SchemaPolicy::Off => None,
            SchemaPolicy::Given(s) => {
                let _ = settled.set(Ok(s.clone()));
                None
            }
            _ => Some(cache::cell(key.as_ref())),
        };
        SchemaSlot {
            cell,
            key,
            settled,
            label: format!("QEMU {version}"),
        }
    }
}

/// Checks command `name` with its encoded `args` against `schema`.
pub(crate) fn check(schema: &Introspection, name: &str, args: &RawValue) -> Result<(), Error> {
    let refuse = |what: String| Error::NotInSchema {
        qemu: schema.label().to_string(),
        command: name.to_string(),
        what,
    };
    let empty;
    let parsed;
    let map: &Map<String, Value> = match args.get() {
        "{}" => {
            empty = Map::new();
            &empty
        }
        text => {
            parsed = serde_json::from_str::<Map<String, Value>>(text).unwrap_or_default();
            &parsed
        }
    };
    match schema.check_command(name, map) {
        Err(None) => Err(refuse(format!("has no command `{name}`"))),
        Ok(()) => Ok(()),
        Err(Some(Refusal::Unexpected(path))) => {
            Err(refuse(format!("has no argument `{path}` of `{name}`")))
        }
        Err(Some(r)) => Err(refuse(format!("would refuse `{name}`: {r}"))),
    }
}
