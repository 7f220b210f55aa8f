//! A VM manager's disk code, the one the testing guide
//! (`qmp_client::testing::guide`) tests: hot-plug a qcow2 disk, unplug
//! it, back it up. `tests/disks.rs` runs the guide's tests against the
//! double and the same functions against real QEMU 10.0.2 and 7.2.

// The guide shows this file from here to its end (tidy checks they agree).
// guide: begin
use std::time::Duration;

use qmp_client::Client;
use qmp_types::*;

/// Adds image `image` as node `{id}-node` and a `driver` device `id` on
/// it (`virtio-blk-pci`, `usb-storage`); the node goes again when QEMU
/// refuses the device.
pub async fn hot_plug_disk(
    qmp: &Client,
    id: &str,
    image: &str,
    driver: &str,
) -> qmp_client::Result<()> {
    let node = format!("{id}-node");
    let file = BlockdevOptions::file(BlockdevOptionsFile::new(image));
    let qcow2 = BlockdevOptions::qcow2(BlockdevOptionsQcow2::new(file)).with_node_name(&*node);
    qmp.execute(BlockdevAdd::new(qcow2)).await?;
    let device = DeviceAdd::new(driver)
        .with_id(id)
        .with_property("drive", &*node);
    if let Err(e) = qmp.execute(device).await {
        qmp.execute(BlockdevDel::new(node)).await?;
        return Err(e);
    }
    Ok(())
}

/// Removes device `id` (`device_del`, then its `DEVICE_DELETED`) and its
/// node.
pub async fn unplug_disk(qmp: &Client, id: &str, timeout: Duration) -> qmp_client::Result<()> {
    qmp.unplug(id, timeout).await?;
    qmp.execute(BlockdevDel::new(format!("{id}-node"))).await?;
    Ok(())
}

/// Copies disk `id` to node `target` (job `{id}-backup`) and waits for
/// the job's end: QEMU's error when it fails.
pub async fn back_up_disk(
    qmp: &Client,
    id: &str,
    target: &str,
    timeout: Duration,
) -> qmp_client::Result<()> {
    let backup = BlockdevBackup::new(format!("{id}-node"), MirrorSyncMode::Full, target)
        .with_job_id(format!("{id}-backup"));
    let job = qmp.start_job(backup).await?;
    job.wait(timeout).await
}
