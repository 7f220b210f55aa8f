//! `qmp --record FILE`: a session with real QEMU written as JSON lines,
//! then played back by `qmp_client::testing::MockQemu` to the same `qmp`
//! command, which cannot tell the difference.

use super::*;
use qmp_client::testing::MockQemu;

#[test]
fn a_recorded_session_replays_to_the_same_command() {
    let qemu = start(Which::Installed, Flavor::StorageDaemon);
    let dir = TempDir::new("qmp-record").expect("temp dir");
    let file = dir.path().join("session.jsonl");
    let f = file.to_str().expect("utf-8 path");
    // A cache of its own, empty: the schema is fetched (and recorded).
    let cache = dir.path().join("cache");
    let socket = qemu.socket().display().to_string();
    let o = qmp()
        .env("QMP_CACHE_DIR", &cache)
        .args([
            "--socket",
            socket.as_str(),
            "--record",
            f,
            "exec",
            "query-version",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("qmp runs");
    let (code, live, err) = (
        o.status.code().unwrap_or(-1),
        text(&o.stdout),
        text(&o.stderr),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .expect("the recording")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0]["dir"], "recv");
    assert!(lines[0]["msg"]["QMP"].is_object(), "{:?}", lines[0]);
    let sent: Vec<&Value> = lines
        .iter()
        .filter(|l| l["dir"] == "send")
        .map(|l| &l["msg"]["execute"])
        .collect();
    assert_eq!(
        sent,
        [
            &json!("qmp_capabilities"),
            &json!("query-qmp-schema"),
            &json!("query-version")
        ]
    );
    assert!(lines.iter().all(|l| l["t"].as_f64().is_some()));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mock = MockQemu::replay(&file).expect("reads the recording");
    let path = rt.block_on(mock.listen_unix()).expect("listens");
    // The double answers the schema's fetch from the recording itself.
    let (code, replayed, err) = run(&path, &["exec", "query-version"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(replayed, live);
    mock.verify().expect("played to its end");
    // A recording that cannot be created: a clear error, nothing sent.
    let (code, _, err) = run(
        qemu.socket(),
        &[
            "--record",
            "/nonexistent/dir/x.jsonl",
            "exec",
            "query-version",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("can't record the session to"), "{err}");
}

/// A recording that can't be written is the run's error (exit 4, naming
/// the file), never a silent exit 0; one cut short by `--record-limit`
/// is a warning, its last line saying so.
#[test]
fn a_recording_that_fails_or_fills_is_said() {
    let qemu = start(Which::Installed, Flavor::StorageDaemon);
    let (code, _, err) = run(
        qemu.socket(),
        &["--record", "/dev/full", "exec", "query-version"],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("/dev/full") && err.contains("space"), "{err}");
    let dir = TempDir::new("qmp-record-limit").expect("temp dir");
    let file = dir.path().join("cut.jsonl");
    let f = file.to_str().expect("utf-8");
    let (code, out, err) = run(
        qemu.socket(),
        &[
            "--record",
            f,
            "--record-limit",
            "2000",
            "exec",
            "query-qmp-schema",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.len() > 2000);
    assert!(err.contains("stopped at its limit of 2000 bytes"), "{err}");
    let text = std::fs::read_to_string(&file).expect("the recording");
    assert!(text.len() <= 2000, "{}", text.len());
    let last: Value = serde_json::from_str(text.lines().last().expect("a line")).expect("json");
    assert_eq!(last["dir"], "note");
}
