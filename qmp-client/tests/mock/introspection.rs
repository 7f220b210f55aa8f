//! Doubles described by an introspection (`query-qmp-schema` of real
//! QEMU 11.1.3 and 10.0.2, in `tests/fixtures/introspection/`): a QEMU
//! newer than the bindings, and a build whose version number does not
//! describe its schema. The client decides by that schema, not the
//! version.

#![allow(
    deprecated,
    reason = "11.1 removed what these tests send: the bindings mark it deprecated"
)]

use std::path::PathBuf;

use qmp_client::introspect::Probe;
use qmp_client::testing::MockQemu;
use qmp_client::{Client, Error, Options, SchemaPolicy};
use qmp_types::*;
use serde_json::{Value, json};

use super::{bounded, client};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/introspection")
        .join(name)
}

/// 10.0.2's schema without `nbd-server-start`'s `handshake-max-seconds`
/// (10.0): what a 9.1 build without that feature reports.
fn without_handshake_limit() -> String {
    let text = std::fs::read_to_string(fixture("system-10.0.2.json")).expect("fixture");
    let mut list: Vec<Value> = serde_json::from_str(&text).expect("json");
    let arg_type = list
        .iter()
        .find(|e| e["name"] == "nbd-server-start")
        .and_then(|e| e["arg-type"].as_str())
        .expect("nbd-server-start")
        .to_string();
    let ty = list
        .iter_mut()
        .find(|e| e["name"] == arg_type.as_str())
        .expect("its type");
    let members = ty["members"].as_array_mut().expect("members");
    let before = members.len();
    members.retain(|m| m["name"] != "handshake-max-seconds");
    assert_eq!(members.len(), before - 1, "10.0.2 has it");
    Value::Array(list).to_string()
}

/// An argument QEMU 10.0 added.
fn with_handshake_limit() -> NbdServerStart {
    let addr = json!({"type": "unix", "data": {"path": "/tmp/nbd.sock"}});
    serde_json::from_value::<NbdServerStart>(json!({"addr": addr}))
        .expect("nbd-server-start")
        .with_handshake_max_seconds(5)
}

#[tokio::test]
async fn a_qemu_newer_than_the_bindings_is_checked_by_its_own_schema() {
    let mock =
        MockQemu::with_introspection("11.1.3", fixture("system-11.1.3.json")).expect("double");
    assert_eq!(mock.version(), None, "not a version the bindings cover");
    let c = client(&mock).await;
    assert_eq!(c.qemu_version().to_string(), "11.1.3");
    // 11.1 removed both; the version tables would let them through.
    let e = c
        .execute(QueryMigrationthreads::new())
        .await
        .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "not sent: QEMU 11.1.3 (connected) has no command `query-migrationthreads`"
    );
    let e = c
        .execute(Migrate::new().with_uri("unix:/tmp/x").with_detach(true))
        .await
        .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "not sent: QEMU 11.1.3 (connected) has no argument `detach` of `migrate`"
    );
    // What 11.1 added, and the bindings don't know, goes through.
    let poll = Probe::args::<ObjectAdd>()
        .branch("iothread")
        .member("poll-weight");
    assert!(c.probe(&poll).await.expect("schema"));
    let failing = Probe::parse("query-migrate/ret-type/status/^failing").expect("query");
    assert!(
        c.probe(&failing).await.expect("schema"),
        "11.1's new MigrationStatus"
    );
    mock.expect::<ObjectAdd>();
    c.execute_raw(
        "object-add",
        json!({"qom-type": "iothread", "id": "io1", "poll-weight": 3}),
    )
    .await
    .expect("11.1 takes it");
    assert!(c.has::<QueryStatus>().await);
    assert!(!c.has::<QueryMigrationthreads>().await);
    assert!(c.has_event::<events::Shutdown>().await.expect("schema"));
    assert_eq!(c.stats().sent, 1, "only object-add was written");
    mock.verify().expect("as scripted");
}

