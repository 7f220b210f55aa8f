//! The lexer and expression parser of one schema file, with QEMU's
//! columns and words in its errors.

use crate::source::{Info, R, Raise};
use crate::value::{Dict, Value};

use super::MAX_NESTING;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Punct(u8),
    Str,
    True,
    False,
    Comment,
    Eof,
}

/// Lexer and expression parser for one file.
pub(crate) struct FileParser<'s> {
    /// The file's text (valid UTF-8, ends with a newline).
    text: &'s str,
    /// The same, as bytes.
    src: &'s [u8],
    file: u32,
    line: u32,
    pub(crate) tok: Tok,
    pos: usize,
    cursor: usize,
    line_pos: usize,
    /// The value of a string token.
    val: String,
    /// Byte range of a comment token, `#` included.
    comment: (usize, usize),
    /// Doc comments by the rules of QEMU before 9.1.
    pub(crate) legacy_docs: bool,
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

impl<'s> FileParser<'s> {
    /// A parser at the start of `text` (valid UTF-8, ending with a
    /// newline), file number `file` of the source map.
    pub(super) fn new(text: &'s str, file: u32, legacy_docs: bool) -> FileParser<'s> {
        FileParser {
            text,
            src: text.as_bytes(),
            file,
            line: 1,
            tok: Tok::Eof,
            pos: 0,
            cursor: 0,
            line_pos: 0,
            val: String::new(),
            comment: (0, 0),
            legacy_docs,
        }
    }

    pub(crate) fn info(&self) -> Info {
        Info::new(self.file, self.line)
    }

    /// The current comment token's text (`#` included).
    pub(crate) fn comment_text(&self) -> &'s str {
        // The range lies on char boundaries: it starts at an ASCII '#'
        // and ends at an ASCII '\n' (or the end).
        self.text.get(self.comment.0..self.comment.1).unwrap_or("")
    }

    /// A syntax error at the current token, with QEMU's column.
    pub(crate) fn parse_error<T>(&self, msg: impl Into<String>) -> R<T> {
        let mut col = 1u32;
        let end = self.pos.min(self.src.len());
        let start = self.line_pos.min(end);
        for &b in &self.src[start..end] {
            if b == b'\t' {
                col = (col + 7) % 8 + 1;
            } else if b & 0xC0 != 0x80 {
                col += 1;
            }
        }
        Err(Box::new(Raise {
            info: self.info(),
            col: Some(col),
            msg: msg.into(),
            previous: None,
        }))
    }

