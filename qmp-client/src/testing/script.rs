//! What the test double was told to expect, and what it saw: the
//! expectations (ordered or not, with their answers), the default
//! responder, the calls received, and every failure, for
//! [`super::Mock::verify`].

use std::panic::Location;

use serde_json::{Map, Value};

use super::answer::{Outcome, Plan};
use super::replay::Replay;
use super::scenes::Scenes;
use super::schema::Tables;

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
    /// Scripted jobs, migrations and devices.
    pub(crate) scenes: Scenes,
}

impl State {
    /// What to do with command `name` (already checked against the
    /// schema): a scripted job's, migration's or device's own command is
    /// theirs; else the first ordered expectation that takes it, else any
    /// unordered one, else the scripts' queries, else the default
    /// responder; else a failure.
    pub(crate) fn plan(&mut self, tables: &Tables, name: &str, args: &Value) -> Plan {
        self.scenes.observe(name, args);
        if let Some(plan) = self.scenes.first(name, args) {
            return plan;
        }
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
        if let Some(plan) = self.scenes.second(tables, name, args) {
            return plan;
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
        out.extend(self.scenes.problems());
        out
    }
}

/// The arguments as a value (`{}` when none were given).
pub(crate) fn args_value(args: Option<&Map<String, Value>>) -> Value {
    Value::Object(args.cloned().unwrap_or_default())
}
