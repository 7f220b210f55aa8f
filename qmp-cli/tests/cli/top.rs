//! `qmp top` used as a person uses it, in an 80x24 terminal (tmux; keys
//! by `send-keys`, the screen by `capture-pane`): a directory with a VM
//! whose disk is busy and which migrates, and a storage daemon running a
//! job; sorting, the detail view, a VM that appears, one that dies, and
//! quitting with the terminal given back.

use super::exporter::{busy_daemon, busy_vm, stuck_migration};
use super::*;
use tests::tmux::Tmux;

/// The table's row of `name` on `screen`.
fn row<'s>(screen: &'s str, name: &str) -> Option<&'s str> {
    screen
        .lines()
        .find(|l| l.trim_start_matches('│').split_whitespace().next() == Some(name))
}

#[test]
fn top_lists_sorts_details_follows_vms_and_quits() {
    let dir = TempDir::new("qmp-top").expect("temp dir");
    let watch = dir.path().join("vms");
    std::fs::create_dir(&watch).expect("dir");
    let vm = busy_vm("vm-a");
    let _migration = stuck_migration(&vm);
    let qsd = busy_daemon();
    std::os::unix::fs::symlink(vm.two.qemu.socket(), watch.join("a.sock")).expect("link");
    std::os::unix::fs::symlink(qsd.qemu.socket(), watch.join("b.sock")).expect("link");

    let line = format!(
        "{QMP} top --interval-ms 250 {}; echo EXITED rc=$?; sleep 60",
        watch.display()
    );
    let t = Tmux::start(dir.path(), 80, 24, &line);
    let s = t.wait_until("both VMs, the migration and the job", |s| {
        row(s, "vm-a").is_some_and(|r| r.contains("running") && r.contains("active"))
            && row(s, "b").is_some_and(|r| r.contains("backup"))
    });
    assert!(s.contains("qmp top: 2 VMs"), "{s}");
    // Every line fits the 80 columns.
    assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");

    // Sorted by IOPS (two columns on), the busy VM first.
    t.keys(&[">", ">"]);
    let s = t.wait_until("sorted by IOPS", |s| s.contains("IOPSv"));
    let names: Vec<&str> = s
        .lines()
        .skip(2)
        .filter_map(|l| l.trim_start_matches('│').split_whitespace().next())
        .collect();
    assert_eq!(names.first(), Some(&"vm-a"), "{s}");
    // Reversed.
    t.keys(&["r"]);
    t.wait_until("reversed", |s| s.contains("IOPS^"));
    t.keys(&["r"]);

    // The busy VM's detail: sparklines' titles, the migration's bar, its
    // vCPU thread.
    t.keys(&["Home", "Enter"]);
    let s = t.wait_until("vm-a's detail", |s| {
        s.contains("vm-a  running") && s.contains("migration active") && s.contains("IOPS  read")
    });
    assert!(s.contains("vCPU:thread 0:"), "{s}");
    // Its disk, with its reads and writes, and their latency.
    assert!(s.contains("disks drive0 "), "{s}");
    assert!(s.contains(" ms ") && s.contains("latency "), "{s}");
    t.keys(&["Escape"]);
    t.wait_until("the list again", |s| s.contains("qmp top: 2 VMs"));
    t.keys(&["h"]);
    t.wait_for("reverse the order");
    t.keys(&["Escape"]);

    // A VM appears, then dies (its socket left behind).
    let c = start(Which::Installed, Flavor::System);
    std::os::unix::fs::symlink(c.socket(), watch.join("c.sock")).expect("link");
    t.wait_until("the new VM", |s| {
        s.contains("qmp top: 3 VMs") && row(s, "c").is_some_and(|r| r.contains("running"))
    });
    let st = Command::new("kill")
        .args(["-KILL", &c.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(st.success());
    t.wait_until("the dead VM marked", |s| {
        row(s, "c").is_some_and(|r| r.contains("gone"))
    });

    // q quits: the shell's line comes back, the table is gone.
    t.keys(&["q"]);
    let s = t.wait_until("the exit", |s| s.contains("EXITED rc=0"));
    assert!(
        !s.contains("qmp top:"),
        "the screen was not given back:\n{s}"
    );
}
