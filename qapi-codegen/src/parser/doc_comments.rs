//! Reading a `##` doc comment block into a [`Doc`], line by line, by the
//! rules of QEMU 10 or (for older schemas) of QEMU before 9.1.

use super::lexer::{FileParser, Tok};
use crate::doc::{Doc, SectionKind};
use crate::source::R;

/// `@name: ` at the start of a line: the name and where the text starts.
fn match_at_name_colon(line: &str, legacy: bool) -> Option<(&str, usize)> {
    let rest = line.strip_prefix('@')?;
    let colon = rest.find(':')?;
    // QEMU 10 takes any text up to the colon as the name (and then finds
    // no member of that name); QEMU 7.2 took only non-blank text, and its
    // schema has `@id : ...` in running text.
    if legacy && rest[..colon].contains(char::is_whitespace) {
        return None;
    }
    let mut end = 1 + colon + 1;
    end += line[end..].bytes().take_while(|&b| b == b' ').count();
    Some((&rest[..colon], end))
}

/// A tagged section's tag at the start of a line (not followed by `::`,
/// which is rST markup): the tag and where the text starts.
fn match_tag(line: &str) -> Option<(&'static str, usize)> {
    const TAGS: [&str; 8] = [
        "Returns", "Errors", "Since", "Notes", "Note", "Examples", "Example", "TODO",
    ];
    for tag in TAGS {
        if let Some(rest) = line.strip_prefix(tag) {
            if rest.starts_with("::") || !rest.starts_with(':') {
                continue;
            }
            let end = tag.len() + 1 + rest[1..].bytes().take_while(|&b| b == b' ').count();
            return Some((tag, end));
        }
    }
    None
}

/// Whether `line` opens a new section of a definition doc.
fn starts_section(line: &str) -> bool {
    line == "Features:" || match_at_name_colon(line, true).is_some() || match_tag(line).is_some()
}

fn leading_space(line: &str) -> usize {
    line.chars().take_while(|&c| c.is_whitespace()).count()
}

