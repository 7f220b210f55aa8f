//! Quick start: typed commands, a block job and its events.
//!
//! `cargo run -p qmp-examples --example quickstart [SOCKET]` talks to the QEMU (or
//! qemu-storage-daemon) QMP socket given, or starts a private
//! `qemu-storage-daemon` on a socket in a temporary directory (and stops
//! it at the end) when none is given.

use std::time::Duration;

use qmp_client::launch::Launcher;
use qmp_client::{Client, Options};
use qmp_types::*;

fn null_node(name: &str, size: i64) -> BlockdevAdd {
    BlockdevAdd::new(
        BlockdevOptions::null_co(BlockdevOptionsNull::new().with_size(size)).with_node_name(name),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_qemu, client) = match std::env::args().nth(1) {
        Some(path) => (None, Client::connect_unix(path, Options::default()).await?),
        None => {
            let q = Launcher::storage_daemon().start().await?;
            println!(
                "started a private qemu-storage-daemon (pid {}) on {}",
                q.pid(),
                q.socket().display()
            );
            let client = q.connect(Options::default()).await?;
            (Some(q), client)
        }
    };
    let v = &client.greeting().version;
    println!(
        "connected: QEMU {}.{}.{} ({}), capabilities {:?}",
        v.qemu.major,
        v.qemu.minor,
        v.qemu.micro,
        v.package,
        client.greeting().capabilities
    );

    // Typed commands, typed replies.
    client.execute(null_node("qs-src", 64 << 20)).await?;
    client.execute(null_node("qs-dst", 64 << 20)).await?;
    for n in client
        .execute(QueryNamedBlockNodes::new().with_flat(true))
        .await?
    {
        println!(
            "node {:?}: driver {}, {} bytes",
            n.node_name, n.drv, n.image.virtual_size
        );
    }

    // A block job and its events: subscribe, start it, wait for the end.
    let mut events = client.events();
    let since = client.event_cursor();
    client
        .execute(
            BlockdevBackup::new("qs-src", MirrorSyncMode::Full, "qs-dst").with_job_id("qs-job"),
        )
        .await?;
    let (_, done) = client
        .events_of::<JobStatusChange>(since)
        .matching(|e| e.id == "qs-job" && e.status == JobStatus::Null)
        .wait(Duration::from_secs(30))
        .await?;
    println!("job {} finished", done.id);
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(50), events.next()).await {
        let detail = match &e.event {
            AnyEvent::JobStatusChange(j) => format!("{} -> {}", j.id, j.status),
            other => other.name().to_string(),
        };
        println!(
            "  event {} at {}.{:06}: {detail}",
            e.event.name(),
            e.timestamp.seconds,
            e.timestamp.microseconds
        );
    }
    if let Some((_, c)) = client
        .events_of::<BlockJobCompleted>(since)
        .matching(|e| e.device == "qs-job")
        .found()
        .pop()
    {
        println!(
            "BLOCK_JOB_COMPLETED: {} of {} bytes, error: {:?}",
            c.offset, c.len, c.error
        );
    }

    // An error, typed.
    if let Err(e) = client.execute(BlockJobCancel::new("no-such-job")).await {
        println!("as expected: {e} (class {:?})", e.class());
    }
    client.execute(BlockdevDel::new("qs-dst")).await?;
    client.execute(BlockdevDel::new("qs-src")).await?;
    Ok(())
}
