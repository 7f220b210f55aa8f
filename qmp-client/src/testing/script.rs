//! What the test double was told to expect, and what it saw: the
//! expectations (ordered or not, with their answers), the default
//! responder, the calls received, and every failure, for
//! [`super::Mock::verify`].

use std::panic::Location;
use std::time::Duration;

use serde_json::{Map, Value};

use super::replay::Replay;

/// An event message without its time, encoded once (when the test
/// names it): a JSON object, `{"event": ..}` or `{"event": .., "data": ..}`.
#[derive(Debug, Clone)]
pub(crate) struct EventText(std::sync::Arc<str>);

impl EventText {
    /// Event `name` with `data` (JSON text), if any.
    pub(crate) fn of(name: &str, data: Option<&str>) -> EventText {
        let name = Value::from(name);
        EventText(
            match data {
                Some(data) => format!("{{\"event\": {name}, \"data\": {data}}}"),
                None => format!("{{\"event\": {name}}}"),
            }
            .into(),
        )
    }
}

/// An event with the time it is written, first, as QEMU stamps it.
pub(crate) fn stamped(event: &EventText) -> Vec<u8> {
    use std::io::Write;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // `{"event": ..}` without its opening brace.
    let rest = event.0.strip_prefix('{').unwrap_or(&event.0);
    let mut b = Vec::with_capacity(event.0.len() + 64);
    // Writing into a Vec does not fail.
    let _ = writeln!(
        b,
        "{{\"timestamp\": {{\"seconds\": {}, \"microseconds\": {}}}, {rest}",
        now.as_secs(),
        now.subsec_micros()
    );
    b
}

/// How the double answers a command.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// `{"return": ..}`, the value as JSON text (encoded once, when the
    /// test makes the expectation).
    Return(std::sync::Arc<str>),
    /// `{"error": {"class": .., "desc": ..}}`.
    Error { class: String, desc: String },
    /// No answer; the connection stays.
    Silence,
    /// No answer; the connection closes (QEMU died mid-call).
    Close,
    /// The first half of the answer the expectation had (its return or
    /// error), then the connection closes.
    CutReply(Box<Outcome>),
    /// These bytes instead of an answer (garbage, a broken reply).
    Raw(Vec<u8>),
}

/// What to do for one command, in order: events before, the wait, the
/// answer, events after.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) before: Vec<EventText>,
    pub(crate) delay: Duration,
    pub(crate) outcome: Outcome,
    pub(crate) after: Vec<EventText>,
}

impl Outcome {
    /// `{"return": v}`.
    pub(crate) fn returning(v: &Value) -> Outcome {
        Outcome::Return(v.to_string().into())
    }
}

impl Plan {
    pub(crate) fn answer(outcome: Outcome) -> Plan {
        Plan {
            before: Vec::new(),
            delay: Duration::ZERO,
            outcome,
            after: Vec::new(),
        }
    }
}

/// Decides whether a command's arguments are the ones expected (the
/// typed predicate of [`super::Expect::with`]).
pub(crate) type Matcher = Box<dyn Fn(&Value) -> bool + Send + Sync>;

/// A default answer for commands no expectation takes.
pub(crate) type Responder = Box<dyn Fn(&str, &Value) -> Option<super::Reply> + Send + Sync>;

pub(crate) struct Expectation {
    pub(crate) name: &'static str,
    /// Where the test made it.
    pub(crate) at: &'static Location<'static>,
    pub(crate) matcher: Option<Matcher>,
    pub(crate) plan: Plan,
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) calls: usize,
    pub(crate) ordered: bool,
}

impl Expectation {
    fn describe(&self) -> String {
        let filter = if self.matcher.is_some() {
            " (with a predicate)"
        } else {
            ""
        };
        format!(
            "{}{filter}, expected at {}:{}",
            self.name,
            self.at.file(),
            self.at.line()
        )
    }

    fn takes(&self, name: &str, args: &Value) -> bool {
        self.calls < self.max && self.name == name && self.matcher.as_ref().is_none_or(|m| m(args))
    }
}

/// A command the double received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Its name.
    pub name: String,
    /// Its arguments (`{}` when none were given).
    pub args: Value,
    /// Whether it came as `exec-oob`.
    pub oob: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) expectations: Vec<Expectation>,
    /// Index of the first ordered expectation not yet passed.
    pub(crate) cursor: usize,
    pub(crate) responder: Option<Responder>,
    pub(crate) calls: Vec<Call>,
    pub(crate) failures: Vec<String>,
    /// Schema mistakes are answered but not counted as failures.
    pub(crate) allow_invalid: bool,
    pub(crate) replay: Option<Replay>,
    /// Commands still answered before the connection dies.
    pub(crate) die_after: Option<usize>,
    pub(crate) verified: bool,
}

impl State {
    /// What to do with command `name` (already checked against the
    /// schema): the first ordered expectation that takes it, else any
    /// unordered one, else the default responder; else a failure.
    pub(crate) fn plan(&mut self, name: &str, args: &Value) -> Plan {
        // `cursor` indexes the ordered expectations among all.
        let mut i = self.cursor;
        while i < self.expectations.len() {
            let e = &mut self.expectations[i];
            if !e.ordered {
                i += 1;
                continue;
            }
            if e.takes(name, args) {
                e.calls += 1;
                self.cursor = if e.calls == e.max { i + 1 } else { i };
                return e.plan.clone();
            }
            if e.calls < e.min {
                break;
            }
            i += 1;
        }
        if let Some(e) = self
            .expectations
            .iter_mut()
            .find(|e| !e.ordered && e.takes(name, args))
        {
            e.calls += 1;
            return e.plan.clone();
        }
        if let Some(reply) = self.responder.as_ref().and_then(|r| r(name, args)) {
            return Plan::answer(reply.into_outcome());
        }
        let next = self.expectations[self.cursor.min(self.expectations.len())..]
            .iter()
            .find(|e| e.ordered && e.calls < e.max)
            .map(|e| format!("; next expected: {}", e.describe()))
            .unwrap_or_default();
        let desc = format!("unexpected command {name} {args}{next}");
        self.failures.push(desc.clone());
        Plan::answer(Outcome::Error {
            class: "GenericError".into(),
            desc: format!("MockQemu: {desc}"),
        })
    }

    /// Everything that went wrong: failures met, then expectations not
    /// met, then a replay not played to its end.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut out = self.failures.clone();
        for e in &self.expectations {
            if e.calls < e.min {
                out.push(format!(
                    "{}: called {} time(s), expected {}{}",
                    e.describe(),
                    e.calls,
                    e.min,
                    if e.max > e.min && e.max != usize::MAX {
                        format!(" to {}", e.max)
                    } else if e.max == usize::MAX && e.min > 0 {
                        " or more".into()
                    } else {
                        String::new()
                    }
                ));
            }
        }
        if let Some(r) = &self.replay {
            out.extend(r.unplayed());
        }
        out
    }
}

/// The arguments as a value (`{}` when none were given).
pub(crate) fn args_value(args: Option<&Map<String, Value>>) -> Value {
    Value::Object(args.cloned().unwrap_or_default())
}
