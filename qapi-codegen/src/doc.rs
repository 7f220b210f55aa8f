//! Doc comments: `##` blocks, parsed into sections as QEMU does.
//!
//! A definition doc starts with `@symbol:` and may hold a body, member
//! descriptions (`@name: text`), a `Features:` block and tagged sections
//! (`Returns:`, `Errors:`, `Since:`, `TODO:`); a free-form doc is text
//! (with `=` headings).

use crate::parser::{FileParser, Tok};
use crate::source::{Info, R, err};

/// The kind of a doc section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// Untagged text.
    Plain,
    /// `@member:` description.
    Member,
    /// A feature's description under `Features:`.
    Feature,
    /// `Returns:`
    Returns,
    /// `Errors:`
    Errors,
    /// `Since:`
    Since,
    /// `TODO:`
    Todo,
    /// `Note:` / `Notes:`, as QEMU before 9.2 wrote notes (later QEMU
    /// uses rST admonitions and rejects the tag).
    Note,
    /// `Example:` / `Examples:`, as QEMU before 9.2 wrote examples.
    Example,
}

impl SectionKind {
    /// The name QEMU prints (`Returns`, `Todo`, ...).
    pub fn title(self) -> &'static str {
        match self {
            SectionKind::Plain => "Plain",
            SectionKind::Member => "Member",
            SectionKind::Feature => "Feature",
            SectionKind::Returns => "Returns",
            SectionKind::Errors => "Errors",
            SectionKind::Since => "Since",
            SectionKind::Todo => "Todo",
            SectionKind::Note => "Note",
            SectionKind::Example => "Example",
        }
    }
}

/// One section of a doc comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Where the section begins.
    pub info: Info,
    /// What it is.
    pub kind: SectionKind,
    /// The member or feature named, for `Member` and `Feature`.
    pub name: Option<String>,
    /// The text, without the tag, leading/trailing blank lines removed.
    pub text: String,
    /// Whether a schema member or feature was found for it.
    pub connected: bool,
}

/// Initial capacity of a section's text (most member descriptions fit).
const SECTION_CAPACITY: usize = 128;

/// A doc comment block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// The `##` line that opens it.
    pub info: Info,
    /// The definition it documents; `None` for free-form documentation.
    pub symbol: Option<String>,
    /// All sections; index 0 is the body.
    pub sections: Vec<Section>,
    /// Section indices in textual order (stub member sections included).
    pub order: Vec<usize>,
    /// Member descriptions: name and section index, in insertion order.
    pub args: Vec<(String, usize)>,
    /// Feature descriptions: name and section index.
    pub features: Vec<(String, usize)>,
    /// Sections other than body, members and features, in order.
    pub others: Vec<usize>,
    /// Read by the rules of QEMU before 9.1 ([`crate::schema::DocRules`]).
    pub(crate) legacy: bool,
}

impl Doc {
    fn new(info: Info, symbol: Option<String>, legacy: bool) -> Doc {
        Doc {
            legacy,
            info,
            symbol,
            sections: vec![Section {
                info,
                kind: SectionKind::Plain,
                name: None,
                text: String::new(),
                connected: false,
            }],
            order: vec![0],
            args: Vec::new(),
            features: Vec::new(),
            others: Vec::new(),
        }
    }

    /// The body (first, untagged) section.
    pub fn body(&self) -> &Section {
        &self.sections[0]
    }

