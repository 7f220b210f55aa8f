//! A transaction that commits and one that rolls back.
//!
//! `cargo run -p qmp-examples --example transaction` (starts a private
//! `qemu-storage-daemon`).

use qmp_client::launch::Launcher;
use qmp_client::{Options, TransactionBuilder};
use qmp_types::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = Launcher::storage_daemon().start().await?;
    let mon = q.connect(Options::default()).await?;
    mon.execute(BlockdevAdd::new(
        BlockdevOptions::null_co(BlockdevOptionsNull::new()).with_node_name("disk"),
    ))
    .await?;
    mon.transaction(
        TransactionBuilder::new()
            .action(BlockDirtyBitmapAdd::new("disk", "b0"))
            .action(BlockDirtyBitmapAdd::new("disk", "b1").with_persistent(false)),
    )
    .await?;
    println!("committed: bitmaps b0 and b1 added");
    let r = mon
        .transaction(
            TransactionBuilder::new()
                .action(BlockDirtyBitmapAdd::new("disk", "b2"))
                .action(BlockDirtyBitmapAdd::new("disk", "b0")), // exists: fails
        )
        .await;
    println!("rolled back: {}", r.expect_err("b0 exists"));
    let nodes = mon
        .execute(QueryNamedBlockNodes::new().with_flat(true))
        .await?;
    let names: Vec<_> = nodes
        .iter()
        .flat_map(|n| n.dirty_bitmaps.iter().flatten())
        .filter_map(|b| b.name.clone())
        .collect();
    println!("bitmaps now: {names:?} (no b2)");
    Ok(())
}
