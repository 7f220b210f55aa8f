//! The connected QEMU's own schema for the command line, cached on disk:
//! `qmp exec` checks and types arguments by it, `qmp shell` completes
//! from it (a QEMU newer than the bindings included).
//!
//! The cache: one file per QEMU build, `schema-<id>.json` in
//! `$QMP_CACHE_DIR`, else `$XDG_CACHE_HOME/qmp`, else `~/.cache/qmp`,
//! where `<id>` is [`qmp_client::Client::binary_id`]: the QEMU's
//! executable file (device, inode, size, modification time) and its
//! greeting's version and package. A rebuilt or upgraded QEMU is another
//! file, so another id: the old entry is never applied to it. Without an
//! id (a TCP connection, a proxy between, a QEMU this user can't see in
//! `/proc`) nothing is cached and the schema is fetched per run. A file
//! that does not read as a schema is ignored and written again.

use std::path::PathBuf;
use std::sync::Arc;

use qmp_client::Client;
use qmp_client::introspect::Introspection;
use serde_json::Value;

/// Where the cache lives (see the module doc).
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("QMP_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("qmp")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/qmp")))
}

/// The connected QEMU's schema: read from the cache, or fetched (and
/// cached); given to `client`, so its own checks use it too. `None` when
/// it can't be had (the QEMU refused `query-qmp-schema`). It lives until
/// the process exits (`qmp` is short-lived; freeing its many small
/// allocations at exit cost about a tenth of an `exec`).
pub async fn schema(client: &Client) -> Option<Arc<Introspection>> {
    let s = fetch_or_read(client).await;
    if let Some(s) = &s {
        std::mem::forget(s.clone());
    }
    s
}

async fn fetch_or_read(client: &Client) -> Option<Arc<Introspection>> {
    let label = {
        let q = &client.greeting().version.qemu;
        format!("QEMU {}.{}.{}", q.major, q.minor, q.micro)
    };
    let file = client
        .binary_id()
        .zip(cache_dir())
        .map(|(id, dir)| dir.join(format!("schema-{id}.json")));
    if let Some(f) = &file
        && let Ok(bytes) = std::fs::read(f)
        && let Ok(s) = Introspection::from_json(&bytes, label.as_str())
    {
        let s = Arc::new(s);
        client.use_schema(s.clone());
        return Some(s);
    }
    let Some(f) = file else {
        // Nothing to key a cache by: the client fetches it.
        return client.schema().await.ok();
    };
    let list = client
        .execute_raw("query-qmp-schema", Value::Object(Default::default()))
        .await
        .ok()?;
    store(&f, &list);
    let s = Arc::new(Introspection::from_value(list, label).ok()?);
    client.use_schema(s.clone());
    Some(s)
}

/// Writes the cache file (atomically: a reader never sees half of it);
/// a cache that can't be written is only slower.
fn store(file: &std::path::Path, list: &Value) {
    let Some(dir) = file.parent() else {
        return;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let written = serde_json::to_vec(list)
        .ok()
        .is_some_and(|b| std::fs::write(&tmp, b).is_ok());
    if !written || std::fs::rename(&tmp, file).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