    /// The character starting at byte `i` (`src` is valid UTF-8 and `i` is
    /// on a char boundary). Decodes at most 4 bytes: never the whole rest.
    fn char_at(&self, i: usize) -> char {
        let Some(&b) = self.src.get(i) else {
            return '\n';
        };
        if b < 0x80 {
            return b as char;
        }
        let end = (i + 4).min(self.src.len());
        let chunk = &self.src[i..end];
        let valid = match std::str::from_utf8(chunk) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&chunk[..e.valid_up_to()]).unwrap_or(""),
        };
        valid.chars().next().unwrap_or('\u{FFFD}')
    }

    /// Reads the next token (QEMU's `accept`).
    pub(crate) fn accept(&mut self, mut skip_comment: bool) -> R<()> {
        loop {
            let Some(&c) = self.src.get(self.cursor) else {
                self.tok = Tok::Eof;
                return Ok(());
            };
            self.pos = self.cursor;
            self.cursor += 1;
            match c {
                b'#' => {
                    if self.src.get(self.cursor) == Some(&b'#') {
                        skip_comment = false;
                    }
                    let nl = self
                        .text
                        .get(self.cursor..)
                        .and_then(|rest| rest.find('\n'))
                        .map_or(self.src.len(), |i| self.cursor + i);
                    self.cursor = nl;
                    if !skip_comment {
                        self.tok = Tok::Comment;
                        self.comment = (self.pos, self.cursor);
                        return Ok(());
                    }
                }
                b'{' | b'}' | b':' | b',' | b'[' | b']' => {
                    self.tok = Tok::Punct(c);
                    return Ok(());
                }
                b'\'' => {
                    self.val.clear();
                    // Fast path: a run of plain printable ASCII.
                    let plain = self.src[self.cursor..]
                        .iter()
                        .position(|&b| !(32..127).contains(&b) || b == b'\\' || b == b'\'')
                        .unwrap_or(self.src.len() - self.cursor);
                    // Printable ASCII: the run ends on a char boundary.
                    if let Some(run) = self.text.get(self.cursor..self.cursor + plain) {
                        self.val.push_str(run);
                    }
                    self.cursor += plain;
                    let mut esc = false;
                    loop {
                        let ch = self.char_at(self.cursor);
                        self.cursor += ch.len_utf8();
                        if ch == '\n' {
                            return self.parse_error("missing terminating \"'\"");
                        }
                        if esc {
                            if ch != '\\' {
                                return self.parse_error(format!("unknown escape \\{ch}"));
                            }
                            esc = false;
                        } else if ch == '\\' {
                            esc = true;
                            continue;
                        } else if ch == '\'' {
                            self.tok = Tok::Str;
                            return Ok(());
                        }
                        if (ch as u32) < 32 || (ch as u32) >= 127 {
                            return self.parse_error("funny character in string");
                        }
                        self.val.push(ch);
                    }
                }
                b't' if self.src[self.pos..].starts_with(b"true") => {
                    self.tok = Tok::True;
                    self.cursor += 3;
                    return Ok(());
                }
                b'f' if self.src[self.pos..].starts_with(b"false") => {
                    self.tok = Tok::False;
                    self.cursor += 4;
                    return Ok(());
                }
                b'\n' => {
                    if self.cursor == self.src.len() {
                        self.tok = Tok::Eof;
                        return Ok(());
                    }
                    self.line += 1;
                    self.line_pos = self.cursor;
                }
                _ => {
                    let ch = self.char_at(self.pos);
                    self.cursor = self.pos + ch.len_utf8();
                    if !is_space(ch) {
                        // Show up to the next structural, white space or
                        // quote character.
                        // The stray text ends at the line's end at the latest.
                        let eol = self.src[self.pos..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(self.src.len(), |n| self.pos + n);
                        let rest = std::str::from_utf8(&self.src[self.pos..eol]).unwrap_or("");
                        let end = rest
                            .find(|c: char| "[]{}:,'".contains(c) || is_space(c))
                            .unwrap_or(rest.len());
                        return self.parse_error(format!("stray '{}'", &rest[..end]));
                    }
                }
            }
        }
    }

    fn get_members(&mut self, depth: usize) -> R<Dict> {
        let mut expr = Dict::default();
        if self.tok == Tok::Punct(b'}') {
            self.accept(true)?;
            return Ok(expr);
        }
        if self.tok != Tok::Str {
            return self.parse_error("expected string or '}'");
        }
        loop {
            let key = std::mem::take(&mut self.val);
            self.accept(true)?;
            if self.tok != Tok::Punct(b':') {
                return self.parse_error("expected ':'");
            }
            self.accept(true)?;
            if expr.contains(&key) {
                return self.parse_error(format!("duplicate key '{key}'"));
            }
            let value = self.get_expr(depth + 1)?;
            expr.0.push((key, value));
            if self.tok == Tok::Punct(b'}') {
                self.accept(true)?;
                return Ok(expr);
            }
            if self.tok != Tok::Punct(b',') {
                return self.parse_error("expected ',' or '}'");
            }
            self.accept(true)?;
            if self.tok != Tok::Str {
                return self.parse_error("expected string");
            }
        }
    }

    fn get_values(&mut self, depth: usize) -> R<Vec<Value>> {
        let mut expr = Vec::new();
        if self.tok == Tok::Punct(b']') {
            self.accept(true)?;
            return Ok(expr);
        }
        if !matches!(
            self.tok,
            Tok::Punct(b'{') | Tok::Punct(b'[') | Tok::Str | Tok::True | Tok::False
        ) {
            return self.parse_error("expected '{', '[', ']', string, or boolean");
        }
        loop {
            expr.push(self.get_expr(depth + 1)?);
            if self.tok == Tok::Punct(b']') {
                self.accept(true)?;
                return Ok(expr);
            }
            if self.tok != Tok::Punct(b',') {
                return self.parse_error("expected ',' or ']'");
            }
            self.accept(true)?;
        }
    }

    pub(crate) fn get_expr(&mut self, depth: usize) -> R<Value> {
        if depth >= MAX_NESTING {
            return self.parse_error(format!(
                "arrays and objects nest more than {MAX_NESTING} deep"
            ));
        }
        match self.tok {
            Tok::Punct(b'{') => {
                self.accept(true)?;
                Ok(Value::Dict(self.get_members(depth)?))
            }
            Tok::Punct(b'[') => {
                self.accept(true)?;
                Ok(Value::List(self.get_values(depth)?))
            }
            Tok::Str => {
                let v = Value::Str(std::mem::take(&mut self.val));
                self.accept(true)?;
                Ok(v)
            }
            Tok::True | Tok::False => {
                let v = Value::Bool(self.tok == Tok::True);
                self.accept(true)?;
                Ok(v)
            }
            _ => self.parse_error("expected '{', '[', string, or boolean"),
        }
    }
}
