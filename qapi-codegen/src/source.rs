//! Source files and locations.

use crate::error::{Diagnostic, Error};

/// Index of a file in a [`SourceMap`].
pub type FileId = u32;

/// A file the parser read, and where it was included from.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as QEMU would show it: the including file's directory
    /// joined with the include string, not normalised.
    pub path: String,
    /// The `include` directive that brought this file in.
    pub included_from: Option<Info>,
}

/// All files read for one schema.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// The files, root first, in the order they were read.
    pub files: Vec<SourceFile>,
}

/// Marks "no definition" in [`Info::defn`].
pub const NO_DEFN: u32 = u32::MAX;

/// A source location: file, line, and the definition it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// The file.
    pub file: FileId,
    /// 1-based line.
    pub line: u32,
    /// Index of the definition (expression) this location belongs to, or
    /// [`NO_DEFN`]; it gives the `In command 'x':` context of errors.
    pub defn: u32,
}

impl Info {
    /// A location outside any definition.
    pub fn new(file: FileId, line: u32) -> Info {
        Info {
            file,
            line,
            defn: NO_DEFN,
        }
    }

    /// The same location, inside definition `defn`.
    pub fn with_defn(self, defn: u32) -> Info {
        Info { defn, ..self }
    }
}

/// An error not yet rendered: where, what, and optionally a second
/// location (QEMU's "previous definition").
#[derive(Debug, Clone)]
pub(crate) struct Raise {
    pub info: Info,
    pub col: Option<u32>,
    pub msg: String,
    pub previous: Option<Info>,
}

/// Shorthand result for the internal stages.
pub(crate) type R<T> = std::result::Result<T, Box<Raise>>;

/// Builds an error at `info`.
pub(crate) fn err<T>(info: Info, msg: impl Into<String>) -> R<T> {
    Err(Box::new(Raise {
        info,
        col: None,
        msg: msg.into(),
        previous: None,
    }))
}

impl SourceMap {
    /// Renders `info` the way QEMU's `QAPISourceInfo.__str__` does, given a
    /// lookup of definition index to `(meta, name)`.
    fn render_info<'a>(
        &self,
        info: Info,
        defn: &dyn Fn(u32) -> Option<(&'a str, &'a str)>,
        out: &mut String,
    ) {
        use std::fmt::Write as _;
        let mut chain = Vec::new();
        let mut parent = self.file(info.file).and_then(|f| f.included_from);
        while let Some(p) = parent {
            chain.push(p);
            parent = self.file(p.file).and_then(|f| f.included_from);
            if chain.len() > self.files.len() {
                break; // cannot happen (includes form a tree); never loop
            }
        }
        for p in chain.iter().rev() {
            let _ = writeln!(
                out,
                "In file included from {}:{}:",
                self.path(p.file),
                p.line
            );
        }
        if info.defn != NO_DEFN
            && let Some((meta, name)) = defn(info.defn)
        {
            let _ = writeln!(out, "{}: In {} '{}':", self.path(info.file), meta, name);
        }
        let _ = write!(out, "{}:{}", self.path(info.file), info.line);
    }

    pub(crate) fn file(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id as usize)
    }

    /// The display path of file `id`.
    pub fn path(&self, id: FileId) -> &str {
        self.file(id).map_or("<unknown>", |f| f.path.as_str())
    }

    pub(crate) fn to_error<'a>(
        &self,
        raise: &Raise,
        defn: &dyn Fn(u32) -> Option<(&'a str, &'a str)>,
    ) -> Error {
        let mut rendered = String::new();
        self.render_info(raise.info, defn, &mut rendered);
        if let Some(col) = raise.col {
            rendered.push_str(&format!(":{col}"));
        }
        rendered.push_str(": ");
        rendered.push_str(&raise.msg);
        let mut message = raise.msg.clone();
        if let Some(prev) = raise.previous {
            let mut where_ = String::new();
            self.render_info(prev, defn, &mut where_);
            where_.push_str(": previous definition");
            rendered.push('\n');
            rendered.push_str(&where_);
            message.push('\n');
            message.push_str(&where_);
        }
        Error::Schema(Box::new(Diagnostic {
            file: self.path(raise.info.file).to_string(),
            line: raise.info.line,
            col: raise.col,
            message,
            rendered,
        }))
    }
}