#[tokio::test]
async fn a_backported_build_is_judged_by_its_schema_not_its_version() {
    // A 9.1.0 build with 10.0's `blockdev-set-active` and
    // `handshake-max-seconds` backported: the schema lets both through,
    // and the double (checking by the same schema) accepts them.
    let backported =
        MockQemu::with_introspection("9.1.0", fixture("system-10.0.2.json")).expect("double");
    backported.expect::<BlockdevSetActive>();
    backported.expect::<NbdServerStart>();
    let c = client(&backported).await;
    c.execute(BlockdevSetActive::new(false))
        .await
        .expect("a 9.1.0 with the command takes it");
    c.execute(with_handshake_limit())
        .await
        .expect("a 9.1.0 with the argument takes it");
    backported.verify().expect("accepted");
    // By its version alone, the command (since 10.0) would be refused.
    let tables_only =
        bounded(backported.connect(Options::default().with_schema(SchemaPolicy::Off)))
            .await
            .expect("connects");
    let e = tables_only
        .execute(BlockdevSetActive::new(false))
        .await
        .expect_err("by version");
    assert!(matches!(e, Error::Unavailable(_)), "{e}");
    assert!(
        e.to_string()
            .contains("command `blockdev-set-active` needs QEMU ≥ 10.0, connected to 9.1.0"),
        "{e}"
    );

    // A 9.1.0 build without it: refused before sending, and by the
    // double when sent anyway.
    let plain =
        MockQemu::with_introspection_str("9.1.0", &without_handshake_limit()).expect("double");
    let c = client(&plain).await;
    let e = c
        .execute(with_handshake_limit())
        .await
        .expect_err("refused");
    assert_eq!(
        e.to_string(),
        "not sent: QEMU 9.1.0 (connected) has no argument `handshake-max-seconds` of `nbd-server-start`"
    );
    let probe = Probe::args::<NbdServerStart>().member("handshake-max-seconds");
    assert!(!c.probe(&probe).await.expect("schema"));
    assert!(probe.in_bindings().is_ok());
    plain.allow_invalid();
    let unchecked = bounded(plain.connect(Options::default().with_check_versions(false)))
        .await
        .expect("connects");
    let e = unchecked
        .execute(with_handshake_limit())
        .await
        .expect_err("QEMU refuses");
    assert!(
        e.to_string()
            .contains("Parameter 'handshake-max-seconds' is unexpected"),
        "{e}"
    );
}

#[tokio::test]
async fn a_client_over_a_socket_fetches_the_schema_and_a_recording_keeps_it() {
    let mock =
        MockQemu::with_introspection("11.1.3", fixture("system-11.1.3.json")).expect("double");
    mock.expect::<QueryStatus>()
        .reply(StatusInfo::new(false, RunState::Prelaunch));
    let path = mock.listen_unix().await.expect("socket");
    let dir = tempfile::tempdir().expect("tmp");
    let rec = dir.path().join("session.jsonl");
    let c = bounded(Client::connect_unix(
        &path,
        Options::default().with_record(rec.clone()),
    ))
    .await
    .expect("connects");
    // Fetched over the connection, not a scripted call.
    c.execute(QueryStatus::new()).await.expect("status");
    let e = c
        .execute(QueryMigrationthreads::new())
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::NotInSchema { .. }), "{e}");
    assert_eq!(c.schema().await.expect("schema").label(), "QEMU 11.1.3");
    mock.verify().expect("only query-status was a call");
    c.close();
    drop(c);

    // Played back: the recorded schema is the double's, the recorded
    // fetch is not part of the sequence.
    let replay = MockQemu::replay(&rec).expect("replay");
    let c = client(&replay).await;
    assert_eq!(c.schema().await.expect("given").label(), "QEMU 11.1.3");
    c.execute(QueryStatus::new()).await.expect("replayed");
    let e = c
        .execute(QueryMigrationthreads::new())
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::NotInSchema { .. }), "{e}");
    replay.verify().expect("the recording played to its end");
}

