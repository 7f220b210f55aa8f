//! The VM-manager module (`qmp_examples::vmm`, what kata-containers'
//! runtime-rs QMP module does) against real QEMU 10.0.2 and 7.2, with no
//! guest: every step checked through QEMU's own answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qmp_client::Error;
use qmp_examples::vmm::{self, BRIDGE, Vmm};
use qmp_types::{
    MigrationStatus, QueryCpusFast, QueryFdsets, QueryHotpluggableCpus, QueryMemoryDevices,
    QueryMemorySizeSummary, QueryMigrate, QueryNamedBlockNodes, QueryPci, QueryStatus, RunState,
};

const T: Duration = Duration::from_secs(60);

/// Whether this process may create a tap interface (root, as CI runs).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

async fn nodes(vm: &Vmm) -> Vec<String> {
    let mut n: Vec<String> = vm
        .qmp
        .execute(QueryNamedBlockNodes::new())
        .await
        .expect("nodes")
        .into_iter()
        .filter_map(|n| n.node_name)
        .collect();
    n.sort();
    n
}

async fn fdsets(vm: &Vmm) -> Vec<i64> {
    let mut s: Vec<i64> = vm
        .qmp
        .execute(QueryFdsets::new())
        .await
        .expect("fd sets")
        .into_iter()
        .map(|s| s.fdset_id)
        .collect();
    s.sort();
    s
}

/// What is on the bridge: (slot, qdev id).
async fn on_bridge(vm: &Vmm) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for bus in vm.qmp.execute(QueryPci::new()).await.expect("query-pci") {
        for dev in bus.devices {
            if dev.qdev_id == BRIDGE {
                for d in dev.pci_bridge.and_then(|b| b.devices).unwrap_or_default() {
                    out.push((d.slot, d.qdev_id));
                }
            }
        }
    }
    out
}

async fn tour(program: &Path, extra: &[String]) {
    let dir = vmm::work_dir().expect("work dir");
    // Connect while QEMU starts: the socket does not exist yet.
    let socket = dir.path().join("src.qmp");
    assert!(!socket.exists());
    let (_src_qemu, src) = Vmm::start(program, &socket, extra).await.expect("connects");

    // Migration to a file and back, into a QEMU started to receive it.
    let state = dir.path().join("vm.state");
    src.save_to(&state, T).await.expect("saved");
    assert!(std::fs::metadata(&state).expect("state file").len() > 0);
    let mut incoming = extra.to_vec();
    incoming.extend(["-incoming".to_string(), "defer".to_string()]);
    let (_qemu, vm) = Vmm::start(program, &dir.path().join("dst.qmp"), &incoming)
        .await
        .expect("destination connects");
    vm.restore_from(&state, T).await.expect("restored");
    let m = vm
        .qmp
        .execute(QueryMigrate::new())
        .await
        .expect("query-migrate");
    assert_eq!(m.status, Some(MigrationStatus::Completed));
    let status = vm.qmp.execute(QueryStatus::new()).await.expect("status");
    assert_eq!(status.status, RunState::Running);
    vm.wait_bridge_numbered(BRIDGE, T)
        .await
        .expect("bridge numbered");

    // Block devices through fd sets: a virtio-blk disk on a free slot.
    let (nodes0, sets0) = (nodes(&vm).await, fdsets(&vm).await);
    let a = vmm::image(&dir.path().join("a.img"), 16 << 20).expect("image a");
    let b = vmm::image(&dir.path().join("b.img"), 16 << 20).expect("image b");
    let blk = vm.plug_virtio_blk("disk-a", &a).await.expect("virtio-blk");
    assert_eq!(on_bridge(&vm).await, [(1, "disk-a".to_string())]);
    assert!(nodes(&vm).await.contains(&blk.node));
    assert!(fdsets(&vm).await.contains(&blk.fdset));
    // The next disk takes the next slot.
    let c = vmm::image(&dir.path().join("c.img"), 16 << 20).expect("image c");
    let blk2 = vm
        .plug_virtio_blk("disk-c", &c)
        .await
        .expect("second virtio-blk");
    assert_eq!(
        on_bridge(&vm).await,
        [(1, "disk-a".to_string()), (2, "disk-c".to_string())]
    );
    // scsi-hd; then a plug that fails at device_add (the id is taken):
    // its node and fd set are gone again.
    let scsi = vm.plug_scsi_hd("disk-b", &b).await.expect("scsi-hd");
    let (n1, s1) = (nodes(&vm).await, fdsets(&vm).await);
    let e = vm
        .plug_scsi_hd("disk-a", &b)
        .await
        .expect_err("duplicate id");
    assert!(e.to_string().contains("Duplicate device ID"), "{e}");
    assert_eq!(nodes(&vm).await, n1, "the failed plug's node was removed");
    assert_eq!(
        fdsets(&vm).await,
        s1,
        "the failed plug's fd set was removed"
    );
    // A SCSI disk goes at once: device, node, fd set.
    vm.unplug_block(&scsi, T).await.expect("scsi unplugged");
    assert!(!nodes(&vm).await.contains(&scsi.node));
    assert!(!fdsets(&vm).await.contains(&scsi.fdset));
    // A PCI disk waits for the guest, which never answers here: the wait
    // says so, and the node stays (QEMU still uses it).
    let e = vm
        .unplug_block(&blk2, Duration::from_secs(1))
        .await
        .expect_err("no guest");
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(nodes(&vm).await.contains(&blk2.node));
    assert_eq!(nodes0.len() + 2, nodes(&vm).await.len());
    assert_eq!(sets0.len() + 2, fdsets(&vm).await.len());

    // A NIC on a tap descriptor.
    if is_root() {
        let tap = vmm::open_tap().expect("a tap (root)");
        vm.plug_tap("net0", &tap).await.expect("tap NIC");
        assert!(
            on_bridge(&vm).await.iter().any(|(_, id)| id == "net0"),
            "{:?}",
            on_bridge(&vm).await
        );
    } else {
        eprintln!("not root: the tap NIC is not tried");
    }

    // A vCPU and a DIMM.
    assert_eq!(
        vm.plug_vcpu().await.expect("vCPU").as_deref(),
        Some("cpu-1")
    );
    let cpus = vm.qmp.execute(QueryCpusFast::new()).await.expect("cpus");
    assert_eq!(cpus.len(), 2);
    let slots = vm
        .qmp
        .execute(QueryHotpluggableCpus::new())
        .await
        .expect("slots");
    assert!(slots.iter().all(|c| c.qom_path.is_some()));
    assert_eq!(vm.plug_vcpu().await.expect("no room"), None);
    vm.plug_memory("dimm0", 128 << 20).await.expect("DIMM");
    let dimms = vm
        .qmp
        .execute(QueryMemoryDevices::new())
        .await
        .expect("dimms");
    assert_eq!(dimms.len(), 1);
    let size = vm
        .qmp
        .execute(QueryMemorySizeSummary::new())
        .await
        .expect("size");
    assert_eq!(size.plugged_memory, Some(128 << 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_manager_on_qemu_10_0() {
    let program = std::env::var_os("QMP_QEMU_SYSTEM_X86_64")
        .map_or_else(|| PathBuf::from("qemu-system-x86_64"), PathBuf::from);
    tour(&program, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_manager_on_qemu_7_2() {
    let root = tests::qemu72_root();
    let extra: Vec<String> = [
        "-L".to_string(),
        root.join("usr/share/qemu").display().to_string(),
        "-L".to_string(),
        "/usr/share/seabios".to_string(),
    ]
    .into();
    tour(&root.join("usr/bin/qemu-system-x86_64"), &extra).await;
}
