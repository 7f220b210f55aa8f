//! `qmp_client::blocking` on real QEMU 10.0.2 and qemu-ga, from plain
//! threads without an async runtime: typed calls, errors, events as an
//! iterator (ending after the connection's end), waits, a job through
//! `block_on`, and refusal inside an async runtime.

use std::time::Duration;

use qmp_client::agent::AgentOptions;
use qmp_client::blocking::{Client, GuestAgent};
use qmp_client::launch::Launcher;
use qmp_client::{Error, ErrorClass, Options};
use qmp_types::*;

const T: Duration = Duration::from_secs(10);

fn null_node(name: &str) -> BlockdevAdd {
    BlockdevAdd::new(
        BlockdevOptions::null_co(BlockdevOptionsNull::new().with_size(1i64 << 20))
            .with_node_name(name),
    )
}

#[test]
fn typed_calls_events_and_jobs_without_a_runtime() {
    let qsd = tests::start_blocking(Launcher::storage_daemon());
    let qmp = Client::connect_to(&qsd, Options::default()).expect("connect");
    assert_eq!(qmp.qemu_version().to_string(), "10.0.2");
    let v = qmp.execute(QueryVersion::new()).expect("query-version");
    assert_eq!(v.qemu.major, 10);
    let err = qmp.execute(BlockdevDel::new("nope")).expect_err("no node");
    assert_eq!(err.class(), Some(&ErrorClass::GenericError));
    qmp.execute(null_node("src")).expect("src");
    qmp.execute(null_node("dst")).expect("dst");

    // Events as an iterator, from another thread meanwhile.
    let mut events = qmp.events();
    let since = qmp.event_cursor();
    qmp.execute(BlockdevBackup::new("src", MirrorSyncMode::Full, "dst").with_job_id("b1"))
        .expect("backup");
    let first = events.next().expect("an event").expect("not an error");
    assert_eq!(first.event.name(), "JOB_STATUS_CHANGE");
    let (_, done) = qmp
        .events_of::<BlockJobCompleted>(since)
        .matching(|e| e.device == "b1")
        .wait(T)
        .expect("completed");
    assert!(done.error.is_none());

    // Any async helper through block_on: a job handle and its wait.
    qmp.block_on(|c| async move {
        c.start_job(BlockdevBackup::new("src", MirrorSyncMode::Full, "dst").with_job_id("b2"))
            .await?
            .wait(T)
            .await
    })
    .expect("job b2");

    // The connected QEMU's own schema, without a runtime.
    assert!(qmp.has::<QueryNamedBlockNodes>().expect("schema"));
    assert!(
        !qmp.has::<QueryMachines>().expect("schema"),
        "the daemon has no machine"
    );
    let zeroes = qmp_client::introspect::Probe::args::<BlockdevAdd>()
        .member("detect-zeroes")
        .value("unmap");
    assert!(qmp.probe(&zeroes).expect("schema"));
    assert_eq!(qmp.schema().expect("schema").label(), "QEMU 10.0.2");

    // Clones share the connection; a second thread calls at once.
    let other = qmp.clone();
    let t = std::thread::spawn(move || other.execute(QueryNamedBlockNodes::new()).map(|n| n.len()));
    assert_eq!(t.join().expect("thread").expect("nodes"), 2);
    // What is left of the jobs' events, or a timeout: never a hang.
    let next = events.next_timeout(Duration::from_millis(1));
    assert!(
        matches!(next, Ok(_) | Err(Error::Timeout { .. })),
        "{next:?}"
    );

    // The end: pending iterators learn it once, then stop.
    qmp.close();
    let mut rest = events.by_ref().skip_while(|e| e.is_ok());
    assert!(matches!(rest.next(), Some(Err(Error::Closed(_)))));
    assert!(events.next().is_none());
    assert!(qmp.execute(QueryVersion::new()).is_err());
}

#[test]
fn inside_an_async_runtime_it_refuses_instead_of_blocking_it() {
    let qsd = tests::start_blocking(Launcher::storage_daemon());
    let qmp = Client::connect_to(&qsd, Options::default()).expect("connect");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let r = rt.block_on(async { qmp.execute(QueryVersion::new()) });
    assert!(matches!(r, Err(Error::BlockingInAsync)), "{r:?}");
    // Dropping it there is fine too.
    rt.block_on(async move { drop(qmp) });
}

#[test]
fn the_guest_agent_without_a_runtime() {
    let qga = tests::start_blocking(Launcher::guest_agent());
    let ga = GuestAgent::connect_unix(qga.socket(), AgentOptions::default()).expect("connect");
    ga.execute(qmp_types::qga::GuestPing::new()).expect("ping");
    let info = ga.execute(qmp_types::qga::GuestInfo::new()).expect("info");
    assert_eq!(info.version, "10.0.2");
    let host = ga
        .block_on(|a| async move { a.execute(qmp_types::qga::GuestGetHostName::new()).await })
        .expect("host name");
    assert!(!host.host_name.is_empty());
}

/// What the async client has, the blocking one has as plain functions:
/// job handles, migrations, borrowed descriptors (issue 38, 5).
#[test]
fn jobs_migrations_and_descriptors_without_a_runtime() {
    let qsd = tests::start_blocking(Launcher::storage_daemon());
    let qmp = Client::connect_to(&qsd, Options::default()).expect("connect");
    qmp.execute(null_node("src")).expect("src");
    qmp.execute(null_node("dst")).expect("dst");
    let mut events = qmp.events();
    let job = qmp
        .start_job(BlockdevBackup::new("src", MirrorSyncMode::Full, "dst").with_job_id("b3"))
        .expect("backup starts");
    assert_eq!(job.id(), "b3");
    job.wait(T).expect("b3 succeeds");
    // Events until a deadline, then the iterator ends (issue 37, 3).
    let until = std::time::Instant::now() + Duration::from_millis(300);
    let names: Vec<String> = events
        .until(until)
        .map(|e| e.expect("an event").event.name().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n == "BLOCK_JOB_COMPLETED"),
        "{names:?}"
    );
    assert!(
        std::time::Instant::now() >= until,
        "it ended at its deadline"
    );
    assert!(matches!(
        qmp.attach_job("never").wait(T),
        Err(Error::JobOutcomeUnknown { .. })
    ));

    let vm = tests::start_blocking(
        tests::launcher(tests::Which::Installed, qmp_client::launch::Flavor::System).guestless(),
    );
    let q = Client::connect_to(&vm, Options::default()).expect("connect");
    let f = std::fs::File::open("/dev/null").expect("open");
    let set = q
        .execute_with_fds(AddFd::new().with_opaque("blocking"), [&f])
        .expect("add-fd");
    assert!(f.metadata().is_ok(), "the caller keeps its file");
    let sets = q.execute(QueryFdsets::new()).expect("query-fdsets");
    assert!(sets.iter().any(|s| s.fdset_id == set.fdset_id));
    let out = vm.dir().join("state.bin");
    let m = q
        .start_migration(Migrate::new().with_uri(format!("file:{}", out.display()).as_str()))
        .expect("migrate");
    m.wait(T).expect("migration to a file completes");
    assert_eq!(
        m.progress().expect("query-migrate").status,
        Some(MigrationStatus::Completed)
    );
    assert!(out.metadata().is_ok_and(|m| m.len() > 0));
}
