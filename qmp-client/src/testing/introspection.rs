//! A double described by an introspection instead of the bindings'
//! tables: a QEMU the bindings don't cover (11.1), or a build whose
//! version number does not describe its schema (a backported 9.1). The
//! `query-qmp-schema` reply comes from a JSON file (the array, or a whole
//! reply), a libvirt `.replies` file, or this client's recording; the
//! double greets with the version it is told, checks every command
//! against that schema, and answers `query-qmp-schema` with it.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::replay::find_reply;
use super::script::State;
use super::{MockQemu, qmp_greeting};
use crate::error::{Error, Result};
use crate::introspect::Introspection;

/// A double's introspection: the index its checks use, and the reply
/// it sends.
pub(crate) struct Intro {
    pub(crate) index: Arc<Introspection>,
    /// The `return` value, as JSON text.
    pub(crate) reply: Arc<str>,
}

impl Intro {
    /// From a `query-qmp-schema` reply's `return` value.
    pub(crate) fn of(list: Value, label: &str) -> Result<Intro> {
        let reply: Arc<str> = list.to_string().into();
        let index = Introspection::from_json(reply.as_bytes(), label)
            .map_err(|e| Error::Mock(e.to_string()))?;
        Ok(Intro {
            index: Arc::new(index),
            reply,
        })
    }
}

impl MockQemu {
    /// A double of a QEMU described by its own introspection: `version`
    /// is what it greets with (`9.1.0`, `11.1.3`; any version, covered
    /// by the bindings or not), `path` holds its `query-qmp-schema`
    /// reply: a JSON file (the array, or `{"return": [...]}`), a libvirt
    /// `.replies` file, or this client's recording
    /// ([`crate::Options::record`]) of a session that fetched it. Every
    /// command is checked against that schema (not the bindings'), and
    /// `query-qmp-schema` is answered with it, so a test runs "as QEMU
    /// 11.1" or "as a 9.1 build with 10.0's feature backported" without
    /// bindings for it. A client made by [`MockQemu::connect`] is given
    /// the schema without fetching it (`Options::schema`).
    pub fn with_introspection(version: &str, path: impl AsRef<Path>) -> Result<MockQemu> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Mock(format!("can't read {}: {e}", path.display())))?;
        Self::with_introspection_str(version, &text).map_err(|e| match e {
            Error::Mock(m) => Error::Mock(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// [`MockQemu::with_introspection`] of text in memory.
    pub fn with_introspection_str(version: &str, text: &str) -> Result<MockQemu> {
        if qapi_version(version).is_none() {
            return Err(Error::Mock(format!(
                "`{version}` is not a QEMU version (major.minor.micro)"
            )));
        }
        let list = find_reply(text).ok_or_else(|| {
            Error::Mock("no query-qmp-schema reply in it (a JSON array of SchemaInfo, a reply, a libvirt .replies file or a recording)".into())
        })?;
        let intro = Intro::of(list, &format!("QEMU {version}"))?;
        let mut mock = MockQemu::build(None, Some(qmp_greeting(version, true)), State::default());
        mock.set_introspection(intro);
        Ok(mock)
    }

    /// Gives the double `intro`, before it is shared.
    pub(crate) fn set_introspection(&mut self, intro: Intro) {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.intro = Some(intro);
        }
    }
}

fn qapi_version(v: &str) -> Option<qmp_types::rt::QemuVersion> {
    qmp_types::rt::QemuVersion::parse(v).filter(|_| v.split('.').count() == 3)
}