#[tokio::test]
async fn a_double_of_a_covered_version_answers_the_fetch_and_the_tables_decide() {
    let mock = MockQemu::with_version("7.2").expect("double");
    let path = mock.listen_unix().await.expect("socket");
    let c = bounded(Client::connect_unix(&path, Options::default()))
        .await
        .expect("connects");
    // No introspection: the fetch fails and the version tables decide.
    assert!(matches!(c.schema().await, Err(Error::NoSchema(_))));
    let e = c.execute(QueryCryptodev::new()).await.expect_err("refused");
    assert!(matches!(e, Error::Unavailable(_)), "{e}");
    mock.verify().expect("the fetch is not a call");
}

#[test]
fn bad_introspections_are_refused_with_the_reason() {
    for (text, says) in [
        ("[]", "no query-qmp-schema reply"),
        ("{\"return\": 7}", "no query-qmp-schema reply"),
        (
            "[{\"name\": \"x\", \"meta-type\": \"enum\", \"values\": 5}]",
            "invalid type",
        ),
    ] {
        match MockQemu::with_introspection_str("11.1.3", text) {
            Err(Error::Mock(m)) => assert!(m.contains(says), "{text}: {m}"),
            Err(other) => panic!("{text}: {other}"),
            Ok(_) => panic!("{text}: accepted"),
        }
    }
    assert!(MockQemu::with_introspection_str("eleven", "[]").is_err());
}

#[tokio::test]
async fn what_the_bindings_do_not_know_is_reported_with_whether_qemu_declares_it() {
    let mock =
        MockQemu::with_introspection("11.1.3", fixture("system-11.1.3.json")).expect("double");
    // 11.1's new MigrationStatus `failing`, and a member 11.1 does not
    // declare anywhere in query-migrate's reply.
    mock.expect::<QueryMigrate>()
        .reply_json(json!({"status": "failing", "no-such-member": 1}));
    mock.emit_json("MIGRATION", json!({"status": "failing"}));
    let c = client(&mock).await;
    let info = c.execute(QueryMigrate::new()).await.expect("kept");
    assert_eq!(info.status.as_ref().map(|s| s.as_str()), Some("failing"));
    let seen = c.unknown_members();
    let find = |key: &str, source: &str| {
        seen.iter()
            .find(|r| r.member.key == key && r.source == source)
            .unwrap_or_else(|| panic!("{key} from {source} in {seen:?}"))
    };
    let failing = find("failing", "query-migrate");
    assert_eq!(failing.member.kind, qmp_types::rt::UnknownKind::EnumValue);
    assert_eq!(failing.in_schema, Some(true), "11.1 declares it");
    assert_eq!(
        find("no-such-member", "query-migrate").in_schema,
        Some(false)
    );
    // The event's data too, once it has come.
    let since = qmp_client::Since::Cursor(0);
    c.events_of::<events::Migration>(since)
        .wait(super::BOUND)
        .await
        .expect("event");
    assert_eq!(find("failing", "MIGRATION").in_schema, Some(true));
    // A union's branch: 11.1's new target, and one nobody declares.
    mock.expect::<QueryCpusFast>().reply_json(json!([
        {"cpu-index": 0, "qom-path": "/machine/cpu0", "thread-id": 1, "target": "hexagon"},
        {"cpu-index": 1, "qom-path": "/machine/cpu1", "thread-id": 2, "target": "hexagonn"}
    ]));
    let cpus = c.execute(QueryCpusFast::new()).await.expect("kept");
    assert_eq!(cpus.len(), 2);
    let seen = c.unknown_members();
    let branch = |key: &str| {
        seen.iter()
            .find(|r| r.member.key == key && r.source == "query-cpus-fast")
            .unwrap_or_else(|| panic!("{key} in {seen:?}"))
    };
    assert_eq!(
        branch("hexagon").member.kind,
        qmp_types::rt::UnknownKind::Branch
    );
    assert_eq!(branch("hexagon").in_schema, Some(true));
    assert_eq!(branch("hexagonn").in_schema, Some(false));
    mock.verify().expect("as scripted");
}
