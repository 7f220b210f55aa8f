//! What the test double answers: QMP's capabilities negotiation (or the
//! guest agent's `guest-sync`), input checked as QEMU checks it, each
//! command checked against the schema and answered by the script or the
//! recording, as the steps ([`Out`]) the connection ([`super::link`])
//! carries out.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;

use super::answer::{Outcome, Plan, stamped};
use super::introspection::Intro;
use super::replay::Msg;
use super::schema::{Refusal, Tables, check_command};
use super::script::{Call, State, args_value};
use crate::peer::{Request, Session, error_reply, line, request, return_reply};

/// What every connection of one double shares.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) tables: &'static Tables,
    /// The version the schema checks use; `None`: no checks (a
    /// recording of a QEMU the bindings don't cover), unless `intro`.
    pub(crate) version: Option<&'static str>,
    /// The QEMU's own introspection, when the double was given one: its
    /// checks use it instead of the tables, and it answers
    /// `query-qmp-schema`.
    pub(crate) intro: Option<Intro>,
    /// The greeting's line (QMP only).
    pub(crate) greeting: Option<Vec<u8>>,
    /// The greeting offers OOB.
    pub(crate) oob_offered: bool,
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

/// The answer to one line from the client, added to `out`.
pub(crate) fn handle(shared: &Shared, s: &mut Session, raw: &[u8], out: &mut Vec<Out>) {
    match answer(shared, s, raw) {
        Answer::Plan {
            plan,
            id,
            silent_success,
        } => outs_of(plan, id.as_deref(), silent_success, out),
        Answer::Steps(steps) => out.extend(steps),
    }
}

/// What [`handle`] does: a plan of the script (the common case, its
/// steps written straight into the connection's list), or steps made
/// here.
enum Answer {
    Plan {
        plan: Plan,
        id: Option<Box<RawValue>>,
        silent_success: bool,
    },
    Steps(Vec<Out>),
}

impl From<Vec<Out>> for Answer {
    fn from(steps: Vec<Out>) -> Answer {
        Answer::Steps(steps)
    }
}

fn answer(shared: &Shared, s: &mut Session, raw: &[u8]) -> Answer {
    // The guest agent's client may send 0xFF bytes to reset the parser.
    let text: Cow<'_, [u8]> = if shared.agent && raw.contains(&0xff) {
        raw.iter().copied().filter(|&b| b != 0xff).collect()
    } else {
        Cow::Borrowed(raw)
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Vec::new().into();
    }
    let req = match request(&text, shared.agent) {
        Ok(r) => r,
        Err((desc, id)) => {
            return vec![Out::Write(error_reply(
                "GenericError",
                &desc,
                id.as_deref(),
            ))]
            .into();
        }
    };
    if !shared.agent && s.negotiated && req.name == "query-qmp-schema" {
        return schema_reply(shared, &req).into();
    }
    let mut state = shared.lock();
    if state.replay.is_some() {
        return replayed(shared, &mut state, s, &req).into();
    }
    if let Some(outs) = protocol(shared, s, &req) {
        return outs.into();
    }
    let id = req.id.as_deref();
    if let Some(n) = state.die_after.as_mut() {
        if *n == 0 {
            return vec![Out::Close].into();
        }
        *n -= 1;
    }
    let meta = match checked(shared, &mut state, &req) {
        Ok(meta) => meta,
        Err(reply) => return vec![Out::Write(reply)].into(),
    };
    let allow_oob = match &shared.intro {
        Some(i) => i.index.allows_oob(&req.name),
        None => meta.is_some_and(|m| m.allow_oob),
    };
    if req.oob && !allow_oob {
        let desc = format!("The command {} does not support OOB", req.name);
        return vec![Out::Write(error_reply("GenericError", &desc, id))].into();
    }
    let args = Value::Object(req.args.unwrap_or_default());
    let plan = state.plan(shared.tables, &req.name, &args);
    state.calls.push(Call {
        name: req.name,
        args,
        oob: req.oob,
    });
    let silent_success = meta.is_some_and(|m| !m.success_response);
    drop(state);
    Answer::Plan {
        plan,
        id: req.id,
        silent_success,
    }
}

