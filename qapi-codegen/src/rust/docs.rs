//! Doc comments to rustdoc: QAPI's rST-flavoured text made safe for
//! Markdown (literal blocks fenced as `text`, `@name` as code, no stray
//! indented code blocks), plus `Since:`, notes, errors, features and `if`
//! conditions.

use crate::doc::{Doc, SectionKind};

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
    // The indentation of the open admonition (its lines are quoted).
    let mut quote: Option<usize> = None;
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
            out.push(if quote.is_some() {
                ">".into()
            } else {
                String::new()
            });
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(q) = quote {
            if indent > q {
                out.push(format!("> {}", escape_line_start(&inline(trimmed))));
                continue;
            }
            quote = None;
            // The quote's trailing `>` lines become blank ones.
            for l in out.iter_mut().rev() {
                if l != ">" {
                    break;
                }
                l.clear();
            }
        }
        if let Some((name, rest)) = admonition(trimmed) {
            // `.. note:: text` and its indented lines: a block quote with
            // the admonition's name (an `admonition`'s own title) in bold.
            let rest = inline(rest.trim());
            let head = match name {
                "admonition" => format!("> **{rest}**"),
                _ if rest.is_empty() => format!("> **{}:**", title_case(name)),
                _ => format!("> **{}:** {rest}", title_case(name)),
            };
            out.push(head);
            quote = Some(indent);
            opens_block = false;
            continue;
        }
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
        let shown = escape_line_start(&inline(shown));
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
    // A quote's trailing `>` lines.
    while out.last().is_some_and(|l| l == ">") {
        out.pop();
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

/// The admonitions rustdoc shows as block quotes: (name, text after
/// `::`).
fn admonition(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(".. ")?;
    let (name, after) = rest.split_once("::")?;
    const NAMES: [&str; 11] = [
        "note",
        "warning",
        "admonition",
        "important",
        "caution",
        "tip",
        "hint",
        "attention",
        "danger",
        "error",
        "seealso",
    ];
    NAMES.contains(&name).then_some((name, after))
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A line starting with `>` would be a Markdown quote: escaped.
fn escape_line_start(line: &str) -> String {
    if line.starts_with('>') {
        format!("\\{line}")
    } else {
        line.to_string()
    }
}

/// Where QEMU's own documentation is (`:doc:` roles link there).
const QEMU_DOCS: &str = "https://www.qemu.org/docs/master";

/// Inline markup: `@name` → `` `name` ``; rST roles: `:doc:` → a link to
/// QEMU's documentation, `:ref:` → its text, `:qapi:KIND:` → a link to
/// the generated item (resolved by the generator, see [`QAPI_LINK`]); a
/// `<` that could open an HTML tag is escaped (`<http://..>` stays an
/// autolink).
fn inline(line: &str) -> String {
    let mut s = String::with_capacity(line.len() + 8);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == ':'
            && let Some((text, used)) = role(rest)
        {
            s.push_str(&text);
            rest = &rest[used..];
            continue;
        }
        if (rest.starts_with("http://") || rest.starts_with("https://")) && !s.ends_with(['<', '('])
        {
            // A bare URL: an autolink, without trailing punctuation.
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let url = rest[..end].trim_end_matches(['.', ',', ';', ':', ')']);
            s.push('<');
            s.push_str(url);
            s.push('>');
            rest = &rest[url.len()..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        match c {
            // Brackets are text, not intra-doc links.
            '[' => s.push_str("\\["),
            ']' => s.push_str("\\]"),
            '@' if rest
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                s.push('`');
                let end = rest
                    .find(|n: char| {
                        !(n.is_ascii_alphanumeric() || n == '-' || n == '_' || n == '.')
                    })
                    .unwrap_or(rest.len());
                s.push_str(&rest[..end]);
                rest = &rest[end..];
                if s.ends_with('.') {
                    s.pop();
                    s.push_str("`.");
                } else {
                    s.push('`');
                }
            }
            '<' if rest.starts_with("http://") || rest.starts_with("https://") => s.push('<'),
            '<' if rest
                .chars()
                .next()
                .is_some_and(|n| n.is_ascii_alphabetic() || n == '/' || n == '!') =>
            {
                s.push_str("\\<")
            }
            c => s.push(c),
        }
    }
    s
}

/// Marks a `:qapi:KIND:` role's target in doc text; the generator turns
/// `QAPI_LINK name QAPI_LINK_END` into a link to the item named `name`,
/// or code when it has no such item.
pub const QAPI_LINK: char = '\u{E001}';
/// Ends a [`QAPI_LINK`].
pub const QAPI_LINK_END: char = '\u{E002}';

/// An rST role at the start of `s` (`:doc:\`text <path>\``): its
/// rendering and the bytes it took.
fn role(s: &str) -> Option<(String, usize)> {
    let after = s.strip_prefix(':')?;
    let name_end = after.find(":`")?;
    let name = &after[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == ':') {
        return None;
    }
    let body_start = 1 + name_end + 2;
    let body_len = s[body_start..].find('`')?;
    let body = &s[body_start..body_start + body_len];
    let used = body_start + body_len + 1;
    // `Title <target>` or just `target`.
    let (title, target) = match body.rfind(" <") {
        Some(i) if body.ends_with('>') => (&body[..i], &body[i + 2..body.len() - 1]),
        _ => (body, body),
    };
    let text = match name {
        "doc" => {
            let path = target.trim_start_matches('/');
            let title = if title == target { path } else { title };
            format!("[{title}]({QEMU_DOCS}/{path}.html)")
        }
        "ref" => title.to_string(),
        n if n.starts_with("qapi:") => format!("{QAPI_LINK}{target}{QAPI_LINK_END}"),
        _ => format!("`{title}`"),
    };
    Some((text, used))
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
    fn admonitions_are_quotes() {
        let md = markdown(
            "Text.\n\n.. note:: First line\n   second line.\n\n   More.\n\nAfter.\n\n.. admonition:: Tip\n\n   Body.",
        );
        assert_eq!(
            md,
            vec![
                "Text.",
                "",
                "> **Note:** First line",
                "> second line.",
                ">",
                "> More.",
                "",
                "After.",
                "",
                "> **Tip**",
                ">",
                "> Body.",
            ]
        );
    }

    #[test]
    fn roles_links_brackets_and_angles() {
        assert_eq!(
            inline(":doc:`QMP spec </interop/qmp-spec>` and :doc:`/devel/x`"),
            "[QMP spec](https://www.qemu.org/docs/master/interop/qmp-spec.html) and [devel/x](https://www.qemu.org/docs/master/devel/x.html)"
        );
        assert_eq!(inline("see :ref:`cpu-topology`"), "see cpu-topology");
        assert_eq!(
            inline(":qapi:event:`MIGRATION` event"),
            format!("{QAPI_LINK}MIGRATION{QAPI_LINK_END} event")
        );
        assert_eq!(
            inline("Bit[3:0] and [TGMKkb]"),
            "Bit\\[3:0\\] and \\[TGMKkb\\]"
        );
        assert_eq!(
            inline("see https://a.b/c. and <https://x.y/>"),
            "see <https://a.b/c>. and <https://x.y/>"
        );
        assert_eq!(
            inline("compat >= 1.1, a -> b, <tag> x < 2"),
            "compat >= 1.1, a -> b, \\<tag> x < 2"
        );
        assert_eq!(markdown("> quoted?"), vec!["\\> quoted?"]);
    }

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
        assert_eq!(markdown("x <y>"), vec!["x \\<y>"]);
    }

    #[test]
    fn conditions() {
        use crate::value::{Dict, Value};
        let c = Value::Dict(Dict(vec![(
            "all".into(),
            Value::List(vec![Value::Str("A".into()), Value::Str("B".into())]),
        )]));
        assert_eq!(crate::schema::condition_text(&c), "all(A, B)");
    }
}
