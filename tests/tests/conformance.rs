//! Live conformance: each real QEMU's `query-qmp-schema` against the
//! merged model the bindings are generated from (`qapi_gen::conform`),
//! for `qemu-system-x86_64` and `qemu-storage-daemon` of QEMU 10.0.2 and
//! Debian 12's 7.2: every difference must be explained (an `if` this build
//! leaves out, or, for the storage daemon, a part of the schema it does
//! not include); none may be unexplained. QEMU 11.1.3, newer than the
//! bindings, is compared with the newest covered version: its differences
//! are explained by the versions, and listed as what a regen would add.

use std::path::{Path, PathBuf};

use qapi_gen::Schema;
use qapi_gen::conform::{Options, Side, conform, introspect, version_label};
use qapi_gen::manifest::{Manifest, Part};
use qmp_client::launch::Flavor;
use tests::{Which, launcher};

fn manifest() -> Manifest {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    Manifest::load(dir).expect("manifest")
}

fn check(which: Which, flavor: Flavor) {
    let m = manifest();
    let model = m.load_merged(Part::Qmp).expect("merged model");
    let scope: Option<Schema> = (flavor == Flavor::StorageDaemon).then(|| {
        m.load_merged(Part::StorageDaemon)
            .expect("storage daemon model")
    });
    let mut l = launcher(which, flavor);
    if flavor == Flavor::System {
        l = l.guestless();
    }
    let qemu = l.start_blocking().expect("start QEMU");
    let (version, intro) = introspect(qemu.socket()).expect("query-qmp-schema");
    let label = version_label(&model, &version).expect("a covered version");
    let report = conform(
        &model,
        &intro,
        Options {
            version: Some(label),
            scope: scope.as_ref(),
        },
    )
    .expect("compares");
    eprintln!("QEMU {version} ({flavor:?}): {report}");
    let unexplained: Vec<String> = report.unexplained().map(ToString::to_string).collect();
    assert!(
        unexplained.is_empty(),
        "QEMU {version} {flavor:?}: {} unexplained differences:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    // The comparison reached deep: commands, events and many types.
    let min_commands = if flavor == Flavor::System { 200 } else { 70 };
    assert!(report.commands_matched >= min_commands, "{report}");
    assert!(report.events_matched >= 10, "{report}");
    assert!(report.types_compared >= 400, "{report}");
    // Nothing the server has is missing from the bindings.
    assert!(
        !report
            .differences
            .iter()
            .any(|d| d.side == Side::ServerOnly),
        "{report}"
    );
}

#[test]
fn system_emulator_10_0_conforms() {
    check(Which::Installed, Flavor::System);
}

#[test]
fn storage_daemon_10_0_conforms() {
    check(Which::Installed, Flavor::StorageDaemon);
}

#[test]
fn system_emulator_7_2_conforms() {
    check(Which::Qemu72, Flavor::System);
}

#[test]
fn storage_daemon_7_2_conforms() {
    check(Which::Qemu72, Flavor::StorageDaemon);
}

/// A QEMU newer than the manifest: compared with its newest version.
fn check_newer(flavor: Flavor) {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    let mut l = launcher(Which::Qemu111, flavor);
    if flavor == Flavor::System {
        l = l.guestless();
    }
    let qemu = l.start_blocking().expect("start QEMU 11.1.3");
    let (version, intro) = introspect(qemu.socket()).expect("query-qmp-schema");
    assert_eq!(version, "11.1.3");
    let r = qapi_gen::conform::conform_manifest(
        &dir,
        &intro,
        Some(&version),
        flavor == Flavor::StorageDaemon,
    )
    .expect("compares");
    eprintln!("QEMU {version} ({flavor:?}): {}", r.report);
    assert!(r.note.is_some(), "newer than the manifest says so");
    let unexplained: Vec<String> = r.report.unexplained().map(ToString::to_string).collect();
    assert!(unexplained.is_empty(), "{}", unexplained.join("\n"));
    assert!(!r.report.differences.is_empty(), "11.1 differs from 10.2");
    let todo = r.todo();
    // What 11.1 added, as a regen with its schema would add it.
    assert!(todo.contains("iothread"), "{todo}");
    if flavor == Flavor::System {
        assert!(
            todo.contains("failing"),
            "MigrationStatus `failing`: {todo}"
        );
    }
}

#[test]
fn system_emulator_11_1_conforms_as_newer() {
    check_newer(Flavor::System);
}

#[test]
fn storage_daemon_11_1_conforms_as_newer() {
    check_newer(Flavor::StorageDaemon);
}

#[test]
fn a_difference_is_found_when_there_is_one() {
    // QEMU 7.2's server checked as if it were 10.0.2: what 10.0 added is
    // missing on the server, unexplained.
    let m = manifest();
    let model = m.load_merged(Part::Qmp).expect("merged model");
    let qemu = launcher(Which::Qemu72, Flavor::System)
        .guestless()
        .start_blocking()
        .expect("start QEMU 7.2");
    let (_, intro) = introspect(qemu.socket()).expect("query-qmp-schema");
    let report = conform(
        &model,
        &intro,
        Options {
            version: Some("10.0.2"),
            scope: None,
        },
    )
    .expect("compares");
    let unexplained: Vec<String> = report.unexplained().map(ToString::to_string).collect();
    assert!(
        unexplained
            .iter()
            .any(|d| d == "only the bindings have command `query-cryptodev`"),
        "{unexplained:?}"
    );
    assert!(
        unexplained
            .iter()
            .any(|d| d == "only the server has command `x-query-profile`"),
        "{unexplained:?}"
    );
}
