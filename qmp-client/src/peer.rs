//! The server's side of QMP, for the servers this crate plays (the proxy,
//! the test double): a client's message taken apart and checked as
//! QEMU's dispatcher checks it, capabilities negotiation and the
//! `exec-oob` rules, and replies encoded; every refusal in QEMU's words.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// A message as one line.
pub(crate) fn line(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    b
}

/// A reply line: `{"KEY": body, "id": id}` (the id as the command had
/// it, byte for byte).
pub(crate) fn reply(key: &str, body: &str, id: Option<&RawValue>) -> Vec<u8> {
    let mut b = Vec::with_capacity(body.len() + 32);
    b.extend_from_slice(b"{\"");
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(b"\": ");
    b.extend_from_slice(body.as_bytes());
    if let Some(id) = id {
        b.extend_from_slice(b", \"id\": ");
        b.extend_from_slice(id.get().as_bytes());
    }
    b.extend_from_slice(b"}\n");
    b
}

pub(crate) fn error_reply(class: &str, desc: &str, id: Option<&RawValue>) -> Vec<u8> {
    reply(
        "error",
        &json!({"class": class, "desc": desc}).to_string(),
        id,
    )
}

pub(crate) fn return_reply(json_text: &str, id: Option<&RawValue>) -> Vec<u8> {
    reply("return", json_text, id)
}

/// A command as QEMU's dispatcher takes it apart.
pub(crate) struct Request {
    /// The command's name.
    pub(crate) name: String,
    /// Its arguments, when given.
    pub(crate) args: Option<Map<String, Value>>,
    /// Its id, as the client wrote it.
    pub(crate) id: Option<Box<RawValue>>,
    /// Sent with `exec-oob`.
    pub(crate) oob: bool,
}

/// A message's parts; values are parsed only where needed. A repeated
/// key keeps its last value.
#[derive(Default)]
struct Envelope<'a> {
    execute: Option<&'a RawValue>,
    exec_oob: Option<&'a RawValue>,
    arguments: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    /// The first key, in sorted order, QMP does not know (`control` is
    /// known and ignored, as QEMU ignores it).
    unexpected: Option<Cow<'a, str>>,
}

/// A key borrowed from the message when it has no escapes (serde's own
/// `Cow` always copies).
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
                Ok(Cow::Owned(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Envelope<'de>, A::Error> {
                let mut e = Envelope::default();
                while let Some(key) = map.next_key_seed(Key)? {
                    let value: &'de RawValue = map.next_value()?;
                    match key.as_ref() {
                        "execute" => e.execute = Some(value),
                        "exec-oob" => e.exec_oob = Some(value),
                        "arguments" => e.arguments = Some(value),
                        "id" => e.id = Some(value),
                        "control" => {}
                        _ => {
                            if e.unexpected.as_ref().is_none_or(|u| key < *u) {
                                e.unexpected = Some(key);
                            }
                        }
                    }
                }
                Ok(e)
            }
        }
        d.deserialize_map(V)
    }
}

/// Takes a client's message apart, checking its envelope as QEMU does
/// (for the guest agent, `exec-oob` is unexpected); what is wrong, in
/// QEMU's words, with the id if there was one.
pub(crate) fn request(
    text: &[u8],
    agent: bool,
) -> Result<Request, (String, Option<Box<RawValue>>)> {
    let o: Envelope<'_> = match serde_json::from_slice(text) {
        Ok(o) => o,
        Err(_) => {
            // Not JSON, or not an object: say which.
            return Err(match serde_json::from_slice::<Value>(text) {
                Ok(_) => ("QMP input must be a JSON object".into(), None),
                Err(e) => (format!("JSON parse error, {e}"), None),
            });
        }
    };
    let id = o.id.map(ToOwned::to_owned);
    let fail = |m: String| Err((m, id.clone()));
    // Of several, the first in sorted order (a stable choice; QEMU names
    // whichever its hash table yields first).
    let unexpected = match (&o.unexpected, agent && o.exec_oob.is_some()) {
        (Some(k), true) if k.as_ref() < "exec-oob" => Some(k.as_ref()),
        (_, true) => Some("exec-oob"),
        (k, false) => k.as_deref(),
    };
    if let Some(k) = unexpected {
        return fail(format!("QMP input member '{k}' is unexpected"));
    }
    let (name, oob) = match (o.execute, o.exec_oob) {
        (Some(_), Some(_)) => {
            return fail("QMP input must have exactly one of 'execute' and 'exec-oob'".into());
        }
        (Some(n), None) => (n, false),
        (None, Some(n)) => (n, true),
        (None, None) => return fail("QMP input lacks member 'execute'".into()),
    };
    // A name without escapes, as every client writes it, is taken as it
    // is; anything else goes through the JSON parser.
    let plain = name
        .get()
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .filter(|n| !n.contains(['\\', '"']));
    let parsed = match plain {
        Some(n) => Ok(n.to_string()),
        None => serde_json::from_str::<String>(name.get()),
    };
    let Ok(name) = parsed else {
        let member = if oob { "exec-oob" } else { "execute" };
        return fail(format!("QMP input member '{member}' must be a string"));
    };
    let args = match o.arguments {
        None => None,
        Some(a) => match serde_json::from_str::<Map<String, Value>>(a.get()) {
            Ok(a) => Some(a),
            Err(_) => return fail("QMP input member 'arguments' must be an object".into()),
        },
    };
    Ok(Request {
        name,
        args,
        id,
        oob,
    })
}

/// One client's negotiation.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// Capabilities negotiated (the guest agent has none: always).
    pub(crate) negotiated: bool,
    /// Out-of-band execution negotiated.
    pub(crate) oob: bool,
}

impl Session {
    /// QMP's own part of a command: negotiation before anything else,
    /// `qmp_capabilities` only once, `exec-oob` only when negotiated
    /// (`oob_offered`: the greeting offers it). The reply when QMP itself
    /// answers; `None` when the command is for the server to run.
    pub(crate) fn gate(&mut self, req: &Request, oob_offered: bool) -> Option<Vec<u8>> {
        let id = req.id.as_deref();
        let err = |class: &str, desc: &str| Some(error_reply(class, desc, id));
        if !self.negotiated {
            if req.name != "qmp_capabilities" {
                return err(
                    "CommandNotFound",
                    "Expecting capabilities negotiation with 'qmp_capabilities'",
                );
            }
            let enable = req.args.as_ref().and_then(|a| a.get("enable"));
            let mut oob = false;
            for cap in enable.and_then(Value::as_array).into_iter().flatten() {
                match cap.as_str() {
                    Some("oob") if oob_offered => oob = true,
                    Some("oob") => return err("GenericError", "Capability 'oob' not available"),
                    Some(other) => {
                        return err(
                            "GenericError",
                            &format!("Parameter 'null' does not accept value '{other}'"),
                        );
                    }
                    None => {
                        return err(
                            "GenericError",
                            "Invalid parameter type for 'null', expected: string",
                        );
                    }
                }
            }
            self.negotiated = true;
            self.oob = oob;
            return Some(return_reply("{}", id));
        }
        if req.name == "qmp_capabilities" {
            return err(
                "CommandNotFound",
                "Capabilities negotiation is already complete, command ignored",
            );
        }
        if req.oob && !self.oob {
            return err(
                "GenericError",
                "Please enable out-of-band first for the session during capabilities negotiation",
            );
        }
        None
    }
}
