//! Incremental backup: a full backup started together with a persistent
//! dirty bitmap, then an incremental backup of what changed since, onto
//! an image backed by the full one. Runs on a private
//! `qemu-storage-daemon` with images made by `qemu-img` in its directory.
//!
//! `cargo run -p qmp-examples --example backup`

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use qmp_client::Options;
use qmp_client::launch::Launcher;
use qmp_types::{
    BlockdevAdd, BlockdevDel, BlockdevOptions, BlockdevOptionsFile, BlockdevOptionsQcow2,
};

fn qemu_img(args: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let st = Command::new("qemu-img").args(args).status()?;
    if !st.success() {
        return Err(format!("qemu-img {args:?} failed").into());
    }
    Ok(())
}

fn qcow2(name: &str, file: &Path) -> BlockdevAdd {
    let file = BlockdevOptions::file(BlockdevOptionsFile::new(file.to_string_lossy()));
    BlockdevAdd::new(BlockdevOptions::qcow2(BlockdevOptionsQcow2::new(file)).with_node_name(name))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let qsd = Launcher::storage_daemon().start().await?;
    let dir = qsd.dir();
    let (src, full, inc) = (
        dir.join("src.qcow2"),
        dir.join("full.qcow2"),
        dir.join("inc.qcow2"),
    );
    for f in [&src, &full] {
        qemu_img(&["create", "-q", "-f", "qcow2", &f.to_string_lossy(), "64M"])?;
    }
    let qmp = qsd.connect(Options::default()).await?;
    qmp.execute(qcow2("src", &src)).await?;
    qmp.execute(qcow2("full", &full)).await?;
    let wait = Duration::from_secs(60);

    // The full backup and the bitmap that records writes from then on.
    qmp.start_full_backup("src", "full", "daily", "full0")
        .await?
        .wait(wait)
        .await?;
    println!("full backup done; bitmaps: {:?}", qmp.bitmaps().await?);

    // ... the guest writes; then the incremental, onto an image whose
    // backing file is the full backup (released by QEMU first).
    qmp.execute(BlockdevDel::new("full")).await?;
    let backing = full.to_string_lossy();
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        &backing,
        "-F",
        "qcow2",
        &inc.to_string_lossy(),
    ])?;
    qmp.execute(qcow2("inc", &inc)).await?;
    qmp.start_incremental_backup("src", "inc", "daily", "inc0")
        .await?
        .wait(wait)
        .await?;
    println!(
        "incremental backup done; bitmaps: {:?}",
        qmp.bitmaps().await?
    );
    Ok(())
}
