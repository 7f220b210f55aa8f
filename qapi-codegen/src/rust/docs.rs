//! Doc comments to rustdoc: QAPI's rST-flavoured text made safe for
//! Markdown (literal blocks fenced as `text`, `@name` as code, no stray
//! indented code blocks), plus `Since:`, notes, errors, features and `if`
//! conditions.

use crate::doc::{Doc, SectionKind};
use crate::value::Value;

/// Renders `text` (one doc section) as Markdown lines.
///
/// Nothing from the schema can become a Rust doctest: literal blocks are
/// fenced as `text` with a fence longer than any backtick run inside
/// them, a fence written in the schema's text (```` ``` ````, `~~~`) is
/// escaped, and no line keeps the indentation of an indented code block.
pub fn markdown(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // The open literal block: where its fence is, its indentation, and
    // the longest run of backticks opening one of its lines.
    let mut block: Option<(usize, usize, usize)> = None;
    let mut opens_block = false;
    for raw in text.lines() {
        let indent = raw.len() - raw.trim_start().len();
        let line = raw.trim_end();
        if let Some((start, block_indent, ticks)) = block {
            if line.is_empty() || indent > block_indent {
                let content = line.get(block_indent + 1..).unwrap_or("");
                let run = content
                    .trim_start()
                    .chars()
                    .take_while(|&c| c == '`')
                    .count();
                block = Some((start, block_indent, ticks.max(run)));
                out.push(content.to_string());
                continue;
            }
            close_block(&mut out, start, ticks);
            block = None;
        }
        if opens_block && indent > 0 && !line.is_empty() {
            // The indented block after `::` or a `.. directive::`.
            let block_indent = indent.saturating_sub(1);
            out.push(String::new());
            let start = out.len() - 1;
            let content = line.get(block_indent + 1..).unwrap_or("");
            let run = content
                .trim_start()
                .chars()
                .take_while(|&c| c == '`')
                .count();
            block = Some((start, block_indent, run));
            out.push(content.to_string());
            opens_block = false;
            continue;
        }
        if line.is_empty() {
            out.push(String::new());
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with(".. ") {
            // rST directive (`.. note::`, `.. qmp-example::`): keep its
            // name readable, fence the block that follows.
            let name = trimmed.trim_start_matches(".. ").trim_end_matches(':');
            out.push(format!("*{}*", inline(name.trim())));
            opens_block = trimmed.ends_with("::");
            continue;
        }
        opens_block = trimmed.ends_with("::");
        let shown = if opens_block {
            &trimmed[..trimmed.len() - 1]
        } else {
            trimmed
        };
        let shown = inline(shown);
        if shown.starts_with("```") || shown.starts_with("~~~") {
            // A fence in the schema's text: shown, never opened.
            out.push(format!("\\{shown}"));
        } else {
            out.push(shown);
        }
    }
    if let Some((start, _, ticks)) = block {
        close_block(&mut out, start, ticks);
    }
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    trim_trailing_blank(&mut out);
    out
}

/// Ends the literal block whose fence line is `out[start]`: the fence is
/// longer than the longest backtick run inside, so nothing in the block
/// closes it early.
fn close_block(out: &mut Vec<String>, start: usize, ticks: usize) {
    trim_trailing_blank(out);
    let fence = "`".repeat(ticks.max(2) + 1);
    out[start] = format!("{fence}text");
    out.push(fence);
}

fn trim_trailing_blank(out: &mut Vec<String>) {
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
}

/// Inline markup: `@name` → `` `name` ``; HTML-ish `<` and `>` escaped.
fn inline(line: &str) -> String {
    let mut s = String::with_capacity(line.len() + 8);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '@' if chars
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') =>
            {
                s.push('`');
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '-' || n == '_' || n == '.' {
                        s.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if s.ends_with('.') {
                    s.pop();
                    s.push_str("`.");
                } else {
                    s.push('`');
                }
            }
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            c => s.push(c),
        }
    }
    s
}

/// An `if` condition as text: `CONFIG_LINUX`, `all(A, B)`, `not(A)`.
pub fn condition(cond: &Value) -> String {
    match cond {
        Value::Str(s) => s.clone(),
        Value::Dict(d) => {
            let Some((op, v)) = d.0.first() else {
                return String::new();
            };
            let inner: Vec<String> = match v {
                Value::List(l) => l.iter().map(condition).collect(),
                other => vec![condition(other)],
            };
            format!("{op}({})", inner.join(", "))
        }
        Value::List(l) => l.iter().map(condition).collect::<Vec<_>>().join(", "),
        Value::Bool(b) => b.to_string(),
    }
}

/// The doc of a definition: body, then notes, returns, errors, since.
pub fn definition(doc: Option<&Doc>) -> Vec<String> {
    let Some(doc) = doc else { return Vec::new() };
    let mut out = markdown(&doc.body().text);
    for &i in &doc.others {
        let s = &doc.sections[i];
        let title = match s.kind {
            SectionKind::Plain => None,
            SectionKind::Returns => Some("Returns"),
            SectionKind::Errors => Some("Errors"),
            SectionKind::Since => continue,
            SectionKind::Todo => Some("TODO"),
            SectionKind::Note => Some("Note"),
            SectionKind::Example => Some("Example"),
            SectionKind::Member | SectionKind::Feature => continue,
        };
        let body = markdown(&s.text);
        if body.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(String::new());
        }
        if let Some(t) = title {
            out.push(format!("# {t}"));
            out.push(String::new());
        }
        out.extend(body);
    }
    if let Some(since) = since(Some(doc)) {
        if !out.is_empty() {
            out.push(String::new());
        }
        out.push(format!("Since: {since}"));
    }
    out
}

/// The `Since:` text of a doc.
pub fn since(doc: Option<&Doc>) -> Option<String> {
    let s = doc?.tagged(SectionKind::Since)?;
    let t = s.text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The description of member `name` in `doc`.
pub fn member(doc: Option<&Doc>, name: &str) -> Vec<String> {
    match doc.and_then(|d| d.arg(name)) {
        Some(s) => markdown(&s.text),
        None => Vec::new(),
    }
}

/// The description of feature `name` in `doc`.
pub fn feature(doc: Option<&Doc>, name: &str) -> Vec<String> {
    match doc.and_then(|d| d.feature(name)) {
        Some(s) => markdown(&s.text),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_blocks_are_fenced() {
        let md = markdown("Example::\n\n    -> { \"execute\": \"stop\" }\n    <- {}\n\nAfter.");
        assert_eq!(
            md,
            vec![
                "Example:",
                "",
                "```text",
                "-> { \"execute\": \"stop\" }",
                "<- {}",
                "```",
                "After."
            ]
        );
    }

    #[test]
    fn directives_and_inline() {
        let md = markdown(".. qmp-example::\n\n   -> x\n\nSee @node-name.");
        assert_eq!(
            md,
            vec![
                "*qmp-example*",
                "",
                "```text",
                "-> x",
                "```",
                "See `node-name`."
            ]
        );
        // Stray indentation never becomes a Markdown code block.
        assert_eq!(markdown("a\n     b"), vec!["a", "b"]);
        assert_eq!(markdown("x <y>"), vec!["x &lt;y&gt;"]);
    }

    #[test]
    fn conditions() {
        use crate::value::Dict;
        let c = Value::Dict(Dict(vec![(
            "all".into(),
            Value::List(vec![Value::Str("A".into()), Value::Str("B".into())]),
        )]));
        assert_eq!(condition(&c), "all(A, B)");
    }
}
