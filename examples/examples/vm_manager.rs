//! A container runtime's QMP module at work (`qmp_examples::vmm`): start
//! QEMU and connect while it starts, save the VM to a file and restore it
//! in a second QEMU, then hot-plug disks passed as descriptors (virtio-blk
//! on a free bridge slot, scsi-hd), undo a plug that fails, unplug the
//! SCSI disk, add a NIC on a tap, a vCPU and a DIMM.
//!
//! `cargo run -p qmp-examples --example vm_manager` (QEMU from
//! `QMP_QEMU_SYSTEM_X86_64`, else `qemu-system-x86_64` on `PATH`; the tap
//! needs `CAP_NET_ADMIN`, and is skipped without it).

use std::path::PathBuf;
use std::time::Duration;

use qmp_client::Error;
use qmp_examples::vmm::{self, Vmm};
use qmp_types::{QueryHotpluggableCpus, QueryMemoryDevices, QueryStatus};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let program = std::env::var_os("QMP_QEMU_SYSTEM_X86_64")
        .map_or_else(|| PathBuf::from("qemu-system-x86_64"), PathBuf::from);
    let dir = vmm::work_dir()?;
    let t = Duration::from_secs(60);

    // Started and connected as soon as its socket appears.
    let (_src_qemu, src) = Vmm::start(&program, &dir.path().join("src.qmp"), &[]).await?;
    println!("connected: QEMU {}", src.qmp.qemu_version());

    // Migration to a file, then into a second QEMU started to receive it.
    let state = dir.path().join("vm.state");
    src.save_to(&state, t).await?;
    println!("saved to {}", state.display());
    let incoming = ["-incoming".to_string(), "defer".to_string()];
    let (_qemu, vm) = Vmm::start(&program, &dir.path().join("dst.qmp"), &incoming).await?;
    vm.restore_from(&state, t).await?;
    let status = vm.qmp.execute(QueryStatus::new()).await?;
    println!("restored: {}", status.status);
    vm.wait_bridge_numbered(vmm::BRIDGE, t).await?;

    // Disks, passed as descriptors.
    let a = vmm::image(&dir.path().join("a.img"), 64 << 20)?;
    let b = vmm::image(&dir.path().join("b.img"), 64 << 20)?;
    let blk = vm.plug_virtio_blk("disk-a", &a).await?;
    println!(
        "plugged {} (node {}, fd set {})",
        blk.id, blk.node, blk.fdset
    );
    let scsi = vm.plug_scsi_hd("disk-b", &b).await?;
    println!("plugged {}", scsi.id);
    // The same id again: device_add fails, and the node and fd set it
    // needed are removed again.
    match vm.plug_scsi_hd("disk-a", &b).await {
        Err(e) => println!("refused, rolled back: {e}"),
        Ok(_) => return Err("a duplicate id was accepted".into()),
    }
    vm.unplug_block(&scsi, t).await?;
    println!("unplugged {}", scsi.id);

    // A NIC on a tap descriptor.
    match vmm::open_tap() {
        Ok(tap) => {
            vm.plug_tap("net0", &tap).await?;
            println!("plugged net0 on a tap");
        }
        Err(e) => println!("no tap ({e}): NIC skipped"),
    }

    // A vCPU and a DIMM.
    let cpu = vm.plug_vcpu().await?;
    println!("vCPU: {cpu:?}");
    vm.plug_memory("dimm0", 128 << 20).await?;
    let cpus = vm.qmp.execute(QueryHotpluggableCpus::new()).await?;
    let dimms = vm.qmp.execute(QueryMemoryDevices::new()).await?;
    println!(
        "{} of {} vCPU slots used, {} DIMM(s)",
        cpus.iter().filter(|c| c.qom_path.is_some()).count(),
        cpus.len(),
        dimms.len()
    );
    // A PCI disk waits for the guest to let go; there is none here.
    match vm.unplug_block(&blk, Duration::from_secs(1)).await {
        Err(Error::Timeout { .. }) => println!("{}: the guest must release it", blk.id),
        other => println!("{}: {other:?}", blk.id),
    }
    Ok(())
}
