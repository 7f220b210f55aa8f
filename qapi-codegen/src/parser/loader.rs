//! Where schema files come from: the file system (regular files of a
//! bounded size) or memory; and the path rules includes follow (Python's
//! `os.path`).

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
pub(super) fn join_include(fname: &str, include: &str) -> String {
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
