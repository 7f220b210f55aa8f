//! The client against real QEMU 10.0.2 (`qemu-storage-daemon` and
//! `qemu-system-x86_64`, each started with `qmp_client::launch` on a
//! private socket and killed at the end): device, tray, runstate and
//! block-job scenarios with their event helpers, transactions, error
//! classes, OOB, fd passing, many tasks on one connection, and how a
//! connection ends. The scenarios follow ../shared/cookbook/COOKBOOK.md.
//!
//! The device_del, tray, block-job and transaction scenarios run on
//! Debian 12's QEMU 7.2 too (unpacked into `target/qemu-7.2` by `cargo
//! xtask test`), with the same bindings; so does the version check.

mod backup;
mod collector;
mod connection;
mod fixtures;
mod jobs;
mod migration;
mod scenarios;

use std::process::Command as Process;
use std::time::Duration;

use qmp_client::launch::{Flavor, Qemu};
use qmp_client::{Client, Disconnect, Error, ErrorClass, Options, Since, TransactionBuilder};
use qmp_types::*;
use tests::{Which, launcher};

const T: Duration = Duration::from_secs(10);

async fn connect(q: &Qemu, opts: Options) -> Client {
    q.connect(opts).await.expect("connect")
}

async fn storage_daemon() -> Qemu {
    storage_daemon_of(Which::Installed).await
}

async fn storage_daemon_of(which: Which) -> Qemu {
    tests::start(launcher(which, Flavor::StorageDaemon)).await
}

async fn system(extra: &[&str]) -> Qemu {
    system_of(Which::Installed, extra).await
}

async fn system_of(which: Which, extra: &[&str]) -> Qemu {
    tests::start(launcher(which, Flavor::System).guestless().args(extra)).await
}

/// Writes 4 MiB of 0xaa at the start of qcow2 image `path`.
fn write_data(path: &std::path::Path) {
    write_data_at(path, 0);
}

/// Writes 4 MiB of 0xaa at `at` MiB into qcow2 image `path`.
fn write_data_at(path: &std::path::Path, at: u32) {
    let st = Process::new("qemu-io")
        .args([
            "-f",
            "qcow2",
            "-c",
            &format!("write -P 0xaa {at}M 4M"),
            &path.to_string_lossy(),
        ])
        .output()
        .expect("qemu-io runs");
    assert!(st.status.success(), "qemu-io: {st:?}");
}

fn qemu_img(args: &[&str]) {
    let st = Process::new("qemu-img")
        .args(args)
        .status()
        .expect("qemu-img runs");
    assert!(st.success(), "qemu-img {args:?}");
}

fn null_node(name: &str) -> BlockdevAdd {
    BlockdevAdd::new(
        BlockdevOptions::null_co(BlockdevOptionsNull::new().with_size(1i64 << 20))
            .with_node_name(name),
    )
}

/// blockdev-add of a qcow2 image over a file, as the guide writes it (the
/// block-job scenarios send it to QEMU 10.0.2 and 7.2).
fn qcow2_node(name: &str, file: &std::path::Path) -> BlockdevAdd {
    let file = BlockdevOptions::file(BlockdevOptionsFile::new(file.to_string_lossy()));
    let qcow2 = BlockdevOptions::qcow2(BlockdevOptionsQcow2::new(file)).with_node_name(name);
    BlockdevAdd::new(qcow2)
}
