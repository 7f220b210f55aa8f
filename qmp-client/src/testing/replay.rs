//! Recorded sessions played back: this client's recordings
//! ([`crate::Options::record`], JSON lines) and libvirt's `.replies`
//! files (pretty JSON objects separated by blank lines, each command
//! followed by what QEMU answered, as in libvirt's
//! `tests/qemucapabilitiesdata`).

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use crate::error::{Error, Result};

/// A message QEMU sent: JSON, or a line that was not (kept as text).
#[derive(Debug, Clone)]
pub(crate) enum Msg {
    Json(Value),
    Raw(String),
}

/// One command of the recording and what came back before the next.
#[derive(Debug, Clone)]
struct Step {
    line: usize,
    name: String,
    args: Value,
    id: Option<Value>,
    recvs: Vec<Msg>,
}

/// A recording being played: the next command expected, and how the
/// recorded ids map to the ids the code under test used.
pub(crate) struct Replay {
    file: String,
    pub(crate) greeting: Option<Value>,
    steps: Vec<Step>,
    next: usize,
    /// Recorded id (as JSON text) → the id the code sent (none: no id).
    ids: HashMap<String, Option<Value>>,
    /// Ids of the code's commands whose recorded form had none, in order
    /// (their replies come in that order).
    idless: VecDeque<Option<Value>>,
}

/// The name and arguments of a command message, if it is one.
fn command_of(v: &Value) -> Option<(String, Value)> {
    let o = v.as_object()?;
    let name = o.get("execute").or_else(|| o.get("exec-oob"))?.as_str()?;
    let args = o
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    Some((name.to_string(), args))
}

/// Whether `v` is a `query-qmp-schema` reply's `return` value.
pub(crate) fn is_schema(v: &Value) -> bool {
    v.as_array()
        .and_then(|a| a.first())
        .is_some_and(|e| e.get("meta-type").is_some() && e.get("name").is_some())
}

/// The `return` value of the first `query-qmp-schema` reply in `text`: a
/// JSON array or reply, a libvirt `.replies` file, or a recording.
pub(crate) fn find_reply(text: &str) -> Option<Value> {
    let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for v in stream {
        let Ok(v) = v else {
            return None;
        };
        let candidates = [Some(&v), v.get("return"), v.pointer("/msg/return")];
        if let Some(found) = candidates.into_iter().flatten().find(|c| is_schema(c)) {
            return Some(found.clone());
        }
    }
    None
}

impl Replay {
    /// Reads `text` (from `file`), in either format.
    pub(crate) fn parse(file: &str, text: &str) -> Result<Replay> {
        let mut r = Replay {
            file: file.to_string(),
            greeting: None,
            steps: Vec::new(),
            next: 0,
            ids: HashMap::new(),
            idless: VecDeque::new(),
        };
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let ours = serde_json::from_str::<Value>(first)
            .is_ok_and(|v| v.get("dir").is_some() && v.get("t").is_some());
        if ours {
            r.parse_lines(text)?;
        } else {
            r.parse_libvirt(text)?;
        }
        if r.steps.is_empty() {
            return Err(Error::Mock(format!("{file}: no command in this recording")));
        }
        Ok(r)
    }

    fn push(&mut self, line: usize, msg: Msg, sent: bool) {
        if let (true, Msg::Json(v)) = (sent, &msg)
            && let Some((name, args)) = command_of(v)
        {
            self.steps.push(Step {
                line,
                name,
                args,
                id: v.get("id").cloned(),
                recvs: Vec::new(),
            });
            return;
        }
        if sent {
            return;
        }
        match self.steps.last_mut() {
            Some(step) => step.recvs.push(msg),
            None => {
                if let Msg::Json(v) = msg
                    && v.get("QMP").is_some()
                {
                    self.greeting = Some(v);
                }
            }
        }
    }

