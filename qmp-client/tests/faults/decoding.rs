//! Replies and events that don't fit their types: bad members named by
//! path, error classes QEMU here can't send, events with bad data,
//! members a newer QEMU sends.

use super::*;

#[tokio::test]
async fn reply_that_does_not_decode_names_the_bad_member() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        // First reply: `qemu.major` is a string, not an integer.
        let cmd = read_cmd(&mut r).await.expect("a command");
        let bad = serde_json::json!({"return": {"qemu": {"major": "ten", "minor": 0, "micro": 2},
            "package": "fake"}, "id": cmd["id"]});
        w.write_all(format!("{bad}\n").as_bytes())
            .await
            .expect("write");
        // Second reply: fine; the connection goes on.
        let cmd = read_cmd(&mut r).await.expect("a second command");
        let good = serde_json::json!({"return": {"qemu": {"major": 10, "minor": 0, "micro": 2},
            "package": "fake"}, "id": cmd["id"]});
        w.write_all(format!("{good}\n").as_bytes())
            .await
            .expect("write");
        fake.until_finished().await;
    };
    let client = async {
        let c = fake.connect().await;
        let e = bounded(c.execute(QueryVersion::new()))
            .await
            .expect_err("a string where an integer belongs");
        match &e {
            Error::Decode { what, path, .. } => {
                assert_eq!(what, "query-version");
                assert_eq!(path, "qemu.major");
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        let v = bounded(c.execute(QueryVersion::new()))
            .await
            .expect("the next call still works");
        assert_eq!(v.qemu.major, 10);
    };
    together(&fake, server, client).await;
}

#[tokio::test]
async fn error_classes_qemu_here_cannot_send() {
    // KVMMissingCap needs KVM; a class from a newer QEMU must be kept.
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        for class in ["KVMMissingCap", "SomeFutureClass"] {
            let cmd = read_cmd(&mut r).await.expect("a command");
            send(
                &mut w,
                &serde_json::json!({"error": {"class": class, "desc": "no"}, "id": cmd["id"]}),
            )
            .await;
        }
        fake.until_finished().await;
    };
    let client = async {
        let c = fake.connect().await;
        let mut classes = Vec::new();
        for _ in 0..2 {
            let e = bounded(c.execute(QueryStatus::new()))
                .await
                .expect_err("an error reply");
            classes.push(e.class().cloned().expect("a QMP error"));
        }
        assert_eq!(classes[0], qmp_client::ErrorClass::KVMMissingCap);
        assert_eq!(classes[0].as_str(), "KVMMissingCap");
        assert_eq!(
            classes[1],
            qmp_client::ErrorClass::Unknown("SomeFutureClass".into())
        );
    };
    together(&fake, server, client).await;
}

