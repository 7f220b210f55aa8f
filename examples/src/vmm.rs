//! What a container runtime's QMP module does (kata-containers'
//! runtime-rs `qmp.rs`, ported): connect while QEMU starts, hot-plug
//! block devices passed as file descriptors (virtio-blk on a free slot of
//! a PCI bridge found through `query-pci`, or scsi-hd) with rollback,
//! a network device on a tap descriptor, vCPUs and memory, and migration
//! to a file and back. Each step is one function of [`Vmm`]; the example
//! `vm_manager` runs them in order, and `examples/tests/vm_manager.rs`
//! against QEMU 10.0.2 and 7.2.
//!
//! No guest is needed: QEMU adds devices, vCPUs and DIMMs by itself.
//! Unplugging a PCI device waits for the guest (so, without one, its
//! wait ends in a timeout that the caller sees); a SCSI disk goes at once.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use qmp_client::{Client, Error, Options, Result};
use qmp_types::{
    AddFd, BlockdevAdd, BlockdevDel, BlockdevOptions, BlockdevOptionsFile, DeviceAdd, DeviceDel,
    DeviceDeleted, Getfd, MemoryBackendProperties, Migrate, MigrateIncoming, Netdev, NetdevAdd,
    NetdevDel, NetdevTapOptions, ObjectAdd, ObjectDel, ObjectOptions, ObjectOptionsBranch,
    QueryHotpluggableCpus, QueryPci, RemoveFd,
};

/// The PCI bridge hot-plugged block devices go on (`-device
/// pcie-pci-bridge,id=br0`), and the SCSI controller's bus.
pub const BRIDGE: &str = "br0";
/// The SCSI bus of the controller (`-device virtio-scsi-pci,id=scsi0`).
pub const SCSI_BUS: &str = "scsi0.0";

/// How a VM manager starts QEMU: q35 with TCG, room for one more vCPU and
/// two DIMMs, a PCI bridge and a SCSI controller, no display, QMP on
/// `socket`. It runs: the firmware numbers the bridge's bus, which
/// `query-pci` needs to list what is on it (no guest OS is needed; the
/// firmware finds nothing to boot and waits).
pub fn qemu_args(socket: &Path) -> Vec<String> {
    [
        "-machine",
        "q35,accel=tcg",
        "-m",
        "128M,slots=2,maxmem=1G",
        "-smp",
        "1,maxcpus=2",
        "-nodefaults",
        "-display",
        "none",
        "-device",
        "pcie-pci-bridge,id=br0,bus=pcie.0",
        "-device",
        "virtio-scsi-pci,id=scsi0",
    ]
    .into_iter()
    .map(String::from)
    .chain([
        "-qmp".to_string(),
        format!("unix:{},server=on,wait=off", socket.display()),
    ])
    .collect()
}

/// QEMU started by [`Vmm::start`]: killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One VM's monitor, as a VM manager holds it.
#[derive(Debug, Clone)]
pub struct Vmm {
    /// The monitor.
    pub qmp: Client,
}

/// What a hot-plugged block device holds in QEMU, for its unplug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluggedBlock {
    /// The device's id.
    pub id: String,
    /// The block node behind it.
    pub node: String,
    /// The fd set QEMU keeps the image's descriptor in.
    pub fdset: i64,
}

impl Vmm {
    /// Starts `program` with `args` (and `extra`: `-L` paths, `-incoming
    /// defer`) and connects as soon as its socket appears: no retry loop
    /// of the caller's, the connect waits for the socket within its
    /// timeout.
    pub async fn start(program: &Path, socket: &Path, extra: &[String]) -> Result<(Process, Vmm)> {
        let child = Command::new(program)
            .args(qemu_args(socket))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let process = Process(child);
        let qmp = Client::connect_unix(
            socket,
            Options::default()
                .with_wait_for_socket(true)
                .with_connect_timeout(Duration::from_secs(30)),
        )
        .await?;
        Ok((process, Vmm { qmp }))
    }

    /// Passes `image` to QEMU (`add-fd`) and adds a `file` node over it,
    /// named after `id` and the fd set; the fd set goes again if the node
    /// can't be added. Returns (node, fd set).
    async fn add_node(&self, id: &str, image: impl AsFd, read_only: bool) -> Result<(String, i64)> {
        let set = self.qmp.execute_with_fds(AddFd::new(), [image]).await?;
        let node = format!("{id}-fdset{}", set.fdset_id);
        let file = BlockdevOptionsFile::new(format!("/dev/fdset/{}", set.fdset_id));
        let add = BlockdevAdd::new(
            BlockdevOptions::file(file)
                .with_node_name(node.as_str())
                .with_read_only(read_only),
        );
        if let Err(e) = self.qmp.execute(add).await {
            let _ = self.qmp.execute(RemoveFd::new(set.fdset_id)).await;
            return Err(e);
        }
        Ok((node, set.fdset_id))
    }

