//! `Migration` handles between two real QEMU processes (guestless
//! `qemu-system-x86_64`, the destination started with `-incoming defer`):
//! 10.0.2 to 10.0.2, 7.2 to 10.0.2 (both on machine type
//! `pc-i440fx-7.2`), a destination killed mid-way (the source's wait fails
//! with QEMU's text), a cancel, and a switch to postcopy.

use super::*;

/// A source and a destination of `which` versions, with `machine`
/// (a machine type both have) when given, and their clients.
pub(super) async fn pair(
    src: Which,
    dst: Which,
    machine: Option<&str>,
) -> (Qemu, Client, Qemu, Client) {
    let m: Vec<&str> = machine.map(|m| vec!["-machine", m]).unwrap_or_default();
    let s = system_of(src, &m).await;
    let mut dargs = m.clone();
    dargs.extend(["-incoming", "defer"]);
    let d = system_of(dst, &dargs).await;
    let (sc, dc) = (
        connect(&s, Options::default()).await,
        connect(&d, Options::default()).await,
    );
    (s, sc, d, dc)
}

pub(super) fn uri(q: &Qemu) -> String {
    format!("unix:{}", q.dir().join("migration.sock").display())
}

/// `migrate-incoming` on the destination `d`, then `migrate` on the
/// source: (incoming, outgoing).
async fn start(
    sc: &Client,
    d: &Qemu,
    dc: &Client,
) -> (qmp_client::Migration, qmp_client::Migration) {
    let uri = uri(d);
    let incoming = dc
        .start_incoming(MigrateIncoming::new().with_uri(uri.as_str()))
        .await
        .expect("migrate-incoming");
    let outgoing = sc
        .start_migration(Migrate::new().with_uri(uri.as_str()))
        .await
        .expect("migrate");
    (incoming, outgoing)
}

async fn migrate(src: Which, dst: Which, machine: Option<&str>) {
    let (_s, sc, d, dc) = pair(src, dst, machine).await;
    let (incoming, outgoing) = start(&sc, &d, &dc).await;
    outgoing.wait(T).await.expect("source completes");
    incoming.wait(T).await.expect("destination completes");
    let p = outgoing.progress().await.expect("query-migrate");
    assert_eq!(p.status, Some(MigrationStatus::Completed));
    assert!(p.total >= 128 << 20 && p.remaining == 0, "{p:?}");
    assert_eq!(
        sc.execute(QueryStatus::new()).await.expect("status").status,
        RunState::Postmigrate
    );
    assert!(
        dc.execute(QueryStatus::new())
            .await
            .expect("status")
            .running
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_between_two_qemus() {
    migrate(Which::Installed, Which::Installed, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_from_qemu_7_2_to_10_0() {
    migrate(Which::Qemu72, Which::Installed, Some("pc-i440fx-7.2")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_between_two_qemu_11_1() {
    migrate(Which::Qemu111, Which::Qemu111, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_from_qemu_10_0_to_11_1() {
    migrate(Which::Installed, Which::Qemu111, Some("pc-i440fx-10.0")).await;
}

/// A migration slowed to 1 MiB/s (128 MiB of RAM: two minutes), active.
async fn slow_migration() -> (Qemu, Client, Qemu, Client, qmp_client::Migration) {
    let (s, sc, d, dc) = pair(Which::Installed, Which::Installed, None).await;
    sc.execute(MigrateSetParameters::new().with_max_bandwidth(1 << 20))
        .await
        .expect("max-bandwidth");
    let (_, m) = start(&sc, &d, &dc).await;
    m.wait_status(MigrationStatus::Active, T)
        .await
        .expect("active");
    (s, sc, d, dc, m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_destination_fails_the_migration() {
    let (_s, _sc, d, _dc, m) = slow_migration().await;
    let p = m.progress().await.expect("query-migrate");
    assert_eq!(p.status, Some(MigrationStatus::Active));
    assert!(p.remaining > 0, "{p:?}");
    d.shutdown().expect("kill destination");
    match m.wait(T).await {
        Err(Error::MigrationFailed { error }) => {
            assert!(
                !error.is_empty() && error != "QEMU gave no reason",
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_migration_says_so() {
    let (_s, sc, _d, _dc, m) = slow_migration().await;
    m.cancel().await.expect("migrate_cancel");
    assert!(matches!(m.wait(T).await, Err(Error::MigrationCancelled)));
    // The source runs on.
    assert!(
        sc.execute(QueryStatus::new())
            .await
            .expect("status")
            .running
    );
}

/// A slow precopy switched to postcopy (`postcopy-ram` on both sides):
/// `postcopy-active` on the way, then `completed` on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_switched_to_postcopy_completes() {
    let (_s, sc, d, dc) = pair(Which::Installed, Which::Installed, None).await;
    let postcopy = || {
        MigrateSetCapabilities::new(vec![MigrationCapabilityStatus::new(
            MigrationCapability::PostcopyRam,
            true,
        )])
    };
    sc.execute(postcopy()).await.expect("postcopy-ram, source");
    dc.execute(postcopy())
        .await
        .expect("postcopy-ram, destination");
    sc.execute(MigrateSetParameters::new().with_max_bandwidth(1 << 20))
        .await
        .expect("max-bandwidth");
    let (incoming, m) = start(&sc, &d, &dc).await;
    m.wait_status(MigrationStatus::Active, T)
        .await
        .expect("active");
    m.start_postcopy().await.expect("migrate-start-postcopy");
    m.wait(T).await.expect("completed through postcopy");
    // The event history saw postcopy-active on the way.
    let seen: Vec<MigrationStatus> = sc
        .events_of::<qmp_types::events::Migration>(Since::Cursor(0))
        .found()
        .into_iter()
        .map(|(_, e)| e.status)
        .collect();
    assert!(seen.contains(&MigrationStatus::PostcopyActive), "{seen:?}");
    incoming.wait(T).await.expect("destination completed");
}
