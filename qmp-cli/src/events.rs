//! `qmp events`: QEMU's events as JSON lines, each with its timestamp.

use std::time::Duration;

use qmp_client::{Client, EventRecord};
use qmp_types::AnyEvent;
use serde_json::{Value, json};

use crate::args::suggest;
use crate::error::{CliError, Result};

/// What to print.
#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    /// Keep printing events until QEMU closes the connection or the run is
    /// interrupted (Ctrl-C). Without it, `qmp events` prints the next
    /// event (or `--count` events) and exits. QEMU closing the connection
    /// after its `SHUTDOWN` event (a `quit`, a guest power-off) is a
    /// normal end (exit 0); without one (QEMU killed or crashed), exit 3.
    /// Events lost because this reader fell behind are a warning on
    /// stderr; printing goes on.
    #[arg(short, long)]
    pub follow: bool,
    /// Only these events (wire names, `JOB_STATUS_CHANGE`; repeat the flag
    /// or separate with commas).
    #[arg(long, value_name = "NAME", value_delimiter = ',', num_args = 1..)]
    pub filter: Vec<String>,
    /// Exit after this many events.
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
    /// Give up after this many seconds without a matching event (exit
    /// code 4).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

/// Checks `--filter` names against the events the bindings know.
pub fn check_filter(names: &[String]) -> Result<()> {
    let known = || qmp_types::EVENTS.iter().map(|m| m.name);
    for n in names {
        if !known().any(|k| k == n) {
            let s = suggest(n, known());
            return Err(CliError::Usage(match s.first() {
                Some(s) => format!("--filter {n}: no such event; did you mean {s}?"),
                None => format!("--filter {n}: no such event (see `qmp events --help`)"),
            }));
        }
    }
    Ok(())
}

/// One event as a JSON line: `timestamp` as QEMU sent it, `time` as
/// RFC 3339 UTC, `event`, `data` (re-encoded through its typed form), and
/// `error` for an event whose data did not fit its type.
pub fn to_json(r: &EventRecord) -> Value {
    let data = event_data(&r.event);
    let mut line = json!({
        "timestamp": {"seconds": r.timestamp.seconds, "microseconds": r.timestamp.microseconds},
        "time": rfc3339(r.timestamp.seconds, r.timestamp.microseconds),
        "event": r.event.name(),
        "data": data,
    });
    if let AnyEvent::Malformed { error, .. } = &r.event {
        line["error"] = Value::String(error.clone());
    }
    line
}

/// An event's data as JSON.
pub fn event_data(e: &AnyEvent) -> Value {
    struct Data<'a>(&'a AnyEvent);
    impl serde::Serialize for Data<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.serialize_data(s)
        }
    }
    serde_json::to_value(Data(e)).unwrap_or_else(|e| json!({"unencodable": e.to_string()}))
}

/// `seconds.micros` since the epoch as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
pub fn rfc3339(seconds: i64, micros: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        micros.clamp(0, 999_999)
    )
}

/// Prints events as they arrive (`a.filter` checked by [`check_filter`]
/// before connecting).
pub async fn run(client: &Client, a: &EventsArgs) -> Result<()> {
    let limit = match (a.count, a.follow) {
        (Some(n), _) => Some(n),
        (None, true) => None,
        (None, false) => Some(1),
    };
    let timeout = a
        .timeout
        .map(Duration::try_from_secs_f64)
        .transpose()
        .map_err(|_| CliError::Usage("--timeout must be a positive number".into()))?;
    let mut stream = client.events();
    let mut printed = 0u64;
    // Whether QEMU said it was shutting down: then a closed connection is
    // the normal end of a follow.
    let mut shut_down = false;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while limit.is_none_or(|n| printed < n) {
        let next = async {
            loop {
                let r = match stream.next().await {
                    // A gap is told, and the printing goes on.
                    Err(qmp_client::Error::EventsLost(n)) => {
                        eprintln!(
                            "qmp: warning: {n} events were lost here (this reader fell behind)"
                        );
                        continue;
                    }
                    r => r?,
                };
                shut_down |= r.event.name() == "SHUTDOWN";
                if a.filter.is_empty() || a.filter.iter().any(|f| f == r.event.name()) {
                    return Ok::<_, qmp_client::Error>(r);
                }
            }
        };
        let r = tokio::select! {
            r = async {
                match timeout {
                    Some(t) => tokio::time::timeout(t, next).await.map_err(|_| t),
                    None => Ok(next.await),
                }
            } => r,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let r = match r {
            Ok(Ok(r)) => r,
            // The normal end: nothing to say.
            Ok(Err(e)) if a.follow && e.is_socket_closed() && shut_down => return Ok(()),
            Ok(Err(e)) if e.is_socket_closed() => {
                return Err(CliError::Connection(e));
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(t) => {
                return Err(CliError::Io(format!(
                    "no matching event within {:.1} s",
                    t.as_secs_f64()
                )));
            }
        };
        writeln!(out, "{}", to_json(&r)).map_err(|e| CliError::Io(e.to_string()))?;
        out.flush().map_err(|e| CliError::Io(e.to_string()))?;
        printed += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_764_567_000, 123), "2025-12-01T05:30:00.000123Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
    }
}