#[tokio::test]
async fn a_known_event_with_bad_data_is_kept_and_fails_typed_waits() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        w.write_all(b"{\"event\": \"DEVICE_DELETED\", \"data\": {\"bogus\": true}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n")
            .await
            .expect("event");
        send(&mut w, &serde_json::json!({"return": {}, "id": cmd["id"]})).await;
        fake.until_finished().await;
    };
    let client = async {
        let c = fake.connect().await;
        let since = c.event_cursor();
        let mut stream = c.events_of::<DeviceDeleted>(c.event_cursor()).stream();
        bounded(c.execute(qmp_types::DeviceDel::new("tab0")))
            .await
            .expect("device_del");
        // The waiter doesn't time out: it is told.
        let e = bounded(
            c.events_of::<DeviceDeleted>(since)
                .matching(|e| e.device.as_deref() == Some("tab0"))
                .wait(Duration::from_secs(30)),
        )
        .await
        .expect_err("malformed");
        match &e {
            Error::EventDecode { event, error } => {
                assert_eq!(event, "DEVICE_DELETED");
                assert!(error.contains("path"), "{error}");
            }
            other => panic!("{other}"),
        }
        let e = bounded(stream.next()).await.expect_err("malformed");
        assert!(matches!(e, Error::EventDecode { .. }), "{e}");
        // Kept with its name, raw data and the error.
        let h = c.history(since);
        match &h[0].event {
            AnyEvent::Malformed { name, data, error } => {
                assert_eq!(name, "DEVICE_DELETED");
                assert_eq!(data, &serde_json::json!({"bogus": true}));
                assert!(error.contains("missing field `path`"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h[0].event.name(), "DEVICE_DELETED");
        assert_eq!(c.stats().malformed_events, 1);
    };
    together(&fake, server, client).await;
}

/// A QEMU newer than the bindings: a reply and an event carry a member
/// the bindings don't know.
async fn newer_qemu_peer(fake: &Fake) {
    let (mut r, mut w) = fake.accept(true).await;
    while let Some(cmd) = read_cmd(&mut r).await {
        send(
            &mut w,
            &serde_json::json!({"event": "DEVICE_DELETED",
                "data": {"path": "/machine/peripheral/d0", "device": "d0", "from-qemu-99": 1},
                "timestamp": {"seconds": 1, "microseconds": 2}}),
        )
        .await;
        send(
            &mut w,
            &serde_json::json!({"return": {"running": true, "status": "running",
                "from-qemu-99": {"x": true}}, "id": cmd["id"]}),
        )
        .await;
    }
}

#[tokio::test]
async fn members_a_newer_qemu_sends_are_reported_kept_or_denied() {
    use qmp_client::UnknownMembers;
    // Report (the default): decoded, kept with their values, counted.
    let fake = Fake::new();
    let client = async {
        let c = fake.connect().await;
        let since = c.event_cursor();
        let s = bounded(c.execute(QueryStatus::new()))
            .await
            .expect("decodes");
        assert!(s.running);
        bounded(c.events_of::<DeviceDeleted>(since).wait(BOUND))
            .await
            .expect("the event decodes too");
        let kept = c.unknown_members();
        assert_eq!(kept.len(), 2, "{kept:?}");
        let reply = kept
            .iter()
            .find(|k| k.source == "query-status")
            .expect("reply's");
        assert_eq!(reply.member.type_name, "StatusInfo");
        assert_eq!(reply.member.key, "from-qemu-99");
        assert_eq!(reply.member.value, serde_json::json!({"x": true}));
        let event = kept
            .iter()
            .find(|k| k.source == "DEVICE_DELETED")
            .expect("event's");
        assert_eq!(event.member.type_name, "DeviceDeleted");
        assert_eq!(c.stats().unknown_members, 2);
        c.close();
    };
    tokio::join!(newer_qemu_peer(&fake), client);

    // Deny: the call fails naming the member; the event is malformed.
    let fake = Fake::new();
    let client = async {
        let c = fake
            .connect_with(opts().with_unknown_members(UnknownMembers::Deny))
            .await;
        let since = c.event_cursor();
        let e = bounded(c.execute(QueryStatus::new()))
            .await
            .expect_err("denied");
        assert!(
            matches!(&e, Error::UnknownMembers { command, detail }
                if command == "query-status" && detail.contains("`from-qemu-99` in StatusInfo")),
            "{e}"
        );
        let e = bounded(c.events_of::<DeviceDeleted>(since).wait(BOUND))
            .await
            .expect_err("malformed");
        assert!(matches!(e, Error::EventDecode { .. }), "{e}");
        // Denied, so not kept; but met, so counted (the event's and the
        // reply's).
        assert!(c.unknown_members().is_empty());
        assert_eq!(c.stats().unknown_members, 2);
        c.close();
    };
    tokio::join!(newer_qemu_peer(&fake), client);

    // Ignore: as if they weren't there.
    let fake = Fake::new();
    let client = async {
        let c = fake
            .connect_with(opts().with_unknown_members(UnknownMembers::Ignore))
            .await;
        bounded(c.execute(QueryStatus::new()))
            .await
            .expect("decodes");
        assert!(c.unknown_members().is_empty());
        assert_eq!(c.stats().unknown_members, 0);
        c.close();
    };
    tokio::join!(newer_qemu_peer(&fake), client);
}

/// A QEMU newer than the bindings that widened members' types (as QEMU
/// 11.0 widened `tls-creds` to `StrOrNull`): a `null`, and an object,
/// where the bindings expect a string.
async fn widened_peer(fake: &Fake) {
    let (mut r, mut w) = fake.accept(true).await;
    while let Some(cmd) = read_cmd(&mut r).await {
        send(
            &mut w,
            &serde_json::json!({"return": {"downtime-limit": 300, "tls-creds": null,
                "tls-hostname": {"from-qemu-99": "an object"}}, "id": cmd["id"]}),
        )
        .await;
    }
}

#[tokio::test]
async fn members_a_newer_qemu_widened_are_kept_and_reported_not_fatal() {
    let fake = Fake::new();
    let client = async {
        let c = fake.connect().await;
        let p = bounded(c.execute(qmp_types::QueryMigrateParameters::new()))
            .await
            .expect("the rest of the reply decodes");
        assert_eq!(p.downtime_limit, Some(300));
        assert_eq!(p.tls_creds, None);
        assert_eq!(p.tls_hostname, None);
        // Kept: the reply encodes as it came.
        assert_eq!(
            serde_json::to_value(&p).expect("encodes"),
            serde_json::json!({"downtime-limit": 300, "tls-creds": null,
                "tls-hostname": {"from-qemu-99": "an object"}})
        );
        // Reported, each with its type, member and why.
        let kept = c.unknown_members();
        let mut found: Vec<(&str, &str, bool)> = kept
            .iter()
            .map(|k| {
                (
                    k.member.type_name,
                    k.member.key.as_str(),
                    k.member.mismatch.is_some(),
                )
            })
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("MigrationParameters", "tls-creds", true),
                ("MigrationParameters", "tls-hostname", true)
            ],
            "{kept:?}"
        );
        let hostname = kept
            .iter()
            .find(|k| k.member.key == "tls-hostname")
            .expect("tls-hostname");
        assert!(
            hostname
                .member
                .to_string()
                .contains("does not fit its type"),
            "{}",
            hostname.member
        );
        c.close();
    };
    tokio::join!(widened_peer(&fake), client);

    // Deny: the widened members fail the call, naming the member.
    let fake = Fake::new();
    let client = async {
        let c = fake
            .connect_with(opts().with_unknown_members(qmp_client::UnknownMembers::Deny))
            .await;
        let e = bounded(c.execute(qmp_types::QueryMigrateParameters::new()))
            .await
            .expect_err("denied");
        assert!(e.to_string().contains("tls-hostname"), "{e}");
        c.close();
    };
    tokio::join!(widened_peer(&fake), client);
}

#[tokio::test]
async fn decode_errors_name_the_full_path_inside_union_branches() {
    let fake = Fake::new();
    let server = async {
        let (mut r, mut w) = fake.accept(true).await;
        let cmd = read_cmd(&mut r).await.expect("a command");
        let reply = serde_json::json!({"return": [
            {"name": "str", "meta-type": "builtin", "json-type": "string"},
            {"name": "1", "meta-type": "enum", "values": 5, "members": []}
        ], "id": cmd["id"]});
        send(&mut w, &reply).await;
        fake.until_finished().await;
    };
    let client = async {
        let c = fake.connect().await;
        let e = bounded(c.execute(qmp_types::QueryQmpSchema::new()))
            .await
            .expect_err("bad values");
        match &e {
            Error::Decode { what, path, .. } => {
                assert_eq!(what, "query-qmp-schema");
                assert_eq!(path, "[1].values", "{e}");
            }
            other => panic!("{other}"),
        }
    };
    together(&fake, server, client).await;
}
