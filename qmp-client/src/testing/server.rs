//! What the test double answers: QMP's capabilities negotiation (or the
//! guest agent's `guest-sync`), input checked as QEMU checks it, each
//! command checked against the schema and answered by the script or the
//! recording, as the steps ([`Out`]) the connection ([`super::link`])
//! carries out.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::replay::Msg;
use super::schema::{Tables, check_command};
use super::script::{Call, Outcome, Plan, State, args_value};
use crate::peer::{Request, Session, error_reply, line, request, return_reply};

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
    let offered = shared.greeting.as_ref().is_some_and(|g| {
        g["QMP"]["capabilities"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "oob"))
    });
    s.gate(req, offered).map(|reply| vec![Out::Write(reply)])
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
