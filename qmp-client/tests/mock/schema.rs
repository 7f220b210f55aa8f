//! Every command checked against the mocked version's schema, answered
//! as that QEMU answers a mistake, and noted as a failure.

use super::*;
use qmp_client::ErrorClass;
use qmp_types::*;
use serde_json::json;

/// Sends `name` with `args` unchecked by the client.
async fn raw(c: &Client, name: &str, args: serde_json::Value) -> Result<serde_json::Value, Error> {
    c.execute_raw(name, args).await
}

#[tokio::test]
async fn mistakes_get_qemu_s_answers_and_are_failures() {
    let mock = MockQemu::with_version("10.0.2").expect("covered");
    let c = client(&mock).await;
    let cases = [
        (
            "no-such-command",
            json!({}),
            "The command no-such-command has not been found",
        ),
        ("device_del", json!({}), "Parameter 'id' is missing"),
        (
            "device_del",
            json!({"id": 1}),
            "Invalid parameter type for 'id', expected: string",
        ),
        (
            "query-status",
            json!({"foo": 1}),
            "Parameter 'foo' is unexpected",
        ),
        (
            "blockdev-add",
            json!({"driver": "qcow2", "node-name": "d", "file": {"driver": "file"}}),
            "Parameter 'file.filename' is missing",
        ),
        (
            "blockdev-backup",
            json!({"device": "a", "target": "b", "sync": "fulll"}),
            "Parameter 'sync' does not accept value 'fulll'",
        ),
        // 10.2's argument, sent to 10.0.2.
        (
            "blockdev-mirror",
            json!({"device": "a", "target": "b", "sync": "full", "target-is-zero": true}),
            "Parameter 'target-is-zero' is unexpected",
        ),
    ];
    for (name, args, desc) in &cases {
        let err = raw(&c, name, args.clone()).await.expect_err(name);
        assert!(err.to_string().ends_with(desc), "{name}: {err}");
    }
    let err = raw(&c, "no-such-command", json!({}))
        .await
        .expect_err("unknown");
    assert_eq!(err.class(), Some(&ErrorClass::CommandNotFound));
    let text = problems(&mock);
    for (name, _, desc) in &cases {
        assert!(
            text.contains("QEMU 10.0.2 refuses it: ") && text.contains(desc),
            "{name}: {text}"
        );
    }
    // Nothing reached the script.
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn the_same_command_is_right_for_one_version_and_wrong_for_another() {
    let args = json!({"device": "a", "target": "b", "sync": "full", "target-is-zero": true});
    let newer = MockQemu::with_version("10.2.2").expect("covered");
    newer.expect::<BlockdevMirror>();
    let c = client(&newer).await;
    raw(&c, "blockdev-mirror", args.clone())
        .await
        .expect("10.2 has it");
    newer.verify().expect("met");

    // A command only newer versions have, sent to 7.2 (past the
    // client's own check, which would refuse it before sending).
    let older = MockQemu::with_version("7.2.0").expect("covered");
    let opts = Options::default().with_check_versions(false);
    let c = bounded(older.connect(opts)).await.expect("connects");
    let newer_only = qmp_types::COMMANDS
        .iter()
        .find(|m| !m.versions.is_empty() && !m.versions.contains(&"7.2.0"))
        .expect("a command 7.2 lacks");
    let err = raw(&c, newer_only.name, json!({}))
        .await
        .expect_err("7.2 lacks it");
    assert_eq!(err.class(), Some(&ErrorClass::CommandNotFound));
    let text = problems(&older);
    assert!(
        text.contains("QEMU 7.2.0 refuses it: CommandNotFound"),
        "{text}"
    );
}

#[tokio::test]
async fn protocol_mistakes_are_answered_in_qemu_s_words() {
    let mock = MockQemu::new();
    let mut s = mock.stream();
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (r, mut w) = tokio::io::split(&mut s);
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.expect("greeting");
    assert!(line.contains("\"QMP\""), "{line}");
    let mut ask = async |msg: &str| {
        w.write_all(msg.as_bytes()).await.expect("write");
        w.write_all(b"\n").await.expect("write");
        line.clear();
        r.read_line(&mut line).await.expect("reply");
        line.clone()
    };
    let before = ask(r#"{"execute": "query-status"}"#).await;
    assert!(
        before.contains("Expecting capabilities negotiation with 'qmp_capabilities'"),
        "{before}"
    );
    assert!(
        ask(r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}"#)
            .await
            .contains("\"return\"")
    );
    let again = ask(r#"{"execute": "qmp_capabilities"}"#).await;
    assert!(
        again.contains("Capabilities negotiation is already complete"),
        "{again}"
    );
    let cases = [
        ("[1, 2]", "QMP input must be a JSON object"),
        (r#"{"arguments": {}}"#, "QMP input lacks member 'execute'"),
        (
            r#"{"execute": 42}"#,
            "QMP input member 'execute' must be a string",
        ),
        (
            r#"{"execute": "query-status", "arguments": []}"#,
            "QMP input member 'arguments' must be an object",
        ),
        (
            r#"{"execute": "query-status", "bogus-key": 1}"#,
            "QMP input member 'bogus-key' is unexpected",
        ),
        ("garbage", "JSON parse error"),
        (
            r#"{"exec-oob": "query-status", "id": 1}"#,
            "The command query-status does not support OOB",
        ),
    ];
    for (msg, want) in cases {
        let got = ask(msg).await;
        assert!(got.contains(want), "{msg}: {got}");
    }
    mock.allow_invalid();
}
