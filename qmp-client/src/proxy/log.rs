//! The proxy's log ([`super::ProxyOptions::log`]): one JSON line per
//! message a client sent and per client dropped, written to a file only
//! its owner can read, with secrets replaced unless the operator asks to
//! keep them. The format is documented on the module ([`super`]).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::peer::Request;

/// What a secret's value is replaced with.
pub(super) const REDACTED: &str = "<redacted>";

/// HMP commands whose arguments can hold a secret (`object_add
/// secret,data=...`, `set_password vnc ...`, `change vnc password ...`,
/// `sendkey` typing into the guest).
const HMP_SECRETS: [&str; 4] = ["object_add", "set_password", "change", "sendkey"];

/// Properties whose value `qom-set` may carry as a secret (a `secret`
/// object's `data`, a display's `password`).
const QOM_SECRETS: [&str; 2] = ["data", "password"];

/// The log file.
pub(super) struct Log {
    file: Mutex<std::fs::File>,
    start: Instant,
    keep_secrets: bool,
}

/// Who sent a message.
#[derive(Clone, Copy)]
pub(super) struct Who {
    /// The client's number.
    pub(super) client: u64,
    /// The peer's process, when the socket tells it.
    pub(super) pid: Option<i32>,
    /// The peer's user.
    pub(super) uid: Option<u32>,
}

