//! Stage 1: read schema files into expressions and doc comments.
//!
//! This follows QEMU's `scripts/qapi/parser.py` closely so that errors land
//! on the same line and column with the same words: the lexer accepts
//! single-quoted strings (only `\\` escapes, printable ASCII), `true`,
//! `false`, the six structural characters and `#` comments; `##` opens a
//! doc comment. `include` and `pragma` directives are handled here.

use std::collections::HashSet;

use crate::doc::Doc;
use crate::source::{Info, R, Raise, SourceFile, SourceMap, err};
use crate::value::{Dict, Value};

/// How deeply arrays and objects may nest before the parser gives up
/// (QEMU's Python parser dies with a RecursionError somewhat deeper).
pub const MAX_NESTING: usize = 256;

/// How deeply `include`s may nest. QEMU's Python generator stops at
/// about 1,000 (its recursion limit); real schemas nest two or three
/// deep. Each level costs stack, so the bound also keeps a library user
/// on a small thread stack safe.
pub const MAX_INCLUDE_DEPTH: usize = 500;

/// The largest schema file [`FsLoader`] reads by default (QEMU's largest,
/// `block-core.json`, is about 200 KiB).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 << 20;

/// Reads `path` if it is a regular file of at most `max` bytes: a device
/// (`/dev/zero`), a FIFO or a directory is refused with a reason, as is a
/// file over the limit, and nothing more than the limit is ever read.
fn read_regular(path: &str, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let regular = |meta: &std::fs::Metadata| {
        if meta.is_file() {
            return Ok(());
        }
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, what))
    };
    // Before opening: opening a FIFO for reading blocks until a writer
    // comes. After opening: it is still the same kind of file.
    regular(&std::fs::metadata(path)?)?;
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    regular(&meta)?;
    if meta.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} bytes, over the limit of {max}", meta.len()),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("grew past the limit of {max} bytes while read"),
        ));
    }
    Ok(bytes)
}

/// Where schema files come from: the file system, or memory (tests,
/// fuzzing, build scripts that embed a schema).
pub trait Loader {
    /// Reads the file at `path` (as joined by include resolution).
    fn load(&self, path: &str) -> std::io::Result<Vec<u8>>;
    /// An absolute, normalised form of `path`, used to detect include
    /// cycles and files included twice.
    fn absolute(&self, path: &str) -> String {
        absolute_in(&current_dir(), path)
    }
}

