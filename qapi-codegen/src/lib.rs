//! `qapi-codegen` reads QEMU's QAPI schema language and checks it exactly
//! as QEMU's own generator does.
//!
//! Three stages:
//! 1. [`parser`]: files → expressions and doc comments (includes, pragmas);
//! 2. [`expr`] then [`schema`]: expressions → a resolved, checked model
//!    ([`Schema`]), with QEMU's error messages and locations;
//! 3. emitters (Rust code generation) read the model.
//!
//! ```no_run
//! let schema = qapi_codegen::Schema::load("schema/10.0.2/qapi/qapi-schema.json")?;
//! let commands = schema.iter().filter(|(_, e)| e.meta() == "command").count();
//! println!("{commands} commands");
//! # Ok::<(), qapi_codegen::Error>(())
//! ```

pub mod conform;
pub mod diff;
pub mod doc;
pub mod dump;
pub mod error;
pub mod expr;
pub mod manifest;
pub mod parser;
pub mod rust;
pub mod schema;
pub mod source;
pub mod value;

pub use error::{Diagnostic, Error, Result};
pub use parser::{FsLoader, Loader, MemLoader, Pragma};
pub use schema::{DocRules, Entity, EntityId, EntityKind, Schema};