    /// The description of member `name`.
    pub fn arg(&self, name: &str) -> Option<&Section> {
        self.args
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, i)| &self.sections[i])
    }

    /// The description of feature `name`.
    pub fn feature(&self, name: &str) -> Option<&Section> {
        self.features
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, i)| &self.sections[i])
    }

    /// The first section of `kind` among the tagged ones.
    pub fn tagged(&self, kind: SectionKind) -> Option<&Section> {
        self.others
            .iter()
            .map(|&i| &self.sections[i])
            .find(|s| s.kind == kind)
    }

    fn push(&mut self, info: Info, kind: SectionKind, name: Option<String>) -> usize {
        self.sections.push(Section {
            info,
            kind,
            name,
            // Room for a typical description, so that appending its lines
            // rarely reallocates.
            text: String::with_capacity(SECTION_CAPACITY),
            connected: false,
        });
        let i = self.sections.len() - 1;
        self.order.push(i);
        i
    }

    fn last(&mut self) -> &mut Section {
        let i = self.order.last().copied().unwrap_or(0);
        &mut self.sections[i]
    }

    fn append_line(&mut self, line: &str) {
        let s = self.last();
        s.text.push_str(line);
        s.text.push('\n');
    }

    fn ensure_untagged_section(&mut self, info: Info) {
        let last = self.last();
        if last.kind == SectionKind::Plain {
            if last.text.is_empty() {
                last.info = info;
            }
            last.text.push('\n');
            return;
        }
        let i = self.push(info, SectionKind::Plain, None);
        self.others.push(i);
    }

    fn new_tagged_section(&mut self, info: Info, kind: SectionKind) -> R<()> {
        if matches!(
            kind,
            SectionKind::Returns | SectionKind::Errors | SectionKind::Since
        ) && self.others.iter().any(|&i| self.sections[i].kind == kind)
        {
            return err(info, format!("duplicated '{}' section", kind.title()));
        }
        let i = self.push(info, kind, None);
        self.others.push(i);
        Ok(())
    }

    fn new_description(&mut self, info: Info, name: &str, kind: SectionKind) -> R<()> {
        if name.is_empty() {
            return err(info, "invalid parameter name");
        }
        let list = if kind == SectionKind::Member {
            &self.args
        } else {
            &self.features
        };
        if list.iter().any(|(n, _)| n == name) {
            return err(info, format!("'{name}' parameter name duplicated"));
        }
        let i = self.push(info, kind, Some(name.to_string()));
        if kind == SectionKind::Member {
            self.args.push((name.to_string(), i));
        } else {
            self.features.push((name.to_string(), i));
        }
        Ok(())
    }

    fn end(&mut self) -> R<()> {
        for &i in &self.order {
            let s = &mut self.sections[i];
            trim_newlines(&mut s.text);
            if s.kind != SectionKind::Plain && s.text.is_empty() {
                return err(s.info, format!("text required after '{}:'", s.kind.title()));
            }
        }
        Ok(())
    }

    /// Connects a member (`role` is QEMU's word: member, value, branch)
    /// to its description, adding an empty one where the pragma
    /// `documentation-exceptions` allows a missing description.
    pub(crate) fn connect_member(
        &mut self,
        name: &str,
        role: &str,
        info: Info,
        pragma: &crate::parser::Pragma,
    ) -> R<()> {
        let exceptions = &pragma.documentation_exceptions;
        if let Some(&(_, i)) = self.args.iter().find(|(n, _)| n == name) {
            self.sections[i].connected = true;
            return Ok(());
        }
        if pragma.documentation_exceptions_declared
            && !self
                .symbol
                .as_ref()
                .is_some_and(|s| exceptions.iter().any(|e| e == s))
        {
            return err(info, format!("{role} '{name}' lacks documentation"));
        }
        // A stub, placed after the member sections that follow the body.
        self.sections.push(Section {
            info: self.info,
            kind: SectionKind::Member,
            name: Some(name.to_string()),
            text: String::new(),
            connected: true,
        });
        let i = self.sections.len() - 1;
        self.args.push((name.to_string(), i));
        let mut at = 1;
        if self.order.len() > 1 {
            while at < self.order.len() && self.sections[self.order[at]].kind == SectionKind::Member
            {
                at += 1;
            }
        }
        self.order.insert(at.min(self.order.len()), i);
        Ok(())
    }

    pub(crate) fn connect_feature(&mut self, name: &str, info: Info) -> R<()> {
        match self.features.iter().find(|(n, _)| n == name) {
            Some(&(_, i)) => {
                self.sections[i].connected = true;
                Ok(())
            }
            None => err(info, format!("feature '{name}' lacks documentation")),
        }
    }

    /// QEMU's `QAPIDoc.check_expr`: sections that fit the definition.
    pub(crate) fn check_expr(&self, is_command: bool, has_returns: bool) -> R<()> {
        let find = |k| {
            self.others
                .iter()
                .map(|&i| &self.sections[i])
                .find(|s| s.kind == k)
        };
        // QEMU 7.2's schema has many `Returns:` sections on commands that
        // return nothing ("Returns: Nothing on success"): legacy rules
        // accept them.
        if is_command
            && !has_returns
            && !self.legacy
            && let Some(r) = find(SectionKind::Returns)
        {
            return err(
                r.info,
                "'Returns' section, but command doesn't return anything",
            );
        }
        if !is_command {
            if let Some(r) = find(SectionKind::Returns) {
                return err(r.info, "'Returns' section is only valid for commands");
            }
            if let Some(r) = find(SectionKind::Errors) {
                return err(r.info, "'Errors' section is only valid for commands");
            }
        }
        Ok(())
    }

    /// QEMU's `QAPIDoc.check`: every description names a real member.
    pub(crate) fn check(&self) -> R<()> {
        for (list, what) in [(&self.args, "member"), (&self.features, "feature")] {
            let bogus: Vec<&(String, usize)> = list
                .iter()
                .filter(|(_, i)| !self.sections[*i].connected)
                .collect();
            if let Some(first) = bogus.first() {
                let names: Vec<&str> = bogus.iter().map(|(n, _)| n.as_str()).collect();
                let many = bogus.len() > 1;
                return err(
                    self.sections[first.1].info,
                    format!(
                        "documented {what}{} '{}' {} not exist",
                        if many { "s" } else { "" },
                        names.join("', '"),
                        if many { "do" } else { "does" }
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Removes leading and trailing newlines in place.
fn trim_newlines(text: &mut String) {
    let end = text.trim_end_matches('\n').len();
    text.truncate(end);
    let start = text.len() - text.trim_start_matches('\n').len();
    text.drain(..start);
}

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
    fn newlines_trim_in_place() {
        for (input, want) in [("\n\na\nb\n\n", "a\nb"), ("\n", ""), ("", ""), ("x", "x")] {
            let mut s = input.to_string();
            trim_newlines(&mut s);
            assert_eq!(s, want, "{input:?}");
        }
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
