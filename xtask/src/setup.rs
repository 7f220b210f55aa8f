//! `cargo xtask test`: install what the test suite needs when it is
//! missing, then run the whole suite.
//!
//! What the suite needs from the system: `qemu-storage-daemon` and
//! `qemu-img` (package `qemu-utils`), `qemu-system-x86_64` 10.0.2
//! (package `qemu-system-x86` from Debian's bookworm-backports suite) and
//! `qemu-ga` 10.0.2 (package `qemu-guest-agent`, from the same suite).
//! Installing runs `apt-get` as root, or through `sudo -n` when that works
//! without a password; otherwise this prints the exact commands to run and
//! stops before any test. Every step is idempotent: a machine that has
//! everything runs the tests at once.
//!
//! Debian 12's own QEMU 7.2 runs beside it without being installed: its
//! packages (`qemu-system-x86`, `qemu-system-common`, `qemu-system-data`,
//! `qemu-utils`) are fetched with `apt-get download` and unpacked with
//! `dpkg -x` into `target/qemu-7.2/` ([`QEMU72_DIR`]) once; the live tests
//! run `qemu-system-x86_64` and `qemu-storage-daemon` from there (with
//! `-L target/qemu-7.2/usr/share/qemu -L /usr/share/seabios`).
//!
//! QEMU 11.1.3 runs from a Debian 13 root (see [`crate::qemu111`]).
//!
//! QEMU's Python client, qemu.qmp (the proxy's tests connect it beside
//! this project's client), is installed with `python3 -m pip` when
//! `python3` can't import it.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

/// The `qemu-system-x86_64` version the live tests are written against.
const SYSTEM_VERSION: &str = "10.0.2";
/// Where apt's sources live, and the backports file this writes.
const DEBIAN_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";

/// Where QEMU 7.2 is unpacked, relative to the workspace root (the tests
/// look there too).
pub const QEMU72_DIR: &str = "target/qemu-7.2";
/// The packages unpacked there.
const QEMU72_PACKAGES: [&str; 4] = [
    "qemu-system-x86",
    "qemu-system-common",
    "qemu-system-data",
    "qemu-utils",
];