impl<'s> FileParser<'s> {
    /// One line of a doc comment, `None` at its closing `##`.
    fn get_doc_line(&self) -> R<Option<&'s str>> {
        if self.tok != Tok::Comment {
            return self.parse_error("documentation comment must end with '##'");
        }
        let val = self.comment_text();
        if val.starts_with("##") {
            if val != "##" {
                return self.parse_error("junk after '##' at end of documentation comment");
            }
            return Ok(None);
        }
        if val == "#" {
            return Ok(Some(""));
        }
        if !val[1..].starts_with(' ') {
            return self.parse_error("missing space after #");
        }
        Ok(Some(val[2..].trim_end()))
    }

    fn next_doc_line(&mut self) -> R<Option<&'s str>> {
        self.accept(false)?;
        self.get_doc_line()
    }

    fn get_doc_indented(&mut self, doc: &mut Doc) -> R<Option<&'s str>> {
        if !self.legacy_docs {
            return self.get_doc_indented_qemu10(doc);
        }
        let mut line = self.next_doc_line()?;
        while line == Some("") {
            doc.append_line("");
            line = self.next_doc_line()?;
        }
        let Some(first) = line else {
            return Ok(None);
        };
        let indent = leading_space(first);
        if indent == 0 {
            if !doc.last().text.trim_matches('\n').is_empty() || starts_section(first) {
                return Ok(Some(first));
            }
            // QEMU before 9.1 let a section's text follow its tag on
            // unindented lines, up to the next section.
            doc.append_line(first);
            loop {
                match self.next_doc_line()? {
                    None => return Ok(None),
                    Some(line) if starts_section(line) => return Ok(Some(line)),
                    Some(line) => doc.append_line(line),
                }
            }
        }
        doc.append_line(first);
        let mut prev_line_blank = false;
        loop {
            let Some(line) = self.next_doc_line()? else {
                return Ok(None);
            };
            if match_at_name_colon(line, true).is_some() {
                return Ok(Some(line));
            }
            if !line.is_empty() && leading_space(line) < indent {
                // QEMU before 9.1 also ended a section at a de-indented
                // tag line such as `Since:`.
                if prev_line_blank || starts_section(line) {
                    return Ok(Some(line));
                }
                return self.parse_error(format!(
                    "unexpected de-indent (expected at least {indent} spaces)"
                ));
            }
            doc.append_line(line);
            prev_line_blank = line.is_empty();
        }
    }

    /// QEMU 10's `get_doc_indented`, to the letter: text after a tag or
    /// `@name:` line continues on lines indented like its first; an
    /// unindented first line is not the section's (which then has no
    /// text); a de-indented line right after the first is an error, later
    /// it ends the section.
    fn get_doc_indented_qemu10(&mut self, doc: &mut Doc) -> R<Option<&'s str>> {
        let mut line = self.next_doc_line()?;
        while line == Some("") {
            doc.append_line("");
            line = self.next_doc_line()?;
        }
        let Some(first) = line else {
            return Ok(None);
        };
        let indent = leading_space(first);
        if indent == 0 {
            return Ok(Some(first));
        }
        doc.append_line(first);
        let mut prev_line_blank = false;
        loop {
            let Some(line) = self.next_doc_line()? else {
                return Ok(None);
            };
            if match_at_name_colon(line, false).is_some() {
                return Ok(Some(line));
            }
            if !line.is_empty() && leading_space(line) < indent {
                if prev_line_blank {
                    return Ok(Some(line));
                }
                return self.parse_error(format!(
                    "unexpected de-indent (expected at least {indent} spaces)"
                ));
            }
            doc.append_line(line);
            // As QEMU 10 has it: set after any line, blank or not.
            prev_line_blank = true;
        }
    }

    fn get_doc_paragraph(&mut self, doc: &mut Doc) -> R<Option<&'s str>> {
        loop {
            match self.next_doc_line()? {
                None => return Ok(None),
                Some(line) if line.is_empty() => return Ok(Some(line)),
                Some(line) => doc.append_line(line),
            }
        }
    }

    /// Parses a doc comment; the current token is its opening `##`.
    pub(crate) fn get_doc(&mut self) -> R<Doc> {
        let legacy = self.legacy_docs;
        if self.comment_text() != "##" {
            return self.parse_error("junk after '##' at start of documentation comment");
        }
        let info = self.info();
        let mut line = self.next_doc_line()?;
        let mut doc;
        if let Some(first) = line.filter(|l| l.starts_with('@')) {
            if !first.ends_with(':') {
                return self.parse_error("line should end with ':'");
            }
            let symbol = &first[1..first.len() - 1];
            if symbol.is_empty() {
                return self.parse_error("name required after '@'");
            }
            doc = Doc::new(info, Some(symbol.to_string()), self.legacy_docs);
            line = self.next_doc_line()?;
            let mut no_more_args = false;
            while line.is_some() {
                while line == Some("") {
                    line = self.next_doc_line()?;
                }
                let Some(l) = line else { break };
                if l == "Features:" {
                    if !doc.features.is_empty() {
                        return self.parse_error("duplicated 'Features:' line");
                    }
                    line = self.next_doc_line()?;
                    while line == Some("") {
                        line = self.next_doc_line()?;
                    }
                    while let Some((name, end)) = line.and_then(|l| match_at_name_colon(l, legacy))
                    {
                        let l = line.unwrap_or_default();
                        doc.new_description(self.info(), name, SectionKind::Feature)?;
                        if end < l.len() {
                            doc.append_line(&l[end..]);
                        }
                        line = self.get_doc_indented(&mut doc)?;
                    }
                    if doc.features.is_empty() {
                        return self.parse_error("feature descriptions expected");
                    }
                    no_more_args = true;
                } else if let Some((name, _)) = match_at_name_colon(l, legacy) {
                    if no_more_args {
                        return self
                            .parse_error(format!("description of '@{name}:' follows a section"));
                    }
                    while let Some((name, end)) = line.and_then(|l| match_at_name_colon(l, legacy))
                    {
                        let l = line.unwrap_or_default();
                        doc.new_description(self.info(), name, SectionKind::Member)?;
                        if end < l.len() {
                            doc.append_line(&l[end..]);
                        }
                        line = self.get_doc_indented(&mut doc)?;
                    }
                    no_more_args = true;
                } else if let Some((tag, end)) = match_tag(l) {
                    if !legacy && tag.starts_with("Note") {
                        return self.parse_error(format!(
                            "The '{tag}' section is no longer supported. Please use rST's '.. note::' or '.. admonition:: notes' directives, or another suitable admonition instead."
                        ));
                    }
                    if !legacy && tag.starts_with("Example") {
                        return self.parse_error(format!(
                            "The '{tag}' section is no longer supported. Please use the '.. qmp-example::' directive, or other suitable markup instead."
                        ));
                    }
                    let kind = match tag {
                        "Returns" => SectionKind::Returns,
                        "Errors" => SectionKind::Errors,
                        "Since" => SectionKind::Since,
                        "Note" | "Notes" => SectionKind::Note,
                        "Example" | "Examples" => SectionKind::Example,
                        _ => SectionKind::Todo,
                    };
                    doc.new_tagged_section(self.info(), kind)?;
                    if end < l.len() {
                        doc.append_line(&l[end..]);
                    }
                    line = self.get_doc_indented(&mut doc)?;
                    no_more_args = true;
                } else if l.starts_with('=') {
                    return self.parse_error("unexpected '=' markup in definition documentation");
                } else {
                    doc.ensure_untagged_section(self.info());
                    doc.append_line(l);
                    line = self.get_doc_paragraph(&mut doc)?;
                }
            }
        } else {
            doc = Doc::new(info, None, self.legacy_docs);
            doc.ensure_untagged_section(self.info());
            // QEMU 10.0 wants a `=` heading first in its block; 7.2 split a
            // block at each heading and 10.2 writes rST underlined headings:
            // all three are accepted.
            while let Some(l) = line {
                if let Some((name, _)) = match_at_name_colon(l, legacy) {
                    return self
                        .parse_error(format!("'@{name}:' not allowed in free-form documentation"));
                }
                doc.append_line(l);
                line = self.next_doc_line()?;
            }
        }
        self.accept(true)?;
        doc.end()?;
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_name_colon() {
        for legacy in [false, true] {
            assert_eq!(match_at_name_colon("@foo: bar", legacy), Some(("foo", 6)));
            assert_eq!(match_at_name_colon("@foo:", legacy), Some(("foo", 5)));
            assert_eq!(match_at_name_colon("@: x", legacy), Some(("", 3)));
            assert_eq!(match_at_name_colon("@foo bar", legacy), None);
            assert_eq!(match_at_name_colon("foo:", legacy), None);
        }
        assert_eq!(match_at_name_colon("@id : x", true), None);
        assert_eq!(match_at_name_colon("@id : x", false), Some(("id ", 6)));
    }

    #[test]
    fn tags() {
        assert_eq!(match_tag("Since: 2.10"), Some(("Since", 7)));
        assert_eq!(match_tag("Notes:"), Some(("Notes", 6)));
        assert_eq!(match_tag("Note::"), None);
        assert_eq!(match_tag("Examples::"), None);
        assert_eq!(match_tag("Returns"), None);
        assert_eq!(match_tag("TODO:x"), Some(("TODO", 5)));
    }
}
