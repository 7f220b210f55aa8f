//! Faults QEMU won't produce, from a scripted fake server where the test
//! double (`qmp_client::testing::MockQemu`, `tests/mock/`) cannot make
//! them: no greeting, a bad greeting, a 10 MB
//! message, an event flood with precise timing, a disconnect with calls
//! pending, a reply that doesn't decode, error classes QEMU here can't
//! send. (Garbled JSON, a message cut mid-line, replies with unknown ids,
//! QEMU dying mid-call and a peer that stops reading are the double's
//! faults: `tests/mock/faults.rs`.)
//! Each must end in a clear error or correct handling: no panic, no hang,
//! no call left waiting.

mod decoding;
mod framing;
mod load;

use std::time::Duration;

use qmp_client::{Client, Disconnect, Error, Options, SchemaPolicy};
use qmp_types::{AnyEvent, DeviceDeleted, QueryStatus, QueryVersion, StopEvent};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "fake"}, "capabilities": ["oob"]}}"#;

struct Fake {
    _dir: tests::TempDir,
    path: std::path::PathBuf,
    listener: UnixListener,
    /// The test's client side has finished (see [`together`]).
    finished: tokio::sync::Notify,
}

impl Fake {
    fn new() -> Fake {
        let dir = tests::TempDir::new("fake").expect("dir");
        let path = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        Fake {
            _dir: dir,
            path,
            listener,
            finished: tokio::sync::Notify::new(),
        }
    }

    /// The server side holds its end of the connection open until the
    /// client side has finished (never a timed wait).
    async fn until_finished(&self) {
        self.finished.notified().await;
    }

    /// A client connected to it (the test's server side must accept).
    async fn connect(&self) -> Client {
        self.connect_with(opts()).await
    }

    /// The same with other options (the schema never fetched: see
    /// [`opts`]).
    async fn connect_with(&self, opts: Options) -> Client {
        let opts = opts.with_schema(SchemaPolicy::Off);
        Client::connect_unix(&self.path, opts)
            .await
            .expect("connect")
    }

    /// Accepts one client; greets and negotiates when `greet`.
    async fn accept(
        &self,
        greet: bool,
    ) -> (
        BufReader<tokio::net::unix::OwnedReadHalf>,
        tokio::net::unix::OwnedWriteHalf,
    ) {
        let (s, _) = self.listener.accept().await.expect("accept");
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        if greet {
            w.write_all(format!("{GREETING}\n").as_bytes())
                .await
                .expect("greet");
            let cmd = read_cmd(&mut r).await.expect("qmp_capabilities");
            assert_eq!(cmd["execute"], "qmp_capabilities");
            w.write_all(b"{\"return\": {}}\n").await.expect("reply");
        }
        (r, w)
    }
}

/// Awaits `f`, failing the test if it takes longer than [`BOUND`].
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f).await.expect("bounded")
}

/// Writes one JSON message and a newline.
async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, v: &Value) {
    w.write_all(format!("{v}\n").as_bytes())
        .await
        .expect("write");
}

async fn read_cmd(r: &mut BufReader<tokio::net::unix::OwnedReadHalf>) -> Option<Value> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    serde_json::from_str(&line).ok()
}

/// The fakes answer only what each test scripts: the client's fetch of
/// `query-qmp-schema` would be a command they don't expect, so it is off
/// (the version tables decide).
fn opts() -> Options {
    Options::default()
        .with_connect_timeout(Duration::from_millis(500))
        .with_schema(SchemaPolicy::Off)
}

const BOUND: Duration = Duration::from_secs(5);

/// Runs a test's `server` and `client` sides together; the client's end
/// releases a server waiting in [`Fake::until_finished`].
async fn together(fake: &Fake, server: impl std::future::Future, client: impl std::future::Future) {
    let client = async {
        client.await;
        fake.finished.notify_one();
    };
    tokio::join!(server, client);
}