/// The newest `1:7.2` version apt knows of `package`.
fn debian12_version(package: &str) -> Result<String, String> {
    let out = Command::new("apt-cache")
        .args(["policy", package])
        .output()
        .map_err(|e| format!("can't run apt-cache: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| l.trim_start_matches([' ', '*']).trim())
        .filter_map(|l| l.split_whitespace().next())
        .find(|v| v.starts_with("1:7.2"))
        .map(String::from)
        .ok_or_else(|| format!("apt knows no 7.2 version of {package} (is bookworm in apt's sources, and `apt-get update` done?)"))
}

/// Fetches and unpacks Debian 12's QEMU 7.2 into [`QEMU72_DIR`] unless it
/// is there (its `qemu-system-x86_64` and `qemu-storage-daemon` run).
pub fn ensure_qemu72(root: &Path) -> Result<(), String> {
    let dir = root.join(QEMU72_DIR);
    let works = |p: &str| {
        Command::new(dir.join("usr/bin").join(p))
            .arg("--version")
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains(" 7.2.")
            })
    };
    if works("qemu-system-x86_64") && works("qemu-storage-daemon") {
        return Ok(());
    }
    let debs = root.join("target/qemu-7.2-debs");
    let _ = std::fs::remove_dir_all(&debs);
    std::fs::create_dir_all(&debs).map_err(|e| format!("{}: {e}", debs.display()))?;
    let mut specs = Vec::new();
    for p in QEMU72_PACKAGES {
        specs.push(format!("{p}={}", debian12_version(p)?));
    }
    eprintln!(
        "xtask test: fetching QEMU 7.2 ({}) into {QEMU72_DIR}",
        specs.join(" ")
    );
    let status = Command::new("apt-get")
        .arg("download")
        .args(&specs)
        .current_dir(&debs)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("can't run apt-get download: {e}"))?;
    if !status.success() {
        return Err(format!(
            "apt-get download {} failed ({status})",
            specs.join(" ")
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let entries = std::fs::read_dir(&debs).map_err(|e| format!("{}: {e}", debs.display()))?;
    for e in entries.filter_map(|e| e.ok()) {
        let status = Command::new("dpkg")
            .arg("-x")
            .arg(e.path())
            .arg(&dir)
            .status()
            .map_err(|e| format!("can't run dpkg -x: {e}"))?;
        if !status.success() {
            return Err(format!("dpkg -x {} failed ({status})", e.path().display()));
        }
    }
    let _ = std::fs::remove_dir_all(&debs);
    if !(works("qemu-system-x86_64") && works("qemu-storage-daemon")) {
        return Err(format!("QEMU 7.2 unpacked into {QEMU72_DIR} does not run"));
    }
    Ok(())
}

/// How commands that need root are run.
#[derive(Debug, Clone, Copy)]
enum Privilege {
    Root,
    Sudo,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn privilege() -> Option<Privilege> {
    if is_root() {
        return Some(Privilege::Root);
    }
    let sudo_ok = Command::new("sudo")
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    sudo_ok.then_some(Privilege::Sudo)
}

/// The first line a program prints for `--version`, if it runs.
fn version_of(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    })
}

/// The mirror and keyring of the first deb822 stanza whose `Suites`
/// names plain `bookworm`.
fn bookworm_mirror(sources: &str) -> Option<(String, Option<String>)> {
    for stanza in sources.split("\n\n") {
        let mut uris = None;
        let mut signed = None;
        let mut bookworm = false;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("URIs:") {
                uris = v.split_whitespace().next().map(String::from);
            } else if let Some(v) = line.strip_prefix("Signed-By:") {
                signed = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("Suites:") {
                bookworm |= v.split_whitespace().any(|s| s == "bookworm");
            }
        }
        if bookworm && let Some(u) = uris {
            return Some((u, signed.filter(|s| !s.is_empty())));
        }
    }
    None
}

/// The backports stanza, from the mirror and keyring apt already uses.
fn backports_stanza() -> Result<String, String> {
    let sources = std::fs::read_to_string(DEBIAN_SOURCES)
        .map_err(|e| format!("can't read {DEBIAN_SOURCES} to find the Debian mirror: {e}"))?;
    let (uris, signed) = bookworm_mirror(&sources)
        .ok_or_else(|| format!("{DEBIAN_SOURCES} names no mirror for the bookworm suite"))?;
    let mut s = format!("Types: deb\nURIs: {uris}\nSuites: bookworm-backports\nComponents: main\n");
    if let Some(k) = signed {
        s.push_str(&format!("Signed-By: {k}\n"));
    }
    Ok(s)
}

/// One step of the set-up: a shell command line run as root.
struct Step {
    why: String,
    script: String,
}

fn plan() -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let apt_install =
        "env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends";
    if version_of("qemu-storage-daemon").is_none() || version_of("qemu-img").is_none() {
        steps.push(Step {
            why: "qemu-storage-daemon and qemu-img are missing (package qemu-utils)".into(),
            script: format!("apt-get update -qq && {apt_install} qemu-utils"),
        });
    }
    let debootstrap = Command::new("debootstrap").arg("--version").output();
    if !debootstrap.is_ok_and(|o| o.status.success()) {
        steps.push(Step {
            why: "debootstrap is missing (QEMU 11.1.3 runs in a Debian 13 root it makes)".into(),
            script: format!("apt-get update -qq && {apt_install} debootstrap"),
        });
    }
    let tmux = Command::new("tmux").arg("-V").output();
    if !tmux.is_ok_and(|o| o.status.success()) {
        steps.push(Step {
            why: "tmux is missing (the `qmp shell` tests drive it in a terminal)".into(),
            script: format!("apt-get update -qq && {apt_install} tmux"),
        });
    }
    let prometheus = Command::new("prometheus").arg("--version").output();
    if !prometheus.is_ok_and(|o| o.status.success()) {
        steps.push(Step {
            why: "prometheus is missing (the `qmp exporter` test scrapes with a real one)".into(),
            script: format!("apt-get update -qq && {apt_install} prometheus"),
        });
    }
    let mut backports = Vec::new();
    for (program, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("qemu-ga", "qemu-guest-agent"),
    ] {
        let have = version_of(program).unwrap_or_default();
        if !have.contains(SYSTEM_VERSION) {
            backports.push(if have.is_empty() {
                format!("{program} {SYSTEM_VERSION} is missing (package {package} from bookworm-backports)")
            } else {
                format!("{program} is '{have}', the tests want {SYSTEM_VERSION} (package {package} from bookworm-backports)")
            });
        }
    }
    if !backports.is_empty() {
        let mut script = String::new();
        if !Path::new(BACKPORTS_SOURCES).exists() {
            script.push_str(&format!(
                "printf '%s' '{}' > {BACKPORTS_SOURCES} && ",
                backports_stanza()?
            ));
        }
        script.push_str(&format!(
            "apt-get update -qq && {apt_install} -t bookworm-backports qemu-system-x86 qemu-guest-agent"
        ));
        steps.push(Step {
            why: backports.join("; "),
            script,
        });
    }
    Ok(steps)
}

