//! A command's arguments as typed on a command line: one JSON object, or
//! `key=value` words (dotted keys for nesting, `key.0=` for lists), as
//! qmp-shell takes them. Each value is read as JSON where it is JSON
//! (`5`, `true`, `["a"]`), else as a string; then the command's own
//! decoder settles what the schema wants: a number or `true` where the
//! schema wants a string is taken as the text typed (`id=1`), `on`/`off`
//! where it wants a boolean as one. What still does not fit is an error
//! that names the member, and nothing is sent.

use serde_json::{Map, Value};

/// Arguments as typed, before the schema has had its say.
#[derive(Debug, Clone, PartialEq)]
pub struct Typed {
    /// The arguments as JSON, each `key=value` value read as JSON where
    /// it is JSON.
    pub value: Value,
    /// Each `key=value` leaf: its decode path (`file.filename`,
    /// `devices[0]`), where it sits (a JSON pointer) and the text typed.
    leaves: Vec<Leaf>,
}

#[derive(Debug, Clone, PartialEq)]
struct Leaf {
    path: String,
    pointer: String,
    raw: String,
}

/// Reads a command's argument words: none (`{}`), one JSON object (which
/// may span several words), or `key=value` words.
pub fn parse(words: &[String]) -> Result<Typed, String> {
    let joined = words.join(" ");
    let trimmed = joined.trim_start();
    if trimmed.is_empty() {
        return Ok(Typed {
            value: Value::Object(Map::new()),
            leaves: Vec::new(),
        });
    }
    if trimmed.starts_with('{') {
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(v @ Value::Object(_)) => Ok(Typed {
                value: v,
                leaves: Vec::new(),
            }),
            Ok(_) => Err("the arguments must be one JSON object".into()),
            Err(e) => Err(format!("the arguments are not valid JSON: {e}")),
        };
    }
    let mut root = Node::Object(Vec::new());
    for w in words {
        let Some((key, raw)) = w.split_once('=') else {
            let w = shown(w);
            return Err(format!(
                "'{w}' is neither key=value nor a JSON object (write `{w}=...`)"
            ));
        };
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(format!("'{}': empty key or key part", shown(w)));
        }
        let parts = key.split('.').count();
        if parts > MAX_KEY_PARTS {
            return Err(format!(
                "key '{}' has {parts} parts; at most {MAX_KEY_PARTS} (QEMU's JSON parser nests at most 1024 deep)",
                shown(key)
            ));
        }
        let path: Vec<&str> = key.split('.').collect();
        root.insert(key, &path, raw)?;
    }
    let mut leaves = Vec::new();
    let value = root.into_value(&mut leaves)?;
    Ok(Typed { value, leaves })
}

/// Parts a dotted key may have, at most. With the command's own object
/// and its `arguments`, a key of this many parts nests its value 1024
/// deep: as deep as QEMU's JSON parser takes (`qobject/json-streamer.c`).
pub const MAX_KEY_PARTS: usize = 1023;

/// A word as an error message shows it: at most 60 characters.
fn shown(w: &str) -> String {
    match w.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &w[..i]),
        None => w.to_string(),
    }
}

/// A value read from text as qmp-shell reads it: JSON where it is JSON,
/// else the text.
fn guess(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(v) => v,
        Err(_) => Value::String(raw.to_string()),
    }
}

enum Node {
    Leaf(String),
    Object(Vec<(String, Node)>),
}

impl Node {
    /// Adds leaf `raw` at `path` (the parts of key `full`), walking down
    /// without recursion: cost linear in the key.
    fn insert(&mut self, full: &str, path: &[&str], raw: &str) -> Result<(), String> {
        let mut node = self;
        for (depth, part) in path.iter().enumerate() {
            let Node::Object(members) = node else {
                return Err(format!(
                    "'{}': its parent was given a value already",
                    shown(full)
                ));
            };
            let pos = members.iter().position(|(k, _)| k == part);
            if depth + 1 == path.len() {
                if pos.is_some() {
                    return Err(format!("'{}' is given twice", shown(full)));
                }
                members.push((part.to_string(), Node::Leaf(raw.to_string())));
                return Ok(());
            }
            let i = match pos {
                Some(i) => i,
                None => {
                    members.push((part.to_string(), Node::Object(Vec::new())));
                    members.len() - 1
                }
            };
            node = &mut members[i].1;
        }
        Err("empty key".into())
    }

