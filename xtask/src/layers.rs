//! The module graph of each crate, for tidy: no modules that import each
//! other, directly or around a circle; and where a crate root lists its
//! layers (a comment `// Layers, bottom first: a, b, c.`), each top-level
//! module imports only modules listed before it, and every top-level
//! module is listed.
//!
//! Read from the source as text: `crate::`, `super::` and `self::` paths
//! (in `use` trees and in expressions), outside comments and string
//! literals. A module using its parent or its own child is not an import
//! between layers (children are part of their parent); between siblings
//! the edge counts for the siblings' whole subtrees.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One file of a crate: its module path (`[]` for the root) and text.
pub struct Module {
    /// `crate::a::b` is `["a", "b"]`.
    pub path: Vec<String>,
    /// Where it is, as shown in problems.
    pub shown: String,
    /// Its source.
    pub text: String,
}

/// The module path of `file` under a crate's `src` folder, or `None` for
/// a file that isn't a module of it (`bin/`, a second root).
pub fn module_path(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    match stem {
        "lib" | "main" if parts.is_empty() => {}
        "mod" => {}
        _ => parts.push(stem.to_string()),
    }
    Some(parts)
}

/// The source with comments and string and char literals blanked
/// (newlines kept, so line numbers stay).
pub fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r'
            && (next == Some(b'"') || next == Some(b'#'))
            && !b[..i]
                .last()
                .is_some_and(|p| p.is_ascii_alphanumeric() || *p == b'_')
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = b[j + 1..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| j + 1 + p + close.len());
            for &x in &b[i..end] {
                blank(&mut out, x);
            }
            i = end;
        } else if c == b'"' {
            blank(&mut out, c);
            i += 1;
            while i < b.len() {
                let x = b[i];
                blank(&mut out, x);
                i += 1;
                if x == b'\\' {
                    if let Some(&y) = b.get(i) {
                        blank(&mut out, y);
                        i += 1;
                    }
                } else if x == b'"' {
                    break;
                }
            }
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), or a lifetime.
            let end = if next == Some(b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p + 1)
            } else {
                // One (possibly multi-byte) char, then a quote.
                let rest = &text[i + 1..];
                rest.chars()
                    .next()
                    .filter(|ch| rest[ch.len_utf8()..].starts_with('\''))
                    .map(|ch| i + 1 + ch.len_utf8() + 1)
            };
            match end {
                Some(end) => {
                    for &x in &b[i..end] {
                        blank(&mut out, x);
                    }
                    i = end;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Paths (as segments) starting at `at` in a `use` tree or an expression
/// path: `a::b`, `a::{b, c::d}`, `{a, b}`.
fn tree(s: &[u8], mut at: usize, out: &mut Vec<Vec<String>>, prefix: &[String]) -> usize {
    let skip_ws = |s: &[u8], mut i: usize| {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    at = skip_ws(s, at);
    if s.get(at) == Some(&b'{') {
        at += 1;
        loop {
            at = skip_ws(s, at);
            match s.get(at) {
                None => return at,
                Some(b'}') => return at + 1,
                Some(b',') => at += 1,
                Some(_) => {
                    let before = at;
                    at = tree(s, at, out, prefix);
                    if at == before {
                        // Not a path: skip a byte to make progress.
                        at += 1;
                    }
                }
            }
        }
    }
    let start = at;
    while at < s.len() && (s[at].is_ascii_alphanumeric() || s[at] == b'_') {
        at += 1;
    }
    if at == start {
        if !prefix.is_empty() {
            out.push(prefix.to_vec());
        }
        return at;
    }
    let mut path = prefix.to_vec();
    path.push(String::from_utf8_lossy(&s[start..at]).into_owned());
    let after = skip_ws(s, at);
    if s[after..].starts_with(b"::") {
        return tree(s, after + 2, out, &path);
    }
    out.push(path);
    at
}

/// Module paths each line of `module` refers to, made absolute: `(line,
/// path)`.
pub fn references(module: &Module) -> Vec<(usize, Vec<String>)> {
    let code = code_only(&module.text);
    let s = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let word_start = i == 0 || !(s[i - 1].is_ascii_alphanumeric() || s[i - 1] == b'_');
        let rest = &s[i..];
        let base: Option<(Vec<String>, usize)> = if !word_start {
            None
        } else if rest.starts_with(b"crate::") {
            Some((Vec::new(), 7))
        } else if rest.starts_with(b"self::") {
            Some((module.path.clone(), 6))
        } else if rest.starts_with(b"super::") && !(i >= 2 && &s[i - 2..i] == b"::") {
            let mut base = module.path.clone();
            let mut n = 0;
            while s[i + n..].starts_with(b"super::") {
                base.pop();
                n += 7;
            }
            Some((base, n))
        } else {
            None
        };
        match base {
            Some((base, n)) => {
                let line = 1 + s[..i].iter().filter(|&&c| c == b'\n').count();
                let mut paths = Vec::new();
                let end = tree(s, i + n, &mut paths, &base);
                found.extend(paths.into_iter().map(|p| (line, p)));
                i = end.max(i + n);
            }
            None => i += 1,
        }
    }
    found
}

/// A witness for an edge: the first place seen.
struct Witness {
    shown: String,
    line: usize,
}

/// Problems in one crate, one line each.
pub fn check_crate(name: &str, modules: &[Module]) -> Vec<String> {
    let known: BTreeSet<&[String]> = modules.iter().map(|m| m.path.as_slice()).collect();
    // Per parent module: edges between its children.
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<(String, String), Witness>> = BTreeMap::new();
    for m in modules {
        for (line, target) in references(m) {
            // The longest prefix that is a module of this crate.
            let Some(t) = (0..=target.len())
                .rev()
                .map(|n| &target[..n])
                .find(|p| known.contains(p))
            else {
                continue;
            };
            let common = m.path.iter().zip(t).take_while(|(a, b)| a == b).count();
            if common == m.path.len() || common == t.len() {
                // Into a parent or a child: not between layers.
                continue;
            }
            let from = m.path[common].clone();
            let to = t[common].clone();
            graphs
                .entry(m.path[..common].to_vec())
                .or_default()
                .entry((from, to))
                .or_insert(Witness {
                    shown: m.shown.clone(),
                    line,
                });
        }
    }
    let mut problems = Vec::new();
    for (parent, edges) in &graphs {
        let at = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{name}::{}", parent.join("::"))
        };
        for circle in circles(edges) {
            let mut steps = Vec::new();
            for pair in circle.windows(2) {
                let w = &edges[&(pair[0].clone(), pair[1].clone())];
                steps.push(format!(
                    "{} -> {} ({}:{})",
                    pair[0], pair[1], w.shown, w.line
                ));
            }
            problems.push(format!(
                "{at}: modules import each other in a circle: {}; move what they share into a module below both",
                steps.join(", ")
            ));
        }
    }
    if let Some(root) = modules.iter().find(|m| m.path.is_empty()) {
        problems.extend(check_layers(name, root, modules, graphs.get(&Vec::new())));
    }
    problems
}

/// The circles in a directed graph, one per strongly connected part of
/// more than one node, each as `a, b, ..., a`.
fn circles(edges: &BTreeMap<(String, String), Witness>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for &m in next.get(n.as_str()).into_iter().flatten() {
                if seen.insert(m.to_string()) {
                    todo.push(m.to_string());
                }
            }
        }
        seen
    };
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for &start in next.keys() {
        if done.contains(start) || !reach(start).contains(start) {
            continue;
        }
        // The shortest way back to `start`, breadth first.
        let mut back: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.to_string()]);
        'search: while let Some(n) = queue.pop_front() {
            for &m in next.get(n.as_str()).into_iter().flatten() {
                if m == start {
                    back.insert(start.to_string(), n.clone());
                    break 'search;
                }
                if !back.contains_key(m) {
                    back.insert(m.to_string(), n.clone());
                    queue.push_back(m.to_string());
                }
            }
        }
        let mut circle = vec![start.to_string()];
        let mut n = back.get(start).cloned();
        while let Some(m) = n {
            circle.push(m.clone());
            if m == start {
                break;
            }
            n = back.get(&m).cloned();
        }
        if circle.last().map(String::as_str) != Some(start) {
            circle.push(start.to_string());
        }
        circle.reverse();
        // Every node of this part is reported with it.
        let part = reach(start);
        for n in &part {
            if reach(n).contains(start) {
                done.insert(n.clone());
            }
        }
        out.push(circle);
    }
    out
}