/// The working directory as a string (empty if it can't be read).
fn current_dir() -> String {
    std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `path` made absolute against `cwd`, and normalised.
fn absolute_in(cwd: &str, path: &str) -> String {
    if path.starts_with('/') {
        normalize(path)
    } else {
        normalize(&format!("{cwd}/{path}"))
    }
}

/// Reads files from the file system: regular files only, each of at most
/// [`FsLoader::max_file_size`] bytes.
#[derive(Debug, Clone, Copy)]
pub struct FsLoader {
    /// The largest file read (default [`DEFAULT_MAX_FILE_SIZE`]).
    pub max_file_size: u64,
}

impl Default for FsLoader {
    fn default() -> FsLoader {
        FsLoader {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

impl Loader for FsLoader {
    fn load(&self, path: &str) -> std::io::Result<Vec<u8>> {
        read_regular(path, self.max_file_size)
    }
}

/// [`FsLoader`] with the working directory read once (it is asked for
/// every include and module name otherwise).
pub(crate) struct FsLoaderAt {
    cwd: String,
    max_file_size: u64,
}

impl FsLoaderAt {
    /// Reads the working directory now.
    pub(crate) fn new(max_file_size: u64) -> FsLoaderAt {
        FsLoaderAt {
            cwd: current_dir(),
            max_file_size,
        }
    }
}

impl Loader for FsLoaderAt {
    fn load(&self, path: &str) -> std::io::Result<Vec<u8>> {
        read_regular(path, self.max_file_size)
    }

    fn absolute(&self, path: &str) -> String {
        absolute_in(&self.cwd, path)
    }
}

/// Serves files from memory; paths are relative to a virtual root.
#[derive(Debug, Clone, Default)]
pub struct MemLoader {
    files: std::collections::HashMap<String, Vec<u8>>,
}

impl MemLoader {
    /// An empty loader.
    pub fn new() -> MemLoader {
        MemLoader::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, path: &str, contents: impl Into<Vec<u8>>) {
        self.files
            .insert(normalize(&format!("/{path}")), contents.into());
    }
}

impl Loader for MemLoader {
    fn load(&self, path: &str) -> std::io::Result<Vec<u8>> {
        self.files
            .get(&self.absolute(path))
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn absolute(&self, path: &str) -> String {
        normalize(&format!("/{path}"))
    }
}

/// Lexically normalises an absolute path like Python's `os.path.normpath`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `os.path.join(os.path.dirname(fname), include)`.
fn join_include(fname: &str, include: &str) -> String {
    if include.starts_with('/') {
        return include.to_string();
    }
    match fname.rfind('/') {
        None => include.to_string(),
        Some(i) => {
            let dir = &fname[..i];
            let dir = if dir.is_empty() { "/" } else { dir };
            if dir.ends_with('/') {
                format!("{dir}{include}")
            } else {
                format!("{dir}/{include}")
            }
        }
    }
}

/// The OS's words for an I/O error, without Rust's "(os error N)" suffix.
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Pragmas: schema-wide settings (`{ 'pragma': { ... } }`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pragma {
    /// Whether every definition needs a doc comment.
    pub doc_required: bool,
    /// Commands whose names may use `_`.
    pub command_name_exceptions: Vec<String>,
    /// Commands that may return a non-object type.
    pub command_returns_exceptions: Vec<String>,
    /// Definitions whose members may lack documentation.
    pub documentation_exceptions: Vec<String>,
    /// Whether the schema declares `documentation-exceptions` at all. QEMU
    /// introduced that pragma together with the rule that every member
    /// be documented; schemas older than the rule (QEMU 7.2) lack both,
    /// and the rule is enforced only for schemas that declare the pragma.
    pub documentation_exceptions_declared: bool,
    /// Types whose member names may use uppercase or `_`.
    pub member_name_exceptions: Vec<String>,
}

/// A top-level expression as read.
#[derive(Debug, Clone)]
pub(crate) enum RawExpr {
    /// An `include` directive; `path` is joined to the including file's
    /// directory.
    Include { path: String, info: Info },
    /// A definition, with its doc comment (index into the docs).
    Defn {
        expr: Dict,
        info: Info,
        doc: Option<usize>,
    },
}

/// Everything the parser produced.
pub(crate) struct Parsed {
    pub sources: SourceMap,
    pub exprs: Vec<RawExpr>,
    pub docs: Vec<Doc>,
    pub pragma: Pragma,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Punct(u8),
    Str,
    True,
    False,
    Comment,
    Eof,
}

/// The state shared by all files of one parse.
struct State<'l> {
    loader: &'l dyn Loader,
    sources: SourceMap,
    /// The absolute path of each file in `sources` (same index).
    abs_paths: Vec<String>,
    included: HashSet<String>,
    exprs: Vec<RawExpr>,
    docs: Vec<Doc>,
    pragma: Pragma,
    legacy_docs: bool,
}

/// Parses `fname` and everything it includes. `legacy_docs`: doc comments
/// by the rules of QEMU before 9.1 (see [`crate::schema::DocRules`]).
pub(crate) fn parse(
    loader: &dyn Loader,
    fname: &str,
    legacy_docs: bool,
) -> Result<Parsed, crate::Error> {
    let mut state = State {
        legacy_docs,
        loader,
        sources: SourceMap::default(),
        abs_paths: Vec::new(),
        included: HashSet::new(),
        exprs: Vec::new(),
        docs: Vec::new(),
        pragma: Pragma::default(),
    };
    let bytes = loader.load(fname).map_err(|e| crate::Error::Read {
        path: fname.into(),
        message: strerror(&e),
    })?;
    let abs = loader.absolute(fname);
    match parse_file(&mut state, fname, abs, bytes, None) {
        Ok(()) => Ok(Parsed {
            sources: state.sources,
            exprs: state.exprs,
            docs: state.docs,
            pragma: state.pragma,
        }),
        Err(raise) => Err(state.sources.to_error(&raise, &|_| None)),
    }
}

fn parse_file(
    state: &mut State<'_>,
    fname: &str,
    abs: String,
    bytes: Vec<u8>,
    incl: Option<Info>,
) -> R<()> {
    state.included.insert(abs.clone());
    state.abs_paths.push(abs);
    let file = state.sources.files.len() as u32;
    state.sources.files.push(SourceFile {
        path: fname.to_string(),
        included_from: incl,
    });
    let mut src = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let bad = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = 1 + bytes[..bad].iter().filter(|&&b| b == b'\n').count() as u32;
            return err(
                Info::new(file, line),
                format!("invalid UTF-8 (at byte offset {bad}); schema files must be UTF-8"),
            );
        }
    };
    if !src.ends_with('\n') {
        src.push('\n');
    }
    let mut p = FileParser {
        text: &src,
        src: src.as_bytes(),
        file,
        line: 1,
        tok: Tok::Eof,
        pos: 0,
        cursor: 0,
        line_pos: 0,
        val: String::new(),
        comment: (0, 0),
        legacy_docs: state.legacy_docs,
    };
    p.accept(true)?;
    let mut cur_doc: Option<usize> = None;
    while p.tok != Tok::Eof {
        let info = p.info();
        if p.tok == Tok::Comment {
            reject_expr_doc(state, cur_doc)?;
            let doc = p.get_doc()?;
            state.docs.push(doc);
            cur_doc = Some(state.docs.len() - 1);
            continue;
        }
        let expr = p.get_expr(0)?;
        let Value::Dict(expr) = expr else {
            return err(info, "top-level expression must be an object");
        };
        if expr.contains("include") {
            reject_expr_doc(state, cur_doc)?;
            if expr.len() != 1 {
                return err(info, "invalid 'include' directive");
            }
            let Some(include) = expr.get_str("include") else {
                return err(info, "value of 'include' must be a string");
            };
            let incl_fname = join_include(fname, include);
            state.exprs.push(RawExpr::Include {
                path: incl_fname.clone(),
                info,
            });
            include_file(state, include, info, &incl_fname)?;
        } else if let Some(pragma) = expr.get("pragma") {
            reject_expr_doc(state, cur_doc)?;
            if expr.len() != 1 {
                return err(info, "invalid 'pragma' directive");
            }
            let Value::Dict(pragma) = pragma else {
                return err(info, "value of 'pragma' must be an object");
            };
            for (name, value) in &pragma.0 {
                set_pragma(&mut state.pragma, name, value, info)?;
            }
        } else {
            if let Some(d) = cur_doc
                && state.docs[d].symbol.is_none()
            {
                return err(state.docs[d].info, "definition documentation required");
            }
            state.exprs.push(RawExpr::Defn {
                expr,
                info,
                doc: cur_doc,
            });
        }
        cur_doc = None;
    }
    reject_expr_doc(state, cur_doc)
}

fn reject_expr_doc(state: &State<'_>, doc: Option<usize>) -> R<()> {
    if let Some(d) = doc
        && let Some(symbol) = &state.docs[d].symbol
    {
        return err(
            state.docs[d].info,
            format!("documentation for '{symbol}' is not followed by the definition"),
        );
    }
    Ok(())
}

fn include_file(state: &mut State<'_>, include: &str, info: Info, incl_fname: &str) -> R<()> {
    let mut depth = 0;
    let mut up = Some(info);
    while let Some(i) = up {
        depth += 1;
        if depth > MAX_INCLUDE_DEPTH {
            return err(
                info,
                format!("includes nest more than {MAX_INCLUDE_DEPTH} deep"),
            );
        }
        up = state.sources.file(i.file).and_then(|f| f.included_from);
    }
    let abs = state.loader.absolute(incl_fname);
    // An include cycle: the file is this one or one that includes it.
    let mut inf = Some(info);
    let mut steps = 0;
    while let Some(i) = inf {
        if state.abs_paths.get(i.file as usize) == Some(&abs) {
            return err(info, format!("inclusion loop for {include}"));
        }
        inf = state.sources.file(i.file).and_then(|f| f.included_from);
        steps += 1;
        if steps > state.sources.files.len() {
            break;
        }
    }
    if state.included.contains(&abs) {
        return Ok(());
    }
    match state.loader.load(incl_fname) {
        Ok(bytes) => parse_file(state, incl_fname, abs, bytes, Some(info)),
        Err(e) => err(
            info,
            format!("can't read include file '{incl_fname}': {}", strerror(&e)),
        ),
    }
}

fn set_pragma(pragma: &mut Pragma, name: &str, value: &Value, info: Info) -> R<()> {
    let list = |value: &Value| -> R<Vec<String>> {
        if let Value::List(items) = value {
            let strs: Option<Vec<String>> = items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect();
            if let Some(strs) = strs {
                return Ok(strs);
            }
        }
        err(info, format!("pragma {name} must be a list of strings"))
    };
    match name {
        "doc-required" => match value {
            Value::Bool(b) => pragma.doc_required = *b,
            _ => return err(info, "pragma 'doc-required' must be boolean"),
        },
        "command-name-exceptions" => pragma.command_name_exceptions = list(value)?,
        "command-returns-exceptions" => pragma.command_returns_exceptions = list(value)?,
        "documentation-exceptions" => {
            pragma.documentation_exceptions = list(value)?;
            pragma.documentation_exceptions_declared = true;
        }
        "member-name-exceptions" => pragma.member_name_exceptions = list(value)?,
        _ => return err(info, format!("unknown pragma '{name}'")),
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_paths_join_like_python() {
        assert_eq!(join_include("a.json", "b.json"), "b.json");
        assert_eq!(join_include("d/a.json", "b.json"), "d/b.json");
        assert_eq!(join_include("d/a.json", "../b.json"), "d/../b.json");
        assert_eq!(join_include("/a.json", "b.json"), "/b.json");
        assert_eq!(join_include("d/a.json", "/x/b.json"), "/x/b.json");
    }

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(normalize("/a/./b/../c"), "/a/c");
        assert_eq!(normalize("/../a"), "/a");
    }
}
