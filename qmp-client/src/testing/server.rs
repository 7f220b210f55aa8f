//! What the test double answers: QMP's capabilities negotiation (or the
//! guest agent's `guest-sync`), input checked as QEMU checks it, each
//! command checked against the schema and answered by the script or the
//! recording, as the steps ([`Out`]) the connection ([`super::link`])
//! carries out.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::replay::Msg;
use super::schema::{Tables, check_command};
use super::script::{Call, Outcome, Plan, State, args_value};

/// What every connection of one double shares.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) tables: &'static Tables,
    /// The version the schema checks use; `None`: no checks (a
    /// recording of a QEMU the bindings don't cover).
    pub(crate) version: Option<&'static str>,
    /// The greeting (QMP only).
    pub(crate) greeting: Option<Value>,
    pub(crate) agent: bool,
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One step of an answer.
#[derive(Debug)]
pub(crate) enum Out {
    Write(Vec<u8>),
    Sleep(Duration),
    Close,
}

/// Per-connection protocol state.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// Capabilities negotiated (the guest agent has none: always).
    pub(crate) negotiated: bool,
    /// Out-of-band execution negotiated.
    pub(crate) oob: bool,
}

pub(crate) fn line(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    b
}

/// An event with the time it is written, as QEMU stamps it.
pub(crate) fn stamped(mut event: Value) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    if let Some(o) = event.as_object_mut() {
        o.insert(
            "timestamp".into(),
            json!({"seconds": now.as_secs(), "microseconds": now.subsec_micros()}),
        );
    }
    line(&event)
}

/// A reply line: `{"KEY": body, "id": id}` (the id as the command had
/// it, byte for byte).
fn reply(key: &str, body: &str, id: Option<&RawValue>) -> Vec<u8> {
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

fn error_reply(class: &str, desc: &str, id: Option<&RawValue>) -> Vec<u8> {
    reply(
        "error",
        &json!({"class": class, "desc": desc}).to_string(),
        id,
    )
}

fn return_reply(json_text: &str, id: Option<&RawValue>) -> Vec<u8> {
    reply("return", json_text, id)
}

/// A command as QEMU's dispatcher takes it apart.
struct Request {
    name: String,
    args: Option<Map<String, Value>>,
    id: Option<Box<RawValue>>,
    oob: bool,
}

/// A message's parts; values are parsed only where needed.
type Envelope<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

/// Checks the message's envelope, in QEMU's words.
fn request(text: &[u8], agent: bool) -> Result<Request, (String, Option<Box<RawValue>>)> {
    let mut o: Envelope<'_> = match serde_json::from_slice(text) {
        Ok(o) => o,
        Err(_) => {
            // Not JSON, or not an object: say which.
            return Err(match serde_json::from_slice::<Value>(text) {
                Ok(_) => ("QMP input must be a JSON object".into(), None),
                Err(e) => (format!("JSON parse error, {e}"), None),
            });
        }
    };
    let id = o.remove("id").map(ToOwned::to_owned);
    let fail = |m: String| Err((m, id.clone()));
    for k in o.keys() {
        if !["execute", "exec-oob", "arguments", "control"].contains(&k.as_ref())
            || (agent && k == "exec-oob")
        {
            return fail(format!("QMP input member '{k}' is unexpected"));
        }
    }
    let (name, oob) = match (o.remove("execute"), o.remove("exec-oob")) {
        (Some(_), Some(_)) => {
            return fail("QMP input must have exactly one of 'execute' and 'exec-oob'".into());
        }
        (Some(n), None) => (n, false),
        (None, Some(n)) => (n, true),
        (None, None) => return fail("QMP input lacks member 'execute'".into()),
    };
    let Ok(name) = serde_json::from_str::<String>(name.get()) else {
        let member = if oob { "exec-oob" } else { "execute" };
        return fail(format!("QMP input member '{member}' must be a string"));
    };
    let args = match o.remove("arguments") {
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

/// The answer to one line from the client.
pub(crate) fn handle(shared: &Shared, s: &mut Session, raw: &[u8]) -> Vec<Out> {
    // The guest agent's client may send 0xFF bytes to reset the parser.
    let text: Cow<'_, [u8]> = if shared.agent && raw.contains(&0xff) {
        raw.iter().copied().filter(|&b| b != 0xff).collect()
    } else {
        Cow::Borrowed(raw)
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Vec::new();
    }
    let req = match request(&text, shared.agent) {
        Ok(r) => r,
        Err((desc, id)) => {
            return vec![Out::Write(error_reply(
                "GenericError",
                &desc,
                id.as_deref(),
            ))];
        }
    };
    let mut state = shared.lock();
    if state.replay.is_some() {
        return replayed(shared, &mut state, s, &req);
    }
    if let Some(outs) = protocol(shared, s, &req) {
        return outs;
    }
    let id = req.id.as_deref();
    if let Some(n) = state.die_after.as_mut() {
        if *n == 0 {
            return vec![Out::Close];
        }
        *n -= 1;
    }
    let args = args_value(req.args.as_ref());
    let meta = match checked(shared, &mut state, &req) {
        Ok(meta) => meta,
        Err(reply) => return vec![Out::Write(reply)],
    };
    if req.oob && !meta.is_some_and(|m| m.allow_oob) {
        let desc = format!("The command {} does not support OOB", req.name);
        return vec![Out::Write(error_reply("GenericError", &desc, id))];
    }
    state.calls.push(Call {
        name: req.name.clone(),
        args: args.clone(),
        oob: req.oob,
    });
    let plan = state.plan(&req.name, &args);
    let silent_success = meta.is_some_and(|m| !m.success_response);
    drop(state);
    outs_of(plan, id, silent_success)
}

/// The schema check: the command's meta (`None` when the double checks
/// nothing), or the error reply QEMU would give (noted as a failure
/// unless the test allows mistakes).
fn checked(
    shared: &Shared,
    state: &mut State,
    req: &Request,
) -> Result<Option<&'static qmp_types::rt::CommandMeta>, Vec<u8>> {
    let Some(version) = shared.version else {
        return Ok(None);
    };
    match check_command(shared.tables, version, &req.name, req.args.as_ref()) {
        Ok(meta) => Ok(Some(meta)),
        Err(refusal) => {
            if !state.allow_invalid {
                let args = args_value(req.args.as_ref());
                state.failures.push(format!(
                    "{} {args}: QEMU {version} refuses it: {}: {}",
                    req.name, refusal.class, refusal.desc
                ));
            }
            Err(error_reply(refusal.class, &refusal.desc, req.id.as_deref()))
        }
    }
}

