//! Incremental backup on a real qemu-storage-daemon, as backup tools do
//! it: a full backup started atomically with a persistent bitmap, writes
//! through an NBD export (so QEMU records them), an incremental backup
//! onto an image backed by the full one, `qemu-img compare` of the
//! chain with the source; then QEMU killed, the bitmap found
//! `inconsistent` by the next QEMU, the incremental refused naming it,
//! and a fresh full backup.

use super::*;
use serde_json::json;

fn compare(a: &std::path::Path, b: &std::path::Path) {
    let out = Process::new("qemu-img")
        .args(["compare", &a.to_string_lossy(), &b.to_string_lossy()])
        .output()
        .expect("qemu-img runs");
    assert!(
        out.status.success(),
        "{} and {} differ: {}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn create(path: &std::path::Path, backing: Option<&std::path::Path>) {
    let p = path.to_string_lossy();
    match backing {
        None => qemu_img(&["create", "-q", "-f", "qcow2", &p, "16M"]),
        Some(b) => qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            &b.to_string_lossy(),
            "-F",
            "qcow2",
            &p,
        ]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_backup_chain_and_a_crash() {
    let dir = tests::TempDir::new("backup").expect("temp dir");
    let d = dir.path();
    let (src, full, inc) = (
        d.join("src.qcow2"),
        d.join("full.qcow2"),
        d.join("inc.qcow2"),
    );
    create(&src, None);
    write_data(&src);
    create(&full, None);
    let qsd = storage_daemon().await;
    let c = connect(&qsd, Options::default()).await;
    c.execute(qcow2_node("src", &src)).await.expect("add src");
    c.execute(qcow2_node("full", &full))
        .await
        .expect("add full");

    // Full backup and the bitmap, together.
    let job = c
        .start_full_backup("src", "full", "b0", "full0")
        .await
        .expect("full backup starts");
    job.wait(T).await.expect("full backup");
    let b = c
        .bitmap("src", "b0")
        .await
        .expect("query")
        .expect("bitmap b0");
    assert!(b.persistent && b.recording && !b.inconsistent, "{b:?}");
    assert_eq!(b.dirty_bytes, 0);

    // Writes through QEMU (an NBD export) are recorded.
    let nbd = d.join("nbd.sock");
    c.execute_raw(
        "nbd-server-start",
        json!({"addr": {"type": "unix", "data": {"path": nbd.to_string_lossy()}}}),
    )
    .await
    .expect("nbd-server-start");
    c.execute_raw(
        "block-export-add",
        json!({"type": "nbd", "id": "e0", "node-name": "src", "writable": true}),
    )
    .await
    .expect("block-export-add");
    let url = format!("nbd+unix:///src?socket={}", nbd.display());
    let st = Process::new("qemu-io")
        .args(["-f", "raw", "-c", "write -P 0xbb 8M 1M", &url])
        .output()
        .expect("qemu-io");
    assert!(st.status.success(), "{st:?}");
    let b = c
        .bitmap("src", "b0")
        .await
        .expect("query")
        .expect("bitmap b0");
    assert_eq!(b.dirty_bytes, 1 << 20, "{b:?}");
    assert_eq!(
        c.bitmaps().await.expect("query")["src"],
        vec![b.clone()],
        "listed per node"
    );

    // The incremental backup, onto an image backed by the full one.
    c.execute_raw("blockdev-del", json!({"node-name": "full"}))
        .await
        .expect("release full");
    create(&inc, Some(&full));
    c.execute(qcow2_node("inc", &inc)).await.expect("add inc");
    let job = c
        .start_incremental_backup("src", "inc", "b0", "inc0")
        .await
        .expect("incremental starts");
    job.wait(T).await.expect("incremental backup");
    let b = c
        .bitmap("src", "b0")
        .await
        .expect("query")
        .expect("bitmap b0");
    assert_eq!(b.dirty_bytes, 0, "cleared by the backup");
    // A missing bitmap is named.
    match c.start_incremental_backup("src", "inc", "nope", "x").await {
        Err(Error::Bitmap { name, problem, .. }) => {
            assert_eq!(name, "nope");
            assert!(problem.contains("not found"), "{problem}");
        }
        other => panic!("{:?}", other.map(|j| j.id().to_string())),
    }
    // Close everything, then compare the chain with the source.
    c.execute_raw("block-export-del", json!({"id": "e0"}))
        .await
        .expect("export del");
    c.execute_raw("nbd-server-stop", json!({}))
        .await
        .expect("nbd stop");
    for n in ["inc", "src"] {
        c.execute_raw("blockdev-del", json!({"node-name": n}))
            .await
            .expect("blockdev-del");
    }
    compare(&src, &inc);

    // QEMU dies with the bitmap in use: the next QEMU finds it
    // inconsistent; the incremental is refused, a fresh full backup
    // starts the chain again.
    c.execute(qcow2_node("src", &src))
        .await
        .expect("add src again");
    drop(c);
    qsd.shutdown().expect("kill");
    let qsd = storage_daemon().await;
    let c = connect(&qsd, Options::default()).await;
    c.execute(qcow2_node("src", &src)).await.expect("add src");
    let full2 = d.join("full2.qcow2");
    create(&full2, None);
    c.execute(qcow2_node("full2", &full2))
        .await
        .expect("add full2");
    let b = c
        .bitmap("src", "b0")
        .await
        .expect("query")
        .expect("bitmap b0");
    assert!(b.inconsistent, "{b:?}");
    match c.start_incremental_backup("src", "full2", "b0", "x").await {
        Err(Error::Bitmap { problem, .. }) => {
            assert!(problem.contains("inconsistent"), "{problem}")
        }
        other => panic!("{:?}", other.map(|j| j.id().to_string())),
    }
    let job = c
        .start_full_backup("src", "full2", "b0", "full1")
        .await
        .expect("fresh full backup starts");
    job.wait(T).await.expect("fresh full backup");
    let b = c
        .bitmap("src", "b0")
        .await
        .expect("query")
        .expect("bitmap b0");
    assert!(!b.inconsistent && b.dirty_bytes == 0, "{b:?}");
    for n in ["full2", "src"] {
        c.execute_raw("blockdev-del", json!({"node-name": n}))
            .await
            .expect("blockdev-del");
    }
    compare(&src, &full2);
}
