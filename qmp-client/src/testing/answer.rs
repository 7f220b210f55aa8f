//! What the double sends for one command: events (encoded once, stamped
//! when sent), the answer, and the plan that orders them.

use std::time::Duration;

use serde_json::Value;

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

    /// `{"return": {}}`: done, nothing to say.
    pub(crate) fn done() -> Outcome {
        Outcome::Return("{}".into())
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
