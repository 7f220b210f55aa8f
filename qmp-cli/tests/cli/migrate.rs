//! `qmp migrate` between two guestless QEMU 10.0.2 processes: the
//! destination's `migrate --incoming` and the source's `migrate` both end
//! with `migration: completed`; a destination that is gone fails the
//! source's with exit 1 and QEMU's text.

use super::*;

#[test]
fn qmp_migrate_moves_a_machine_and_reports_failure() {
    let src = start(Which::Installed, Flavor::System);
    let l = launcher(Which::Installed, Flavor::System)
        .start_timeout(Duration::from_secs(60))
        .guestless()
        .args(["-incoming", "defer"]);
    let dst = tests::start_blocking(l);
    let uri = format!("unix:{}", dst.dir().join("mig.sock").display());
    let incoming = {
        let (sock, uri) = (dst.socket().to_path_buf(), uri.clone());
        std::thread::spawn(move || run(&sock, &["migrate", "--incoming", &uri]))
    };
    // The destination listens once its migrate-incoming is in.
    let sock = dst.dir().join("mig.sock");
    let until = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(Instant::now() < until, "the destination never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (code, out, err) = run(src.socket(), &["migrate", &uri]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out.trim(), "migration: completed");
    let (code, out, err) = incoming.join().expect("destination thread");
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out.trim(), "migration: completed");
    // A source that has migrated refuses to go again (QEMU's words, exit 1).
    let (code, _, err) = run(src.socket(), &["migrate", &uri]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("previous migration"), "{err}");
    // To where nobody listens: the migration fails, with QEMU's text.
    let src2 = start(Which::Installed, Flavor::System);
    let nobody = format!("unix:{}", src2.dir().join("nobody.sock").display());
    let (code, out, err) = run(src2.socket(), &["migrate", &nobody]);
    assert_eq!(code, 1, "exit {code}: {out} {err}");
    assert!(
        out.starts_with("migration failed: ") || err.contains("migrate: QEMU says"),
        "out {out:?} err {err:?}"
    );
}
