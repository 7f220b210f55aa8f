//! Stage 1: read schema files into expressions and doc comments.
//!
//! This follows QEMU's `scripts/qapi/parser.py` closely so that errors land
//! on the same line and column with the same words: the lexer accepts
//! single-quoted strings (only `\\` escapes, printable ASCII), `true`,
//! `false`, the six structural characters and `#` comments; `##` opens a
//! doc comment. `include` and `pragma` directives are handled here.
//!
//! Its parts: [`loader`] (where files come from), `lexer` (tokens and
//! expressions of one file), `doc_comments` (a `##` block read into a
//! [`Doc`]); this file drives them over a file and its includes.

mod doc_comments;
mod lexer;
pub mod loader;

use std::collections::HashSet;

use crate::doc::Doc;
pub use crate::pragma::Pragma;
use crate::source::{Info, R, SourceFile, SourceMap, err};
use crate::value::{Dict, Value};
use lexer::{FileParser, Tok};
pub(crate) use loader::FsLoaderAt;
pub use loader::{DEFAULT_MAX_FILE_SIZE, FsLoader, Loader, MemLoader};
use loader::{join_include, strerror};

/// How deeply arrays and objects may nest before the parser gives up
/// (QEMU's Python parser dies with a RecursionError somewhat deeper).
pub const MAX_NESTING: usize = 256;

/// How deeply `include`s may nest. QEMU's Python generator stops at
/// about 1,000 (its recursion limit); real schemas nest two or three
/// deep. Each level costs stack, so the bound also keeps a library user
/// on a small thread stack safe.
pub const MAX_INCLUDE_DEPTH: usize = 500;

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
    let mut p = FileParser::new(&src, file, state.legacy_docs);
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
