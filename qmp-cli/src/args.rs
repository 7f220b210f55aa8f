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
            return Err(format!(
                "'{w}' is neither key=value nor a JSON object (write `{w}=...`)"
            ));
        };
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(format!("'{w}': empty key or key part"));
        }
        root.insert(key, key.split('.').collect(), raw)?;
    }
    let mut leaves = Vec::new();
    let value = root.into_value("", "", &mut leaves)?;
    Ok(Typed { value, leaves })
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
    fn insert(&mut self, full: &str, path: Vec<&str>, raw: &str) -> Result<(), String> {
        let Node::Object(members) = self else {
            return Err(format!("'{full}': its parent was given a value already"));
        };
        let (first, rest) = path.split_first().ok_or("empty key")?;
        let pos = members.iter().position(|(k, _)| k == first);
        if rest.is_empty() {
            if pos.is_some() {
                return Err(format!("'{full}' is given twice"));
            }
            members.push((first.to_string(), Node::Leaf(raw.to_string())));
            return Ok(());
        }
        let i = match pos {
            Some(i) => i,
            None => {
                members.push((first.to_string(), Node::Object(Vec::new())));
                members.len() - 1
            }
        };
        members[i].1.insert(full, rest.to_vec(), raw)
    }

    /// JSON, with list nodes (keys `0`..`n-1`) as arrays; records leaves.
    fn into_value(
        self,
        path: &str,
        pointer: &str,
        leaves: &mut Vec<Leaf>,
    ) -> Result<Value, String> {
        match self {
            Node::Leaf(raw) => {
                leaves.push(Leaf {
                    path: if path.is_empty() {
                        ".".into()
                    } else {
                        path.into()
                    },
                    pointer: pointer.into(),
                    raw: raw.clone(),
                });
                Ok(guess(&raw))
            }
            Node::Object(members) => {
                let indices: Option<Vec<usize>> = members.iter().map(|(k, _)| index(k)).collect();
                if let Some(indices) = indices {
                    let mut items: Vec<(usize, Node)> = indices
                        .into_iter()
                        .zip(members.into_iter().map(|(_, n)| n))
                        .collect();
                    items.sort_by_key(|(i, _)| *i);
                    if items.iter().enumerate().any(|(i, (n, _))| i != *n) {
                        return Err(format!(
                            "'{path}': list items must be numbered 0, 1, 2, ... without gaps"
                        ));
                    }
                    let mut out = Vec::with_capacity(items.len());
                    for (i, n) in items {
                        out.push(n.into_value(
                            &format!("{path}[{i}]"),
                            &format!("{pointer}/{i}"),
                            leaves,
                        )?);
                    }
                    return Ok(Value::Array(out));
                }
                let mut map = Map::new();
                for (k, n) in members {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    let ptr = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                    map.insert(k, n.into_value(&p, &ptr, leaves)?);
                }
                Ok(Value::Object(map))
            }
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
