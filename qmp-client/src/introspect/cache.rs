//! One fetch of `query-qmp-schema` per QEMU binary per process: the key
//! that says two connections talk to the same build, and the cells
//! connections share.
//!
//! What makes the key safe: QEMU's introspection is compiled into its
//! binary (QEMU generates it from the schema at build time, with the
//! build's `if` conditions applied), so one executable file always
//! reports one schema, and two builds of one version with other
//! configure options are two files. The key is the file itself, as the
//! kernel knows it (device, inode, size, modification time of the peer
//! process's `/proc/PID/exe`, the peer found with `SO_PEERCRED`), with
//! the greeting's version and package beside it. It is made only when
//! the peer on the socket is that QEMU: its executable's name starts
//! with `qemu` (`qemu-system-x86_64`, `qemu-storage-daemon`,
//! `qemu-kvm`). A proxy, `socat` or anything else between the client
//! and QEMU gives no key, and such a connection fetches its own (the
//! same proxy binary may stand before QEMUs of different builds). So
//! does a TCP connection, and a peer in another PID namespace (no
//! readable `/proc/PID/exe`).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, OnceLock};

use super::Introspection;

/// What identifies a QEMU build: its executable file and its greeting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BinaryKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    /// `major.minor.micro` and the package string of the greeting.
    greeting: String,
}

impl BinaryKey {
    /// The key of the QEMU process `pid`, with its greeting's version and
    /// package; `None` when the process is not a QEMU or can't be seen.
    pub(crate) fn of_pid(pid: i32, version: &str, package: &str) -> Option<BinaryKey> {
        let exe = format!("/proc/{pid}/exe");
        let target = std::fs::read_link(&exe).ok()?;
        let name = target.file_name()?.to_str()?;
        if !name.starts_with("qemu") {
            return None;
        }
        let m = std::fs::metadata(&exe).ok()?;
        Some(BinaryKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            greeting: format!("{version} {package}"),
        })
    }

    /// A short, stable text of the key (for a file name).
    pub(crate) fn text(&self) -> String {
        // FNV-1a over the parts: stable across runs, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let parts = format!(
            "{}:{}:{}:{}.{}:{}",
            self.dev, self.ino, self.size, self.mtime.0, self.mtime.1, self.greeting
        );
        for b in parts.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// A schema being fetched or fetched, shared by every connection to one
/// build.
pub(crate) type Cell = Arc<tokio::sync::OnceCell<Arc<Introspection>>>;

/// The cell of `key`, made on first use. The map holds a cell for each
/// build this process talked to (a few, typically one).
pub(crate) fn cell(key: Option<&BinaryKey>) -> Cell {
    static CELLS: OnceLock<Mutex<HashMap<BinaryKey, Cell>>> = OnceLock::new();
    let Some(key) = key else {
        return Cell::default();
    };
    let mut cells = CELLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    cells.entry(key.clone()).or_default().clone()
}
