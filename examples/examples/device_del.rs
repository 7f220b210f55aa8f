//! Remove a device and wait for DEVICE_DELETED.
//! Without a guest, QEMU removes USB devices itself, and PCIe devices
//! on native PCIe hotplug (a `q35` machine's root ports with
//! `-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off`); ACPI PCI
//! hotplug (a `pc` machine's PCI bus) waits for the guest, which never
//! answers. So the private QEMU this starts has a USB tablet.
//!
//! `cargo run -p qmp-examples --example device_del [SOCKET DEVICE-ID]`

use std::time::Duration;

use qmp_client::launch::Launcher;
use qmp_client::{Client, Options};
use qmp_types::{DeviceDel, DeviceDeleted};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (_qemu, mon, id) = match args.as_slice() {
        [s, id] => (
            None,
            Client::connect_unix(s, Options::default()).await?,
            id.clone(),
        ),
        _ => {
            let q = Launcher::system_x86_64()
                .guestless()
                .args(["-device", "qemu-xhci,id=xhci"])
                .args(["-device", "usb-tablet,id=tab0,bus=xhci.0"])
                .start()
                .await?;
            let mon = q.connect(Options::default()).await?;
            (Some(q), mon, "tab0".to_string())
        }
    };
    let since = mon.event_cursor();
    mon.execute(DeviceDel::new(id.clone())).await?;
    match mon
        .events_of::<DeviceDeleted>(since)
        .matching(|e| e.device.as_deref() == Some(&id))
        .wait(Duration::from_secs(60))
        .await
    {
        Ok((_, e)) => println!("{id} deleted: {e:?}"),
        Err(e) if e.is_timeout() => {
            return Err(format!("device_del of {id} did not complete within 60 s").into());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
