//! Errors reported by the schema front end.
//!
//! Every schema error is rendered exactly as QEMU's `qapi-gen.py` renders
//! it: optional `In file included from FILE:LINE:` lines, an optional
//! `FILE: In META 'NAME':` context line, then `FILE:LINE[:COL]: message`.

use std::path::PathBuf;

/// The one error type of `qapi-gen`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The schema is invalid (syntax, semantics or documentation).
    ///
    /// The payload carries the location and the fully rendered message.
    #[error("{}", .0.rendered)]
    Schema(Box<Diagnostic>),
    /// The root schema file could not be read.
    #[error("can't read schema file '{}': {message}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// Why it could not be read, as the OS says it.
        message: String,
    },
    /// The schema manifest (`schema/manifest.txt`: which releases to
    /// merge, in which folders) could not be read or is malformed. The
    /// message names the line and what is wrong.
    #[error("schema manifest '{}': {message}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong, with the line number where there is one.
        message: String,
    },
    /// The schemas given can't be merged into one model: none or more than
    /// 64 were given, or the merged model refers to a type no version
    /// defines.
    #[error("can't merge the schemas: {0}")]
    Merge(String),
    /// A generator option is invalid (for instance a runtime path that
    /// isn't a Rust path).
    #[error("invalid generator option: {0}")]
    Option(String),
    /// Generating Rust failed (a bug in the generator: please report it
    /// with the schema that caused it).
    #[error("code generation failed: {0}")]
    Generate(String),
}

impl Error {
    /// The diagnostic, when the error is a schema error.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            Error::Schema(d) => Some(d),
            Error::Read { .. }
            | Error::Manifest { .. }
            | Error::Merge(_)
            | Error::Option(_)
            | Error::Generate(_) => None,
        }
    }
}

/// Where a schema error is and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the error is in, as it was reached (include paths joined,
    /// not normalised, like QEMU).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (tabs expand to multiples of 8), for syntax errors.
    pub col: Option<u32>,
    /// The message alone, without location.
    pub message: String,
    /// The whole error as QEMU prints it (may span several lines).
    pub rendered: String,
}

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