    /// JSON, with list nodes (keys `0`..`n-1`) as arrays; records leaves.
    /// Without recursion (a key may nest [`MAX_KEY_PARTS`] deep), and with
    /// one path and one pointer grown and cut back in place, so the cost
    /// stays linear in the input.
    fn into_value(self, leaves: &mut Vec<Leaf>) -> Result<Value, String> {
        let mut path = String::new();
        let mut pointer = String::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut pending = Some(self);
        loop {
            let mut done = None;
            match pending.take() {
                Some(Node::Leaf(raw)) => {
                    let value = guess(&raw);
                    leaves.push(Leaf {
                        path: if path.is_empty() {
                            ".".into()
                        } else {
                            path.clone()
                        },
                        pointer: pointer.clone(),
                        raw,
                    });
                    done = Some(value);
                }
                Some(Node::Object(members)) => {
                    stack.push(Frame::open(members, &path, pointer.len())?);
                }
                None => {}
            }
            if let Some(value) = done {
                let Some(f) = stack.last_mut() else {
                    return Ok(value);
                };
                f.accept(value);
                path.truncate(f.path_len);
                pointer.truncate(f.pointer_len);
            }
            let Some(f) = stack.last_mut() else {
                return Err("empty arguments".into());
            };
            match f.items.next() {
                Some((k, child)) => {
                    f.enter(k, &mut path, &mut pointer);
                    pending = Some(child);
                }
                None => {
                    let value = stack.pop().map(Frame::finish).unwrap_or(Value::Null);
                    match stack.last_mut() {
                        None => return Ok(value),
                        Some(parent) => {
                            parent.accept(value);
                            path.truncate(parent.path_len);
                            pointer.truncate(parent.pointer_len);
                        }
                    }
                }
            }
        }
    }
}

/// An object or list being built by [`Node::into_value`].
struct Frame {
    /// Members (a list's sorted by index) not yet converted.
    items: std::vec::IntoIter<(String, Node)>,
    /// What is built so far.
    acc: Acc,
    /// The key of the member being converted.
    key: Option<String>,
    /// This node's path and pointer lengths, to cut back to.
    path_len: usize,
    pointer_len: usize,
}

enum Acc {
    Object(Map<String, Value>),
    List(Vec<Value>),
}

impl Frame {
    /// A frame for the object node at `path`; members keyed `0`..`n-1`
    /// make a list.
    fn open(members: Vec<(String, Node)>, path: &str, pointer_len: usize) -> Result<Frame, String> {
        let is_list = members.iter().all(|(k, _)| index(k).is_some());
        let (items, acc) = if is_list {
            let mut items: Vec<(usize, (String, Node))> = members
                .into_iter()
                .map(|(k, n)| (index(&k).unwrap_or(usize::MAX), (k, n)))
                .collect();
            items.sort_by_key(|(i, _)| *i);
            if items.iter().enumerate().any(|(i, (n, _))| i != *n) {
                return Err(format!(
                    "'{}': list items must be numbered 0, 1, 2, ... without gaps",
                    shown(path)
                ));
            }
            let n = items.len();
            (
                items.into_iter().map(|(_, m)| m).collect::<Vec<_>>(),
                Acc::List(Vec::with_capacity(n)),
            )
        } else {
            (members, Acc::Object(Map::new()))
        };
        Ok(Frame {
            items: items.into_iter(),
            acc,
            key: None,
            path_len: path.len(),
            pointer_len,
        })
    }

    /// Extends `path` and `pointer` to member `k`, which is converted next.
    fn enter(&mut self, k: String, path: &mut String, pointer: &mut String) {
        match self.acc {
            Acc::List(_) => {
                path.push('[');
                path.push_str(&k);
                path.push(']');
                pointer.push('/');
                pointer.push_str(&k);
            }
            Acc::Object(_) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k);
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
            }
        }
        self.key = Some(k);
    }

    /// Takes the value of the member entered last.
    fn accept(&mut self, value: Value) {
        match &mut self.acc {
            Acc::List(v) => v.push(value),
            Acc::Object(m) => {
                m.insert(self.key.take().unwrap_or_default(), value);
            }
        }
    }

    fn finish(self) -> Value {
        match self.acc {
            Acc::List(v) => Value::Array(v),
            Acc::Object(m) => Value::Object(m),
        }
    }
}

fn index(k: &str) -> Option<usize> {
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) || (k.len() > 1 && k.starts_with('0'))
    {
        return None;
    }
    k.parse().ok()
}

/// Why arguments did not decode: the member's path (`.` for the whole
/// value) and the decoder's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Path of the bad member.
    pub path: String,
    /// What the decoder said.
    pub message: String,
    /// The key, when the error is a member the type does not know.
    pub unknown: Option<String>,
    /// A further error the same decode found.
    pub also: Option<String>,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path == "." {
            f.write_str(&self.message)?;
        } else {
            write!(f, "member `{}`: {}", self.path, self.message)?;
        }
        match &self.also {
            Some(a) => write!(f, "; also {a}"),
            None => Ok(()),
        }
    }
}

impl Typed {
    /// Settles each `key=value` leaf's type with `decode` (the command's
    /// decoder): a leaf the decoder refuses for its JSON type is retyped
    /// as the text typed (or `on`/`off` as a boolean) and the decode tried
    /// again, until it passes or an error remains that retyping can't
    /// fix. Returns what `decode` gave for the settled value.
    pub fn settle<T>(
        mut self,
        mut decode: impl FnMut(&Value) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        // Each leaf changes at most once.
        for _ in 0..=self.leaves.len() {
            let e = match decode(&self.value) {
                Ok(t) => return Ok(t),
                Err(e) => e,
            };
            if !e.message.starts_with("invalid type") || !self.retype(&e) {
                return Err(e);
            }
        }
        decode(&self.value)
    }