    /// Undoes [`Vmm::add_node`]: the node, then the fd set.
    async fn remove_node(&self, node: &str, fdset: i64) -> Result<()> {
        self.qmp.execute(BlockdevDel::new(node)).await?;
        self.qmp.execute(RemoveFd::new(fdset)).await?;
        Ok(())
    }

    /// Waits (within `timeout`) until the firmware has numbered the bus
    /// of `bridge`: before, `query-pci` lists nothing on it. There is no
    /// event for it, so `query-pci` is asked every 20 ms.
    pub async fn wait_bridge_numbered(&self, bridge: &str, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.bridge(bridge).await?.bus.secondary != 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("the firmware to number bridge {bridge}'s bus"),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Bridge `bridge` as `query-pci` shows it.
    async fn bridge(&self, bridge: &str) -> Result<qmp_types::PciBridgeInfo> {
        for bus in self.qmp.execute(QueryPci::new()).await? {
            for dev in bus.devices {
                if dev.qdev_id == bridge
                    && let Some(b) = dev.pci_bridge
                {
                    return Ok(*b);
                }
            }
        }
        Err(Error::caller(format!(
            "no PCI bridge {bridge} in query-pci"
        )))
    }

    /// The first free slot (1 to 31) of bridge `bridge`, from `query-pci`
    /// (once the firmware numbered its bus: [`Vmm::wait_bridge_numbered`]).
    pub async fn free_bridge_slot(&self, bridge: &str) -> Result<i64> {
        let b = self.bridge(bridge).await?;
        if b.bus.secondary == 0 {
            return Err(Error::caller(format!(
                "bridge {bridge}'s bus is not numbered yet (the firmware has not run): \
                 query-pci can't say which slots are free"
            )));
        }
        let used: Vec<i64> = b.devices.iter().flatten().map(|d| d.slot).collect();
        (1..32)
            .find(|s| !used.contains(s))
            .ok_or_else(|| Error::caller(format!("bridge {bridge} has no free slot")))
    }

    /// Hot-plugs `image` as a virtio-blk disk `id` on a free slot of
    /// [`BRIDGE`]. On any failure, what was added is removed again.
    pub async fn plug_virtio_blk(&self, id: &str, image: &File) -> Result<PluggedBlock> {
        let slot = self.free_bridge_slot(BRIDGE).await?;
        self.plug(
            id,
            image,
            DeviceAdd::new("virtio-blk-pci")
                .with_bus(BRIDGE)
                .with_property("addr", format!("{slot:#x}")),
        )
        .await
    }

    /// Hot-plugs `image` as a SCSI disk `id` on [`SCSI_BUS`], with
    /// rollback as [`Vmm::plug_virtio_blk`].
    pub async fn plug_scsi_hd(&self, id: &str, image: &File) -> Result<PluggedBlock> {
        self.plug(id, image, DeviceAdd::new("scsi-hd").with_bus(SCSI_BUS))
            .await
    }

    async fn plug(&self, id: &str, image: &File, device: DeviceAdd) -> Result<PluggedBlock> {
        let (node, fdset) = self.add_node(id, image, false).await?;
        let add = device.with_id(id).with_property("drive", node.as_str());
        if let Err(e) = self.qmp.execute(add).await {
            // Rollback; the first error is the one that counts.
            let _ = self.remove_node(&node, fdset).await;
            return Err(e);
        }
        Ok(PluggedBlock {
            id: id.to_string(),
            node,
            fdset,
        })
    }

    /// Unplugs a block device: `device_del`, its `DEVICE_DELETED`
    /// (within `timeout`), then the node and the fd set. A PCI device
    /// waits for the guest; without one the wait ends in
    /// [`Error::Timeout`] and the node stays (QEMU still uses it).
    pub async fn unplug_block(&self, b: &PluggedBlock, timeout: Duration) -> Result<()> {
        let since = self.qmp.event_cursor();
        self.qmp.execute(DeviceDel::new(b.id.as_str())).await?;
        self.qmp
            .events_of::<DeviceDeleted>(since)
            .matching(|e| e.device.as_deref() == Some(b.id.as_str()))
            .wait(timeout)
            .await?;
        self.remove_node(&b.node, b.fdset).await
    }

    /// Adds a virtio-net device `id` on the tap interface `tap` (an open
    /// `/dev/net/tun` descriptor): `getfd`, `netdev_add`, `device_add`,
    /// undone in reverse when a step fails.
    pub async fn plug_tap(&self, id: &str, tap: &Tap) -> Result<()> {
        let fdname = format!("{id}-fd");
        let netdev = format!("{id}-net");
        self.qmp
            .execute_with_fds(Getfd::new(fdname.as_str()), [tap])
            .await?;
        let add = NetdevAdd::new(Netdev::new(
            netdev.as_str(),
            qmp_types::NetdevBranch::tap(NetdevTapOptions::new().with_fd(fdname.as_str())),
        ));
        if let Err(e) = self.qmp.execute(add).await {
            let _ = self
                .qmp
                .execute(qmp_types::Closefd::new(fdname.as_str()))
                .await;
            return Err(e);
        }
        let device = DeviceAdd::new("virtio-net-pci")
            .with_id(id)
            .with_bus(BRIDGE)
            .with_property(
                "addr",
                format!("{:#x}", self.free_bridge_slot(BRIDGE).await?),
            )
            .with_property("netdev", netdev.as_str())
            // No option ROM: nothing boots from it, and a QEMU without
            // the ipxe package's ROMs refuses the device otherwise.
            .with_property("romfile", "");
        if let Err(e) = self.qmp.execute(device).await {
            let _ = self.qmp.execute(NetdevDel::new(netdev.as_str())).await;
            return Err(e);
        }
        Ok(())
    }

    /// Adds one vCPU where `query-hotpluggable-cpus` has room; returns
    /// its id, or `None` when every slot has a vCPU.
    pub async fn plug_vcpu(&self) -> Result<Option<String>> {
        let cpus = self.qmp.execute(QueryHotpluggableCpus::new()).await?;
        let Some(free) = cpus.iter().find(|c| c.qom_path.is_none()) else {
            return Ok(None);
        };
        let id = format!("cpu-{}", cpus.len() - 1);
        let mut add = DeviceAdd::new(free.r#type.as_str()).with_id(id.as_str());
        let p = &free.props;
        for (name, value) in [
            ("socket-id", p.socket_id),
            ("die-id", p.die_id),
            ("core-id", p.core_id),
            ("thread-id", p.thread_id),
            ("node-id", p.node_id),
        ] {
            if let Some(v) = value {
                add = add.with_property(name, v);
            }
        }
        self.qmp.execute(add).await?;
        Ok(Some(id))
    }

    /// Adds `bytes` of memory as a DIMM `id` backed by RAM; the backend
    /// goes again if the DIMM can't be added.
    pub async fn plug_memory(&self, id: &str, bytes: u64) -> Result<()> {
        let backend = format!("{id}-mem");
        self.qmp
            .execute(ObjectAdd::new(ObjectOptions::new(
                backend.as_str(),
                ObjectOptionsBranch::memory_backend_ram(MemoryBackendProperties::new(bytes)),
            )))
            .await?;
        let dimm = DeviceAdd::new("pc-dimm")
            .with_id(id)
            .with_property("memdev", backend.as_str());
        if let Err(e) = self.qmp.execute(dimm).await {
            let _ = self.qmp.execute(ObjectDel::new(backend.as_str())).await;
            return Err(e);
        }
        Ok(())
    }

    /// Migrates the VM's state into `file` (`exec:` a `cat`, which every
    /// QEMU has), waiting until it completed.
    pub async fn save_to(&self, file: &Path, timeout: Duration) -> Result<()> {
        let uri = format!("exec:cat > '{}'", file.display());
        let m = self
            .qmp
            .start_migration(Migrate::new().with_uri(uri))
            .await?;
        m.wait(timeout).await
    }

    /// On a QEMU started with `-incoming defer`: reads the state back from
    /// `file`, waiting until it completed.
    pub async fn restore_from(&self, file: &Path, timeout: Duration) -> Result<()> {
        let uri = format!("exec:cat '{}'", file.display());
        let m = self
            .qmp
            .start_incoming(MigrateIncoming::new().with_uri(uri))
            .await?;
        m.wait(timeout).await
    }
}

/// Opens a tap interface (`IFF_TAP | IFF_NO_PI`; it goes when the
/// descriptor is closed). Needs `CAP_NET_ADMIN`.
pub fn open_tap() -> std::io::Result<Tap> {
    tun_rs::DeviceBuilder::new()
        .layer(tun_rs::Layer::L2)
        .packet_information(false)
        .build_sync()
        .map(Tap)
}

/// A tap interface's descriptor (from [`open_tap`]).
pub struct Tap(tun_rs::SyncDevice);

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tap").field(&self.0.as_fd()).finish()
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A sparse raw image of `bytes` at `path`, opened read-write.
pub fn image(path: &Path, bytes: u64) -> std::io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.set_len(bytes)?;
    Ok(f)
}

/// A folder of its own for a VM's socket, images and state file, removed
/// when dropped.
pub fn work_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("qmp-vmm-").tempdir()
}