/// Capabilities negotiation, `exec-oob` rules, and the guest agent's
/// synchronisation: answered here, never by the script.
fn protocol(shared: &Shared, s: &mut Session, req: &Request) -> Option<Vec<Out>> {
    let id = req.id.as_deref();
    let err = |class: &str, desc: &str| Some(vec![Out::Write(error_reply(class, desc, id))]);
    if shared.agent {
        let sync_id = || {
            req.args
                .as_ref()
                .and_then(|a| a.get("id"))
                .unwrap_or(&Value::Null)
                .to_string()
        };
        return match req.name.as_str() {
            "guest-sync-delimited" => {
                let mut b = vec![0xff];
                b.extend(return_reply(&sync_id(), id));
                Some(vec![Out::Write(b)])
            }
            "guest-sync" => Some(vec![Out::Write(return_reply(&sync_id(), id))]),
            _ => None,
        };
    }
    if !s.negotiated {
        if req.name != "qmp_capabilities" {
            return err(
                "CommandNotFound",
                "Expecting capabilities negotiation with 'qmp_capabilities'",
            );
        }
        let offered = shared.greeting.as_ref().is_some_and(|g| {
            g["QMP"]["capabilities"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "oob"))
        });
        let enable = req.args.as_ref().and_then(|a| a.get("enable"));
        let mut oob = false;
        for cap in enable.and_then(Value::as_array).into_iter().flatten() {
            match cap.as_str() {
                Some("oob") if offered => oob = true,
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
        s.negotiated = true;
        s.oob = oob;
        return Some(vec![Out::Write(return_reply("{}", id))]);
    }
    if req.name == "qmp_capabilities" {
        return err(
            "CommandNotFound",
            "Capabilities negotiation is already complete, command ignored",
        );
    }
    if req.oob && !s.oob {
        return err(
            "GenericError",
            "Please enable out-of-band first for the session during capabilities negotiation",
        );
    }
    None
}

/// A command answered from a recording.
fn replayed(shared: &Shared, state: &mut State, s: &mut Session, req: &Request) -> Vec<Out> {
    let id = req.id.as_deref();
    if let Err(reply) = checked(shared, state, req) {
        return vec![Out::Write(reply)];
    }
    let args = args_value(req.args.as_ref());
    state.calls.push(Call {
        name: req.name.clone(),
        args: args.clone(),
        oob: req.oob,
    });
    if req.name == "qmp_capabilities" {
        s.negotiated = true;
        s.oob = args["enable"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "oob"));
    }
    let Some(replay) = state.replay.as_mut() else {
        return Vec::new();
    };
    let id_value = id.and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
    match replay.next(&req.name, &args, id_value.as_ref()) {
        Ok(msgs) => msgs
            .into_iter()
            .map(|m| match m {
                Msg::Json(v) => Out::Write(line(&v)),
                Msg::Raw(t) => Out::Write(format!("{t}\n").into_bytes()),
            })
            .collect(),
        Err(departure) => {
            state.failures.push(departure.clone());
            vec![Out::Write(error_reply(
                "GenericError",
                &format!("MockQemu: {departure}"),
                id,
            ))]
        }
    }
}

/// The steps of a plan: events before, the wait, the answer, events
/// after.
fn outs_of(plan: Plan, id: Option<&RawValue>, silent_success: bool) -> Vec<Out> {
    let mut outs: Vec<Out> = plan
        .before
        .into_iter()
        .map(|e| Out::Write(stamped(e)))
        .collect();
    if !plan.delay.is_zero() {
        outs.push(Out::Sleep(plan.delay));
    }
    match plan.outcome {
        Outcome::Return(_) if silent_success => {}
        Outcome::Return(v) => outs.push(Out::Write(return_reply(&v, id))),
        Outcome::Error { class, desc } => outs.push(Out::Write(error_reply(&class, &desc, id))),
        Outcome::Silence => {}
        Outcome::Raw(b) => outs.push(Out::Write(b)),
        Outcome::Close => {
            outs.push(Out::Close);
            return outs;
        }
        Outcome::CutReply => {
            let full = return_reply("{}", id);
            outs.push(Out::Write(full[..full.len() / 2].to_vec()));
            outs.push(Out::Close);
            return outs;
        }
    }
    outs.extend(plan.after.into_iter().map(|e| Out::Write(stamped(e))));
    outs
}
