//! QEMU 11.1.3 (Debian 13's trixie-backports) for the live tests, on a
//! Debian 12 machine: its libraries are Debian 13's, so it runs in a
//! Debian 13 root made once with `debootstrap` under [`ROOT_DIR`], with
//! `qemu-system-x86` and `qemu-utils` installed there from
//! trixie-backports. The mirror and keyring are the ones apt already
//! uses (`/etc/apt/sources.list.d/debian.sources`).
//!
//! The tests run it through the wrapper scripts in [`BIN_DIR`]: each
//! enters a private mount namespace (`unshare --mount`), binds `/tmp`,
//! `/dev` and `/proc` into the root there, and `exec`s `chroot` and QEMU,
//! so QEMU keeps the wrapper's PID (the launcher kills it by that), sees
//! socket paths under `/tmp` as the host does, and the host never sees
//! a mount: nothing under `target/` leads back into `/tmp` or `/dev`
//! for `cargo clean` or a recursive search to walk into. Needs root (as
//! the rest of the set-up does here).
//!
//! Idempotent: a root whose QEMU answers `--version` with 11.1.3 is kept;
//! anything else there is removed and made again (in about a minute).

use std::path::Path;
use std::process::{Command, Stdio};

/// The Debian 13 root, relative to the workspace root.
pub const ROOT_DIR: &str = "target/debian13";
/// The wrapper scripts the tests run, relative to the workspace root.
pub const BIN_DIR: &str = "target/qemu-11.1/bin";
/// The version the tests want.
const VERSION: &str = "11.1.3";
/// The programs wrapped.
const PROGRAMS: [&str; 2] = ["qemu-system-x86_64", "qemu-storage-daemon"];

/// Whether `program` in `root` runs and is [`VERSION`].
fn works(root: &Path, program: &str) -> bool {
    Command::new("chroot")
        .arg(root)
        .arg(format!("/usr/bin/{program}"))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(VERSION))
}

/// Whether anything is mounted at or below `root` in this namespace (a
/// root with mounts is never removed: that would reach into them).
fn has_mounts(root: &Path) -> bool {
    let Ok(canon) = root.canonicalize() else {
        return false;
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = canon.to_string_lossy().to_string();
    mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|m| m == prefix || m.starts_with(&format!("{prefix}/")))
}

fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    let st = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("can't run {what}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({st})"))
    }
}

/// Makes the Debian 13 root with QEMU 11.1.3 unless it is there, and
/// writes the wrappers. `mirror` and `keyring`: apt's Debian mirror;
/// `as_root`: whether this runs as root (it must, to make the root).
pub fn ensure(
    root_dir: &Path,
    mirror: &str,
    keyring: Option<&str>,
    as_root: bool,
) -> Result<(), String> {
    let root = root_dir.join(ROOT_DIR);
    if !PROGRAMS.iter().all(|p| works(&root, p)) {
        if !as_root {
            return Err(format!(
                "QEMU {VERSION} runs in a Debian 13 root (debootstrap, chroot, unshare): run `cargo xtask test` as root"
            ));
        }
        if has_mounts(&root) {
            return Err(format!(
                "{} has mounts below it; unmount them before it is made again",
                root.display()
            ));
        }
        eprintln!(
            "xtask test: making a Debian 13 root with QEMU {VERSION} in {ROOT_DIR} (debootstrap)"
        );
        let _ = std::fs::remove_dir_all(&root);
        let mut boot = Command::new("debootstrap");
        boot.arg("--variant=minbase");
        if let Some(k) = keyring {
            boot.arg(format!("--keyring={k}"));
        }
        boot.arg("trixie").arg(&root).arg(mirror);
        run("debootstrap", &mut boot)?;
        let list = format!("deb {mirror} trixie-backports main\n");
        let path = root.join("etc/apt/sources.list.d/trixie-backports.list");
        std::fs::write(&path, list).map_err(|e| format!("{}: {e}", path.display()))?;
        run(
            "apt-get update (Debian 13 root)",
            Command::new("chroot")
                .arg(&root)
                .args(["apt-get", "update", "-qq"]),
        )?;
        run(
            "apt-get install qemu (Debian 13 root)",
            Command::new("chroot")
                .arg(&root)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args([
                    "apt-get",
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "-t",
                    "trixie-backports",
                    "qemu-system-x86",
                    "qemu-utils",
                ]),
        )?;
        // The package cache is not needed again.
        let _ = Command::new("chroot")
            .arg(&root)
            .args(["apt-get", "clean"])
            .status();
        if let Some(p) = PROGRAMS.iter().find(|p| !works(&root, p)) {
            return Err(format!("{p} in {ROOT_DIR} is not QEMU {VERSION}"));
        }
    }
    write_wrappers(root_dir, &root)
}

/// The wrapper scripts (see the module doc).
fn write_wrappers(root_dir: &Path, root: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let bin = root_dir.join(BIN_DIR);
    std::fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    if root.to_string_lossy().contains('\'') {
        return Err(format!(
            "{}: a path with a quote can't go into the wrappers",
            root.display()
        ));
    }
    for p in PROGRAMS {
        let script = format!(
            "#!/bin/sh\n\
             # QEMU {VERSION} from the Debian 13 root, written by `cargo xtask test`.\n\
             exec unshare --mount --propagation private sh -c 'mount --bind /tmp \"$0/tmp\" && mount --bind /dev \"$0/dev\" && mount --bind /proc \"$0/proc\" && exec chroot \"$0\" /usr/bin/{p} \"$@\"' '{}' \"$@\"\n",
            root.display()
        );
        let path = bin.join(p);
        std::fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