fn run_as_root(p: Privilege, script: &str) -> Result<(), String> {
    let mut cmd = match p {
        Privilege::Root => Command::new("sh"),
        Privilege::Sudo => {
            let mut c = Command::new("sudo");
            c.args(["-n", "sh"]);
            c
        }
    };
    let status = cmd
        .args(["-c", script])
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("can't run the set-up: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("set-up step failed ({status}): {script}"))
    }
}

/// Installs what is missing; `Err` says what to do by hand.
pub fn ensure() -> Result<(), String> {
    let steps = plan()?;
    if steps.is_empty() {
        return Ok(());
    }
    let Some(p) = privilege() else {
        let mut msg = String::from(
            "the tests need QEMU, and this user can't install it (not root, no password-less sudo).\nRun these as root, then run `cargo xtask test` again:\n",
        );
        for s in &steps {
            msg.push_str(&format!("  # {}\n  {}\n", s.why, s.script));
        }
        return Err(msg);
    };
    for s in &steps {
        eprintln!("xtask test: {}; installing", s.why);
        run_as_root(p, &s.script)?;
    }
    for p in ["qemu-system-x86_64", "qemu-ga"] {
        if let Some(v) = version_of(p) {
            eprintln!("xtask test: {v}");
        }
    }
    let left = plan()?;
    if let Some(s) = left.first() {
        return Err(format!("still missing after installing: {}", s.why));
    }
    Ok(())
}

/// Installs qemu.qmp with pip when `python3` can't import it.
fn ensure_qemu_qmp() -> Result<(), String> {
    let has = || {
        Command::new("python3")
            .args(["-c", "import qemu.qmp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has() {
        return Ok(());
    }
    eprintln!("xtask test: qemu.qmp (QEMU's Python client) is missing; installing it with pip");
    let st = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "qemu.qmp"])
        .status()
        .map_err(|e| format!("can't run python3 -m pip: {e}"))?;
    if !st.success() || !has() {
        return Err(format!(
            "`python3 -m pip install qemu.qmp` failed ({st}); the proxy's tests need it"
        ));
    }
    Ok(())
}

/// `cargo xtask test [ARGS...]`: set-up, then `cargo test --workspace
/// --locked ARGS...`.
pub fn test(args: &[String], root: &Path) -> Result<ExitCode, String> {
    ensure()?;
    ensure_qemu72(root)?;
    let sources = std::fs::read_to_string(DEBIAN_SOURCES)
        .map_err(|e| format!("can't read {DEBIAN_SOURCES} to find the Debian mirror: {e}"))?;
    let (mirror, keyring) = bookworm_mirror(&sources)
        .ok_or_else(|| format!("{DEBIAN_SOURCES} names no mirror for the bookworm suite"))?;
    crate::qemu111::ensure(root, &mirror, keyring.as_deref(), is_root())?;
    ensure_qemu_qmp()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["test", "--workspace", "--locked"])
        .args(args)
        .status()
        .map_err(|e| format!("can't run cargo test: {e}"))?;
    if !status.success() {
        return Ok(ExitCode::FAILURE);
    }
    // The hand-written crates' API files are up to date.
    crate::public_api::run(&["--check".to_string()], root)
}

#[cfg(test)]
mod tests {
    use super::bookworm_mirror;

    #[test]
    fn finds_the_bookworm_stanza_not_security() {
        let src = "Types: deb\nURIs: http://m.example/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /k.gpg\n\nTypes: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/k.gpg\n";
        assert_eq!(
            bookworm_mirror(src),
            Some((
                "http://m.example/debian".into(),
                Some("/usr/share/keyrings/k.gpg".into())
            ))
        );
        assert_eq!(
            bookworm_mirror("Types: deb\nSuites: trixie\nURIs: x\n"),
            None
        );
    }
}