    fn retype(&mut self, e: &DecodeError) -> bool {
        let Some(i) = self.leaves.iter().position(|l| l.path == e.path) else {
            return false;
        };
        let leaf = self.leaves.remove(i);
        let Some(slot) = self.value.pointer_mut(&leaf.pointer) else {
            return false;
        };
        let wants_bool = e.message.contains("expected a boolean");
        let new = match (&*slot, leaf.raw.as_str()) {
            (Value::String(_), "on" | "yes") if wants_bool => Value::Bool(true),
            (Value::String(_), "off" | "no") if wants_bool => Value::Bool(false),
            (Value::String(_), _) => return false,
            _ => Value::String(leaf.raw),
        };
        *slot = new;
        true
    }
}

/// Known names close to `name` (edit distance, or sharing a long part),
/// closest first, at most five.
pub fn suggest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (name.len() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter_map(|k| {
            let d = distance(name, k);
            let shared = name.len() >= 4 && (k.contains(name) || name.contains(k));
            (d <= limit || shared).then_some((if shared { d.min(limit) } else { d }, k))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(5)
        .map(|(_, k)| k.to_string())
        .collect()
}

/// Edit distance counting a swap of neighbours as one edit (optimal
/// string alignment), with `-` and `_` the same.
fn distance(a: &str, b: &str) -> usize {
    let norm = |c: char| if c == '_' { '-' } else { c };
    let a: Vec<char> = a.chars().map(norm).collect();
    let b: Vec<char> = b.chars().map(norm).collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * w + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn key_value_words_nest_and_list() {
        let t = parse(&words(
            "node-name=n0 file.driver=file file.filename=/tmp/x size=5 ro=true l.0=a l.1=b",
        ))
        .expect("parses");
        assert_eq!(
            t.value,
            json!({"node-name": "n0", "file": {"driver": "file", "filename": "/tmp/x"}, "size": 5, "ro": true, "l": ["a", "b"]})
        );
        assert_eq!(parse(&[]).expect("empty").value, json!({}));
        let j = parse(&words(r#"{"id": "x", "n": 1}"#)).expect("json");
        assert_eq!(j.value, json!({"id": "x", "n": 1}));
    }

    #[test]
    fn bad_words_are_refused() {
        for bad in ["id", "id=1 id=2", "a=1 a.b=2", "l.0=a l.2=b", ".x=1", "[1]"] {
            assert!(parse(&words(bad)).is_err(), "{bad}");
        }
        let e = parse(&words(r#"{"id": "#)).expect_err("bad json");
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn dotted_keys_nest_as_deep_as_qemu_takes_and_no_deeper() {
        let key = |n: usize| vec!["a"; n].join(".");
        // As deep as QEMU's parser takes: accepted, with the leaf's path.
        let t = parse(&[format!("{}=1", key(MAX_KEY_PARTS))]).expect("at the limit");
        let mut v = &t.value;
        let mut depth = 0;
        while let Some(inner) = v.get("a") {
            v = inner;
            depth += 1;
        }
        assert_eq!((depth, v), (MAX_KEY_PARTS, &Value::from(1)));
        assert_eq!(t.leaves[0].path, key(MAX_KEY_PARTS));
        // One more, or twenty thousand: refused, briefly, before any tree
        // is built.
        for n in [MAX_KEY_PARTS + 1, 20_000] {
            let e = parse(&[format!("{}=1", key(n))]).expect_err("too deep");
            assert!(e.contains(&format!("has {n} parts; at most 1023")), "{e}");
            assert!(e.len() < 200, "{} bytes", e.len());
        }
    }

    #[test]
    fn settle_retypes_only_what_the_decoder_refuses() {
        // The decoder wants `id` a string and `on` a boolean.
        let decode = |v: &Value| -> Result<Value, DecodeError> {
            if !v["id"].is_string() {
                return Err(DecodeError {
                    path: "id".into(),
                    message: "invalid type: integer `1`, expected a string".into(),
                    unknown: None,
                    also: None,
                });
            }
            if !v["x"]["on"].is_boolean() {
                return Err(DecodeError {
                    path: "x.on".into(),
                    message: "invalid type: string \"off\", expected a boolean".into(),
                    unknown: None,
                    also: None,
                });
            }
            Ok(v.clone())
        };
        let t = parse(&words("id=1 x.on=off n=2")).expect("parses");
        assert_eq!(
            t.settle(decode).expect("settles"),
            json!({"id": "1", "x": {"on": false}, "n": 2})
        );
        let t = parse(&words("id=1 x.on=maybe")).expect("parses");
        let e = t.settle(decode).expect_err("maybe is no boolean");
        assert_eq!(e.path, "x.on");
    }

    #[test]
    fn suggestions() {
        let known = [
            "query-status",
            "query-block",
            "query-blockstats",
            "quit",
            "stop",
        ];
        assert_eq!(suggest("query-stauts", known), vec!["query-status"]);
        assert_eq!(suggest("query_block", known)[0], "query-block");
        assert!(suggest("frobnicate", known).is_empty());
    }
}
