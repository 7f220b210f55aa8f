//! What `regen` writes: an output directory and its files, and the
//! command named in generated headers. Below every module that makes
//! outputs.

use std::path::PathBuf;

use qapi_gen::rust::GeneratedFile;

/// The command that fixes stale output.
pub const REGEN: &str = "cargo xtask regen";

/// One output directory (or file) and what should be in it.
pub struct Output {
    /// Directory, relative to the workspace root.
    pub dir: PathBuf,
    /// Its files.
    pub files: Vec<GeneratedFile>,
    /// Whether the directory holds only generated `.rs` files (stale ones
    /// are deleted).
    pub owns_dir: bool,
}