impl Log {
    /// Creates (or truncates) the log at `path`, readable and writable by
    /// its owner only (mode 0600, also when the file was there before).
    pub(super) fn create(path: &Path, keep_secrets: bool) -> Result<Log> {
        let failed = |source| Error::Record {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(failed)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
        Ok(Log {
            file: Mutex::new(file),
            start: Instant::now(),
            keep_secrets,
        })
    }

    fn entry(&self, who: Who) -> Map<String, Value> {
        let mut o = Map::new();
        o.insert(
            "t".into(),
            json!((self.start.elapsed().as_secs_f64() * 1e6).round() / 1e6),
        );
        o.insert("client".into(), json!(who.client));
        o.insert("pid".into(), json!(who.pid));
        o.insert("uid".into(), json!(who.uid));
        o
    }

    /// A command: its name, arguments (secrets replaced), whether it went
    /// out of band and whether the proxy refused it.
    pub(super) fn command(&self, who: Who, req: &Request, refused: bool) {
        let mut args = Value::Object(req.args.clone().unwrap_or_default());
        if !self.keep_secrets {
            redact(&req.name, &mut args);
        }
        let mut o = self.entry(who);
        o.insert("command".into(), json!(req.name));
        o.insert("arguments".into(), args);
        o.insert("oob".into(), json!(req.oob));
        o.insert("refused".into(), json!(refused));
        self.write(o);
    }

    /// A message the proxy could not take as a command: its size in
    /// `bytes`, why, and (only when secrets are kept: it may hold one) the
    /// first bytes of `text`, what of it the proxy holds.
    pub(super) fn unparsable(&self, who: Who, text: &[u8], bytes: usize, error: &str) {
        let mut o = self.entry(who);
        o.insert("unparsable".into(), json!(error));
        o.insert("bytes".into(), json!(bytes));
        if self.keep_secrets {
            let head = &text[..text.len().min(256)];
            o.insert(
                "excerpt".into(),
                json!(String::from_utf8_lossy(head).into_owned()),
            );
        }
        self.write(o);
    }

    /// A client dropped for going over a budget.
    pub(super) fn dropped(&self, who: Who, reason: &str) {
        let mut o = self.entry(who);
        o.insert("dropped".into(), json!(reason));
        self.write(o);
    }

    fn write(&self, o: Map<String, Value>) {
        let mut text = escape_separators(&Value::Object(o).to_string());
        text.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(text.as_bytes()) {
            tracing::warn!(error = %e, "proxy: writing the log failed");
        }
    }
}

/// Replaces the members of `command`'s arguments that hold a secret,
/// as QAPI defines them: a `secret` object's `data`
/// (`SecretProperties`, `object-add`, flat or under `props`), the
/// password of `set_password` and `change-vnc-password`, the launch
/// secret of `sev-inject-launch-secret`, the `value` of a `qom-set` of a
/// `data` or `password` property, a curl driver's `cookie` at any
/// depth of `blockdev-add`, `blockdev-reopen` and `blockdev-create`,
/// the keys typed into the guest (`send-key`'s `keys`, the key of each
/// `key` event of `input-send-event`: they may spell a password), and
/// what follows the command word of an HMP line
/// (`human-monitor-command`) for `object_add`, `set_password`, `change`
/// and `sendkey`. Members that name a secret object (`password-secret`,
/// `key-secret`, `cookie-secret`, LUKS's `new-secret`) are ids and
/// stay.
pub(super) fn redact(command: &str, args: &mut Value) {
    let Some(o) = args.as_object_mut() else {
        return;
    };
    let hide = |v: Option<&mut Value>| {
        if let Some(v) = v {
            *v = Value::from(REDACTED);
        }
    };
    match command {
        "object-add" if o.get("qom-type").and_then(Value::as_str) == Some("secret") => {
            hide(o.get_mut("data"));
            hide(o.get_mut("props").and_then(|p| p.get_mut("data")));
        }
        "set_password" | "change-vnc-password" => hide(o.get_mut("password")),
        "sev-inject-launch-secret" => hide(o.get_mut("secret")),
        "qom-set" => {
            let secret = o
                .get("property")
                .and_then(Value::as_str)
                .is_some_and(|p| QOM_SECRETS.contains(&p));
            hide(o.get_mut("value").filter(|_| secret));
        }
        // Keys typed into the guest may be a password.
        "send-key" => hide(o.get_mut("keys")),
        "input-send-event" => {
            let events = o.get_mut("events").and_then(Value::as_array_mut);
            for e in events.into_iter().flatten() {
                if e.get("type").and_then(Value::as_str) == Some("key") {
                    hide(e.get_mut("data").and_then(|d| d.get_mut("key")));
                }
            }
        }
        "blockdev-add" | "blockdev-reopen" | "x-blockdev-reopen" | "blockdev-create" => {
            hide_member(args, "cookie");
        }
        "human-monitor-command" => {
            if let Some(Value::String(line)) = o.get_mut("command-line") {
                let word = line.split_whitespace().next().unwrap_or("");
                if HMP_SECRETS.contains(&word) {
                    *line = format!("{word} {REDACTED}");
                }
            }
        }
        _ => {}
    }
}

/// Hides every member called `name`, at any depth.
fn hide_member(v: &mut Value, name: &str) {
    match v {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if k == name && v.is_string() {
                    *v = Value::from(REDACTED);
                } else {
                    hide_member(v, name);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| hide_member(v, name)),
        _ => {}
    }
}

/// JSON text with the C1 controls (U+0080 to U+009F, NEL among them) and
/// the line and paragraph separators (U+2028, U+2029) written as `\u`
/// escapes: tools that split lines on them (or JavaScript, before ES2019)
/// see one line per entry. They only occur inside strings, where the
/// escape means the same.
pub(super) fn escape_separators(text: &str) -> String {
    let odd = |c: char| matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}');
    if !text.contains(odd) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if odd(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_and_ids_of_secrets_kept() {
        let cases = [
            (
                "object-add",
                json!({"qom-type": "secret", "id": "s0", "data": "hunter2", "format": "raw"}),
                json!({"qom-type": "secret", "id": "s0", "data": REDACTED, "format": "raw"}),
            ),
            (
                "object-add",
                json!({"qom-type": "secret", "id": "s0", "props": {"data": "hunter2"}}),
                json!({"qom-type": "secret", "id": "s0", "props": {"data": REDACTED}}),
            ),
            (
                "object-add",
                json!({"qom-type": "iothread", "id": "io0"}),
                json!({"qom-type": "iothread", "id": "io0"}),
            ),
            (
                "set_password",
                json!({"protocol": "vnc", "password": "pw"}),
                json!({"protocol": "vnc", "password": REDACTED}),
            ),
            (
                "change-vnc-password",
                json!({"password": "pw"}),
                json!({"password": REDACTED}),
            ),
            (
                "blockdev-add",
                json!({"driver": "raw", "node-name": "n", "file": {"driver": "https",
                    "url": "https://h/x", "cookie": "session=abc", "password-secret": "s0"}}),
                json!({"driver": "raw", "node-name": "n", "file": {"driver": "https",
                    "url": "https://h/x", "cookie": REDACTED, "password-secret": "s0"}}),
            ),
            (
                "human-monitor-command",
                json!({"command-line": "object_add secret,id=s1,data=hunter2"}),
                json!({"command-line": format!("object_add {REDACTED}")}),
            ),
            (
                "sev-inject-launch-secret",
                json!({"packet-header": "AAAA", "secret": "c2VjcmV0"}),
                json!({"packet-header": "AAAA", "secret": REDACTED}),
            ),
            (
                "qom-set",
                json!({"path": "/objects/s0", "property": "data", "value": "hunter2"}),
                json!({"path": "/objects/s0", "property": "data", "value": REDACTED}),
            ),
            (
                "qom-set",
                json!({"path": "/machine", "property": "dump-guest-core", "value": true}),
                json!({"path": "/machine", "property": "dump-guest-core", "value": true}),
            ),
            (
                "send-key",
                json!({"keys": [{"type": "qcode", "data": "h"}], "hold-time": 10}),
                json!({"keys": REDACTED, "hold-time": 10}),
            ),
            (
                "input-send-event",
                json!({"events": [
                    {"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "h"}}},
                    {"type": "rel", "data": {"axis": "x", "value": 5}}]}),
                json!({"events": [
                    {"type": "key", "data": {"down": true, "key": REDACTED}},
                    {"type": "rel", "data": {"axis": "x", "value": 5}}]}),
            ),
            (
                "human-monitor-command",
                json!({"command-line": "sendkey h-u-n-t-e-r-2"}),
                json!({"command-line": format!("sendkey {REDACTED}")}),
            ),
            (
                "human-monitor-command",
                json!({"command-line": "info status"}),
                json!({"command-line": "info status"}),
            ),
        ];
        for (command, mut args, want) in cases {
            redact(command, &mut args);
            assert_eq!(args, want, "{command}");
        }
    }

    #[test]
    fn separators_are_escaped_and_the_json_means_the_same() {
        let v = json!({"s": "a\u{2028}b\u{2029}c\u{85}d\u{9f}e\u{a0}"});
        let text = escape_separators(&v.to_string());
        assert!(text.is_ascii() || !text.contains(['\u{2028}', '\u{2029}', '\u{85}', '\u{9f}']));
        assert!(
            text.contains("\\u2028") && text.contains("\\u0085"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), v);
    }
}
