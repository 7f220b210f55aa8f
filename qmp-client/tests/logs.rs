//! Logs a user can turn on: commands, replies, events, state changes and
//! decode failures, through `tracing`. Alone in its test binary: the
//! subscriber is global, and tracing's call-site caches are shared by
//! every thread of a process.

use std::time::Duration;

use qmp_client::{Client, Options};
use qmp_types::QueryStatus;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Clone, Default)]
struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tracing_tells_what_happened() {
    let buf = Buf::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let (a, b) = tokio::net::UnixStream::pair().expect("pair");
    let server = async move {
        let (r, mut w) = b.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\n")
            .await
            .expect("greet");
        let mut line = String::new();
        r.read_line(&mut line).await.expect("caps");
        w.write_all(b"{\"return\": {}}\n")
            .await
            .expect("caps reply");
        line.clear();
        r.read_line(&mut line).await.expect("a command");
        let cmd: serde_json::Value = serde_json::from_str(&line).expect("json");
        w.write_all(
            b"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n",
        )
        .await
        .expect("event");
        w.write_all(b"{\"event\": \"DEVICE_DELETED\", \"data\": {}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 3}}\n")
            .await
            .expect("event");
        let reply =
            serde_json::json!({"return": {"running": true, "status": "running"}, "id": cmd["id"]});
        w.write_all(format!("{reply}\n").as_bytes())
            .await
            .expect("reply");
        // A reply that doesn't fit its type.
        line.clear();
        r.read_line(&mut line).await.expect("a second command");
        let cmd: serde_json::Value = serde_json::from_str(&line).expect("json");
        let reply = serde_json::json!({"return": {"running": "yes"}, "id": cmd["id"]});
        w.write_all(format!("{reply}\n").as_bytes())
            .await
            .expect("reply");
        // Open until the client closes.
        line.clear();
        let _ = r.read_line(&mut line).await;
    };
    let client = async move {
        // The fake answers two commands: no schema fetch before them.
        let opts = Options::default().with_schema(qmp_client::SchemaPolicy::Off);
        let c = Client::from_unix_stream(a, opts).await.expect("handshake");
        tokio::time::timeout(Duration::from_secs(5), c.execute(QueryStatus::new()))
            .await
            .expect("bounded")
            .expect("reply");
        tokio::time::timeout(Duration::from_secs(5), c.execute(QueryStatus::new()))
            .await
            .expect("bounded")
            .expect_err("does not decode");
        c.close();
        c.closed().await;
    };
    tokio::join!(server, client);
    let text = String::from_utf8_lossy(&buf.0.lock().expect("log")).into_owned();
    for want in [
        "QMP capabilities negotiated version=10.0.2 oob=true",
        "command sent command=query-status",
        "reply received command=query-status ok=true",
        "event event=STOP",
        "WARN",
        "event=DEVICE_DELETED",
        "missing field `path`",
        "reply does not fit its type command=query-status",
        "QMP connection ended cause=QMP connection closed: closed by the client",
    ] {
        assert!(text.contains(want), "no `{want}` in the log:\n{text}");
    }
}