/// The layers a crate root lists: `// Layers, bottom first: a, b, c.`
/// (the list may go on over the next comment lines, up to the full stop).
pub fn listed_layers(root: &str) -> Option<Vec<String>> {
    let mut lines = root.lines();
    let first = lines.find_map(|l| l.trim().strip_prefix("// Layers, bottom first:"))?;
    let mut list = first.to_string();
    if !list.trim_end().ends_with('.') {
        for l in lines {
            let Some(more) = l.trim().strip_prefix("//") else {
                break;
            };
            list.push(' ');
            list.push_str(more);
            if more.trim_end().ends_with('.') {
                break;
            }
        }
    }
    let list = list.trim().trim_end_matches('.');
    Some(
        list.split([',', ';'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

fn check_layers(
    name: &str,
    root: &Module,
    modules: &[Module],
    edges: Option<&BTreeMap<(String, String), Witness>>,
) -> Vec<String> {
    let Some(layers) = listed_layers(&root.text) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let place = |m: &str| layers.iter().position(|l| l == m);
    let top: BTreeSet<&str> = modules
        .iter()
        .filter_map(|m| m.path.first().map(String::as_str))
        .collect();
    for m in &top {
        if place(m).is_none() {
            problems.push(format!(
                "{}: module `{m}` is missing from the layers listed in the crate root; put it where it belongs",
                root.shown
            ));
        }
    }
    for l in &layers {
        if !top.contains(l.as_str()) {
            problems.push(format!(
                "{}: the layers list `{l}`, which is no module of {name}",
                root.shown
            ));
        }
    }
    for ((a, b), w) in edges.into_iter().flatten() {
        if let (Some(pa), Some(pb)) = (place(a), place(b))
            && pb > pa
        {
            problems.push(format!(
                "{}:{}: `{a}` uses `{b}`, a layer above it in {name}'s list; move the shared part down",
                w.shown, w.line
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(path: &str, text: &str) -> Module {
        Module {
            path: path
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            shown: format!("{path}.rs"),
            text: text.to_string(),
        }
    }

    #[test]
    fn reads_use_trees_and_paths_outside_comments_and_strings() {
        let m = module(
            "a::b",
            "use crate::{x::Y, z::{self, W}};\n// crate::no\nlet s = \"crate::no\";\nlet c = '\"'; super::super::q::f();\nself::c::D\nlet r = r#\"crate::no\"#;\n",
        );
        let refs = references(&m);
        let got: Vec<(usize, String)> = refs.into_iter().map(|(l, p)| (l, p.join("::"))).collect();
        assert_eq!(
            got,
            [
                (1, "x::Y".to_string()),
                (1, "z::self".to_string()),
                (1, "z::W".to_string()),
                (4, "q::f".to_string()),
                (5, "a::b::c::D".to_string()),
            ]
        );
    }

    #[test]
    fn finds_a_circle_between_siblings_and_ignores_parent_and_child() {
        let modules = [
            module("", "mod a; mod b; mod c; pub use a::X;"),
            module("a", "use crate::b::Y;\nuse self::inner::Z;"),
            module("a::inner", "use super::X; use crate::b::V;"),
            module("b", "fn f() { crate::c::go() }"),
            module("c", "\n\nuse crate::a::X;"),
        ];
        let p = check_crate("demo", &modules);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("a -> b (a.rs:1), b -> c (b.rs:1), c -> a (c.rs:3)"),
            "{p:?}"
        );
        // Without c's import there is none.
        let mut modules = modules;
        modules[4].text = String::new();
        assert!(check_crate("demo", &modules).is_empty());
    }

    #[test]
    fn listed_layers_are_kept() {
        let root = "// Layers, bottom first: low, mid,\n// high.\nmod high; mod low; mod mid;";
        let modules = [
            module("", root),
            module("low", ""),
            module("mid", "use crate::low::X;"),
            module("high", "use crate::{mid, low};"),
        ];
        assert!(check_crate("demo", &modules).is_empty());
        let mut bad = modules;
        bad[1].text = "use crate::mid::Y;".into();
        let p = check_crate("demo", &bad);
        assert!(
            p.iter()
                .any(|p| p.contains("`low` uses `mid`, a layer above it")),
            "{p:?}"
        );
        bad[1].text.clear();
        bad[3].path = vec!["top".into()];
        let p = check_crate("demo", &bad);
        assert!(
            p.iter().any(|p| p.contains("module `top` is missing")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.contains("the layers list `high`")),
            "{p:?}"
        );
    }
}
