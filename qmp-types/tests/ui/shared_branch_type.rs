//! `BlockdevOptionsFile` serves three branches of `BlockdevOptions`
//! (`file`, `host_device`, `host_cdrom`), so nothing converts it into a
//! `BlockdevRef` by itself: rustc names what does (`BlockdevOptions`).
use qmp_types::*;

fn main() {
    let file = BlockdevOptionsFile::new("disk.qcow2");
    let _ = BlockdevOptionsQcow2::new(file);
}