    fn parse_lines(&mut self, text: &str) -> Result<()> {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |what: &str| Error::Mock(format!("{}:{}: {what}", self.file, i + 1));
            let v: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
            let sent = match v.get("dir").and_then(Value::as_str) {
                Some("send") => true,
                Some("recv") => false,
                // A recording's last line when it reached its limit.
                Some("note") => continue,
                _ => return Err(bad("`dir` must be \"send\", \"recv\" or \"note\"")),
            };
            let msg = match (v.get("msg"), v.get("raw").and_then(Value::as_str)) {
                (Some(m), _) => Msg::Json(m.clone()),
                (None, Some(raw)) => Msg::Raw(raw.to_string()),
                (None, None) => return Err(bad("a line needs `msg` or `raw`")),
            };
            self.push(i + 1, msg, sent);
        }
        Ok(())
    }

    fn parse_libvirt(&mut self, text: &str) -> Result<()> {
        // Lines counted on from the last value's start, never from the
        // file's: linear in the file (a 50 MB file took minutes when
        // each value's line was counted from the start).
        let (mut counted_to, mut line_no) = (0, 1);
        let mut line_at = |offset: usize| {
            line_no += text.as_bytes()[counted_to..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            counted_to = offset;
            line_no
        };
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        loop {
            let start = stream.byte_offset();
            match stream.next() {
                None => return Ok(()),
                Some(Ok(v)) => {
                    let skipped = text[start..]
                        .find(|c: char| !c.is_whitespace())
                        .unwrap_or(0);
                    let line = line_at(start + skipped);
                    let sent = command_of(&v).is_some();
                    self.push(line, Msg::Json(v), sent);
                }
                Some(Err(e)) => {
                    return Err(Error::Mock(format!(
                        "{}:{}: not a libvirt .replies file (pretty JSON objects separated by blank lines): {e}",
                        self.file,
                        e.line()
                    )));
                }
            }
        }
    }

    /// Takes the recorded `query-qmp-schema` exchanges out of the
    /// sequence (the double answers that command itself, from the first
    /// reply, which this returns); whatever else came during them
    /// (events, other replies) goes with the command before, in order.
    pub(crate) fn take_schema(&mut self) -> Option<Value> {
        let mut found = None;
        let mut i = 0;
        while i < self.steps.len() {
            if self.steps[i].name != "query-qmp-schema" {
                i += 1;
                continue;
            }
            let step = self.steps.remove(i);
            let mut rest = Vec::new();
            for m in step.recvs {
                match &m {
                    Msg::Json(v) if v.get("return").is_some_and(is_schema) => {
                        if found.is_none() {
                            found = v.get("return").cloned();
                        }
                    }
                    _ => rest.push(m),
                }
            }
            match (i.checked_sub(1), self.steps.get_mut(i)) {
                (Some(prev), _) => self.steps[prev].recvs.extend(rest),
                // None before it: they come with the next command.
                (None, Some(next)) => {
                    rest.append(&mut next.recvs);
                    next.recvs = rest;
                }
                (None, None) => {}
            }
        }
        found
    }

    /// The QEMU version the recording names: its greeting's, else a
    /// `query-version` reply's.
    pub(crate) fn version(&self) -> Option<(u64, u64, u64)> {
        let of = |q: &Value| {
            let n = |k: &str| q.get(k).and_then(Value::as_u64);
            Some((n("major")?, n("minor")?, n("micro")?))
        };
        if let Some(g) = &self.greeting {
            return of(&g["QMP"]["version"]["qemu"]);
        }
        self.steps
            .iter()
            .find(|s| s.name == "query-version")
            .and_then(|s| {
                s.recvs.iter().find_map(|m| match m {
                    Msg::Json(v) => v.get("return").and_then(|r| of(&r["qemu"])),
                    Msg::Raw(_) => None,
                })
            })
    }

    /// The code under test sent command `name` with `args` and `id`:
    /// what the recording answered (ids remapped), or how the code
    /// departed from it.
    pub(crate) fn next(
        &mut self,
        name: &str,
        args: &Value,
        id: Option<&Value>,
    ) -> std::result::Result<Vec<Msg>, String> {
        let Some(step) = self.steps.get(self.next) else {
            return Err(format!(
                "{}: the recording has ended; the code sent {name} {args}",
                self.file
            ));
        };
        if step.name != name || step.args != *args {
            return Err(format!(
                "{}:{}: the recording has {} {} here; the code sent {name} {args}",
                self.file, step.line, step.name, step.args
            ));
        }
        self.next += 1;
        match &step.id {
            Some(rid) => {
                self.ids.insert(rid.to_string(), id.cloned());
            }
            None => self.idless.push_back(id.cloned()),
        }
        let mut out = Vec::new();
        for m in &step.recvs {
            let Msg::Json(v) = m else {
                out.push(m.clone());
                continue;
            };
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut()
                && (o.contains_key("return") || o.contains_key("error"))
            {
                let actual = match o.get("id") {
                    Some(rid) => self.ids.get(&rid.to_string()).cloned(),
                    None => self.idless.pop_front(),
                };
                if let Some(actual) = actual {
                    match actual {
                        Some(a) => o.insert("id".into(), a),
                        None => o.remove("id"),
                    };
                }
            }
            out.push(Msg::Json(v));
        }
        Ok(out)
    }

    /// The commands of the recording the code did not send.
    pub(crate) fn unplayed(&self) -> Vec<String> {
        match self.steps.get(self.next) {
            Some(step) => vec![format!(
                "{}:{}: the recording goes on with {} {} ({} more command(s)); the code stopped before",
                self.file,
                step.line,
                step.name,
                step.args,
                self.steps.len() - self.next
            )],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIBVIRT: &str = r#"{
  "execute": "qmp_capabilities",
  "id": "libvirt-1"
}

{
  "return": {
  },
  "id": "libvirt-1"
}

{
  "execute": "query-version",
  "id": "libvirt-2"
}

{
  "return": {
    "qemu": {"micro": 2, "minor": 0, "major": 10},
    "package": ""
  },
  "id": "libvirt-2"
}
"#;

    #[test]
    fn libvirt_files_map_their_ids_to_the_code_s() {
        let mut r = Replay::parse("caps.replies", LIBVIRT).expect("parses");
        assert_eq!(r.version(), Some((10, 0, 2)));
        let out = r
            .next("qmp_capabilities", &json!({}), None)
            .expect("first command");
        let Msg::Json(v) = &out[0] else { panic!() };
        assert_eq!(v, &json!({"return": {}}));
        let err = r
            .next("query-status", &json!({}), Some(&json!(5)))
            .expect_err("departs");
        assert_eq!(
            err,
            "caps.replies:12: the recording has query-version {} here; the code sent query-status {}"
        );
        assert_eq!(r.unplayed().len(), 1);
        let out = r
            .next("query-version", &json!({}), Some(&json!(5)))
            .expect("matches");
        let Msg::Json(v) = &out[0] else { panic!() };
        assert_eq!(v["id"], json!(5));
        assert!(r.unplayed().is_empty());
    }

    /// Lines are counted on from value to value (not from the file's
    /// start each time): still right deep into a long file.
    #[test]
    fn libvirt_lines_are_right_deep_in_a_long_file() {
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&format!(
                "{{\n  \"execute\": \"c{i}\",\n  \"id\": \"libvirt-{i}\"\n}}\n\n{{\n  \"return\": {{}},\n  \"id\": \"libvirt-{i}\"\n}}\n\n"
            ));
        }
        let mut r = Replay::parse("long.replies", &text).expect("parses");
        for i in 0..1999 {
            r.next(&format!("c{i}"), &json!({}), None)
                .expect("in order");
        }
        // Each exchange is 10 lines: command 1999 starts at line 19991.
        let err = r.next("other", &json!({}), None).expect_err("departs");
        assert!(err.starts_with("long.replies:19991: "), "{err}");
    }

    #[test]
    fn broken_files_name_their_line() {
        let err = Replay::parse("x.replies", "{\n  \"execute\": \"a\"\n}\n\n{ nope").err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().starts_with("x.replies:5: not a libvirt")),
            "{err:?}"
        );
        let err = Replay::parse("x.jsonl", "{\"t\":0,\"dir\":\"up\",\"msg\":{}}\n").err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().starts_with("x.jsonl:1: `dir`")),
            "{err:?}"
        );
    }

    #[test]
    fn finds_the_reply_in_each_form() {
        let list = serde_json::json!([{"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "1"}]);
        let array = list.to_string();
        let reply = serde_json::json!({"return": list, "id": "libvirt-3"}).to_string();
        let libvirt =
            format!("{{\"execute\": \"query-qmp-schema\", \"id\": \"libvirt-3\"}}\n\n{reply}\n");
        let ours = format!(
            "{}\n{}\n",
            serde_json::json!({"t": 0.1, "dir": "send", "msg": {"execute": "query-qmp-schema"}}),
            serde_json::json!({"t": 0.2, "dir": "recv", "msg": {"return": list}})
        );
        for text in [&array, &reply, &libvirt, &ours] {
            assert_eq!(find_reply(text).as_ref(), Some(&list), "{text}");
        }
        assert_eq!(find_reply("{\"return\": []}"), None);
        assert_eq!(find_reply("not json"), None);
    }
}