/// The schema check: the command's meta (`None` when the double checks
/// nothing), or the error reply QEMU would give (noted as a failure
/// unless the test allows mistakes).
fn checked(
    shared: &Shared,
    state: &mut State,
    req: &Request,
) -> Result<Option<&'static qmp_types::rt::CommandMeta>, Vec<u8>> {
    let (verdict, who) = match (&shared.intro, shared.version) {
        (Some(intro), _) => (
            by_introspection(intro, req),
            intro.index.label().to_string(),
        ),
        (None, Some(version)) => (
            check_command(shared.tables, version, &req.name, req.args.as_ref()),
            format!("QEMU {version}"),
        ),
        (None, None) => return Ok(None),
    };
    match verdict {
        Ok(meta) => Ok(Some(meta)),
        Err(refusal) => {
            if !state.allow_invalid {
                let args = args_value(req.args.as_ref());
                state.failures.push(format!(
                    "{} {args}: {who} refuses it: {}: {}",
                    req.name, refusal.class, refusal.desc
                ));
            }
            Err(error_reply(refusal.class, &refusal.desc, req.id.as_deref()))
        }
    }
}

/// A command checked against the double's introspection; the bindings'
/// metadata of it (for `success-response`), when they know it.
fn by_introspection(
    intro: &Intro,
    req: &Request,
) -> Result<&'static qmp_types::rt::CommandMeta, Refusal> {
    let empty = serde_json::Map::new();
    match intro
        .index
        .check_command(&req.name, req.args.as_ref().unwrap_or(&empty))
    {
        Ok(()) => Ok(qmp_types::COMMANDS
            .iter()
            .find(|c| c.name == req.name)
            .unwrap_or(&OPEN_META)),
        Err(None) => Err(Refusal {
            class: "CommandNotFound",
            desc: format!("The command {} has not been found", req.name),
        }),
        Err(Some(r)) => Err(Refusal {
            class: "GenericError",
            desc: r.to_string(),
        }),
    }
}

/// What the double assumes of a command its introspection has and the
/// bindings don't: it answers.
static OPEN_META: qmp_types::rt::CommandMeta = qmp_types::rt::CommandMeta {
    name: "",
    arg_type: None,
    ret_type: None,
    allow_oob: false,
    allow_preconfig: false,
    success_response: true,
    deprecated: false,
    unstable: false,
    since: None,
    condition: None,
    features: &[],
    versions: &[],
    partial_args: &[],
};

/// `query-qmp-schema`: the double answers it itself, never the script
/// (the client fetches it on its own, before the code's first command):
/// from its introspection, or, for a double of a covered version, with
/// an error that sends the client to its version tables, which decide as
/// the double's own checks do (a recording without the reply, whose
/// `query-qmp-schema` exchanges are taken out of the sequence anyway,
/// gets the error too).
fn schema_reply(shared: &Shared, req: &Request) -> Vec<Out> {
    let id = req.id.as_deref();
    let reply = match &shared.intro {
        Some(intro) => return_reply(&intro.reply, id),
        None => error_reply(
            "GenericError",
            "MockQemu: no introspection for this QEMU (MockQemu::with_introspection gives one); the bindings' tables decide",
            id,
        ),
    };
    vec![Out::Write(reply)]
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
    s.gate(req, shared.oob_offered)
        .map(|reply| vec![Out::Write(reply)])
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
fn outs_of(plan: Plan, id: Option<&RawValue>, silent_success: bool, outs: &mut Vec<Out>) {
    outs.extend(plan.before.iter().map(|e| Out::Write(stamped(e))));
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
            return;
        }
        Outcome::CutReply(answer) => {
            let full = match *answer {
                Outcome::Return(v) => return_reply(&v, id),
                Outcome::Error { class, desc } => error_reply(&class, &desc, id),
                _ => return_reply("{}", id),
            };
            outs.push(Out::Write(full[..full.len() / 2].to_vec()));
            outs.push(Out::Close);
            return;
        }
    }
    outs.extend(plan.after.iter().map(|e| Out::Write(stamped(e))));
}
