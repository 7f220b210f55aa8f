//! Doc comments: `##` blocks, parsed into sections as QEMU does.
//!
//! A definition doc starts with `@symbol:` and may hold a body, member
//! descriptions (`@name: text`), a `Features:` block and tagged sections
//! (`Returns:`, `Errors:`, `Since:`, `TODO:`); a free-form doc is text
//! (with `=` headings).

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
    pub(crate) fn new(info: Info, symbol: Option<String>, legacy: bool) -> Doc {
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

    pub(crate) fn last(&mut self) -> &mut Section {
        let i = self.order.last().copied().unwrap_or(0);
        &mut self.sections[i]
    }

    pub(crate) fn append_line(&mut self, line: &str) {
        let s = self.last();
        s.text.push_str(line);
        s.text.push('\n');
    }

    pub(crate) fn ensure_untagged_section(&mut self, info: Info) {
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

    pub(crate) fn new_tagged_section(&mut self, info: Info, kind: SectionKind) -> R<()> {
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

    pub(crate) fn new_description(&mut self, info: Info, name: &str, kind: SectionKind) -> R<()> {
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

    pub(crate) fn end(&mut self) -> R<()> {
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
        pragma: &crate::pragma::Pragma,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_trim_in_place() {
        for (input, want) in [("\n\na\nb\n\n", "a\nb"), ("\n", ""), ("", ""), ("x", "x")] {
            let mut s = input.to_string();
            trim_newlines(&mut s);
            assert_eq!(s, want, "{input:?}");
        }
    }
}
