//! Making a [`Client`]: dialling a Unix socket (waiting for it to appear
//! when asked), TCP or any stream, again when QEMU closes before its
//! greeting; the greeting and the capabilities negotiation; the
//! connection task started.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::{Client, Inner, recording_problem, version_of};
use crate::connection::{self, Parts};
use crate::error::{Disconnect, Error, Result};
use crate::history::Hub;
use crate::options::Options;
use crate::state::Shared;
use crate::transport::{self, Reader, Writer};
use crate::wire::{self, Greeting, Incoming};

/// How many times [`Client::connect_unix`] dials again when QEMU closes a
/// new connection before greeting it.
const GREETING_RETRIES: u32 = 3;

impl Client {
    /// Connects to QEMU's QMP Unix socket at `path`.
    ///
    /// QEMU sometimes closes a connection made just as the previous
    /// client's is being torn down, before greeting it (seen about once in
    /// fifty on qemu-storage-daemon 10.0.2 when one client follows another
    /// at once). Such a connection, closed before anything was said, is
    /// dialled again, at most three times (after 20, 40 and 80 ms); the
    /// same holds for [`Client::connect_tcp`].
    ///
    /// With [`Options::wait_for_socket`], a socket that does not exist yet
    /// (or that nobody listens on yet) is dialled again until it answers,
    /// within [`Options::connect_timeout`]: a VM manager can connect as
    /// soon as it has started QEMU.
    pub async fn connect_unix(path: impl AsRef<Path>, opts: Options) -> Result<Client> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let timeout = opts.connect_timeout;
        let wait = opts.wait_for_socket;
        Client::dial_and_greet(&shown, opts, || async {
            let stream = if wait {
                transport::dial_appearing(path, timeout).await?
            } else {
                transport::dial(&shown, timeout, tokio::net::UnixStream::connect(path)).await?
            };
            Ok(transport::unix(stream))
        })
        .await
    }

    /// Connects to QEMU's QMP TCP socket at `addr` (`host:port`).
    pub async fn connect_tcp(addr: &str, opts: Options) -> Result<Client> {
        let timeout = opts.connect_timeout;
        Client::dial_and_greet(addr, opts, || async {
            let stream =
                transport::dial(addr, timeout, tokio::net::TcpStream::connect(addr)).await?;
            stream.set_nodelay(true)?;
            Ok(transport::stream(stream))
        })
        .await
    }

    /// Dials with `dial` and runs the handshake, dialling again when QEMU
    /// closes the connection before its greeting (see
    /// [`Client::connect_unix`]).
    async fn dial_and_greet<F, Fut>(address: &str, opts: Options, mut dial: F) -> Result<Client>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(Reader, Writer)>>,
    {
        let mut attempt = 0;
        loop {
            let (r, w) = dial().await?;
            match Client::handshake(r, w, opts.clone()).await {
                Err(Error::Closed(Disconnect::PeerClosed)) if attempt < GREETING_RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, %address, "QEMU closed the connection before its greeting; dialling again");
                    tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
                }
                r => return r,
            }
        }
    }

    /// Speaks QMP over any byte stream (a pipe pair, a TLS stream, ...).
    /// File descriptors can't be passed over it. [`Client::close`] and
    /// the drop of the last handle shut it down and drop it.
    pub async fn from_stream<S>(stream: S, opts: Options) -> Result<Client>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = transport::stream(stream);
        Client::handshake(r, w, opts).await
    }

    /// Speaks QMP over a connected Unix stream (e.g. one end of a
    /// socketpair); file descriptors can be passed.
    pub async fn from_unix_stream(stream: tokio::net::UnixStream, opts: Options) -> Result<Client> {
        let (r, w) = transport::unix(stream);
        Client::handshake(r, w, opts).await
    }

    async fn handshake(reader: Reader, mut writer: Writer, opts: Options) -> Result<Client> {
        let (reader, tap) = match &opts.record {
            Some(path) => {
                let (r, tap) = transport::record(reader, &mut writer, path, opts.record_limit)?;
                (r, Some(tap))
            }
            None => (reader, None),
        };
        let deadline = opts.connect_timeout;
        let mut reader = BufReader::with_capacity(16 << 10, reader);
        let work = async {
            let mut line = Vec::new();
            // QEMU's greeting is a few hundred bytes: a larger one is
            // refused once this much is read, not decoded.
            let limit = opts.max_message.min(wire::MAX_GREETING);
            wire::read_message(&mut reader, &mut line, limit)
                .await
                .map_err(|e| match e {
                    // Closed before a word: the connection ended, nothing
                    // was said (see `connect_unix`).
                    wire::ReadError::Eof => Error::Closed(Disconnect::PeerClosed),
                    wire::ReadError::TooLarge(max) => Error::Protocol(format!(
                        "bad greeting: over {max} bytes (QEMU's is a few hundred)"
                    )),
                    other => Error::from(other),
                })?;
            let greeting = wire::parse_greeting(&line)?;
            let oob = opts.oob && greeting.capabilities.iter().any(|c| c == "oob");
            let cmd: &[u8] = if oob {
                b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]}}\n"
            } else {
                b"{\"execute\":\"qmp_capabilities\"}\n"
            };
            writer.write_all(cmd).await?;
            // Events can't come before capabilities are negotiated.
            line.clear();
            wire::read_message(&mut reader, &mut line, opts.max_message).await?;
            let mut msg: Incoming<'_> = serde_json::from_slice(&line)
                .map_err(|e| Error::Protocol(format!("bad reply to qmp_capabilities: {e}")))?;
            let Some(outcome) = msg.take_outcome() else {
                return Err(Error::Protocol(format!(
                    "no reply to qmp_capabilities: {}",
                    wire::excerpt(&line)
                )));
            };
            wire::reply_result("qmp_capabilities", outcome)?;
            Ok(Greeting { oob, ..greeting })
        };
        let greeting =
            tokio::time::timeout(deadline, work)
                .await
                .map_err(|_| Error::Timeout {
                    what: "the QMP greeting".into(),
                    after: deadline,
                })??;
        tracing::debug!(
            version = %format_args!("{}.{}.{}", greeting.version.qemu.major, greeting.version.qemu.minor, greeting.version.qemu.micro),
            oob = greeting.oob,
            "QMP capabilities negotiated"
        );
        let hub = Hub::new(
            opts.history,
            opts.history_bytes,
            opts.subscriber_buffer,
            opts.subscriber_bytes,
        );
        // A recording that could not take the greeting fails the connect:
        // asked for, it would hold nothing.
        if let Some(e) = tap.as_deref().and_then(recording_problem) {
            return Err(e);
        }
        let shared = Arc::new(Shared::new(hub, opts.unknown_members, tap));
        let (in_band_tx, in_band_rx) = mpsc::channel(opts.queue.max(1));
        let (oob_tx, oob_rx) = mpsc::channel(opts.queue.max(1));
        let (alive_tx, alive_rx) = oneshot::channel();
        let unix = writer.is_unix();
        let schema =
            crate::schema_slot::SchemaSlot::new(&opts.schema, writer.peer_pid(), &greeting);
        // Before the connection task starts: the first events it reads
        // are judged by the given schema too.
        if let crate::options::SchemaPolicy::Given(s) = &opts.schema {
            let _ = shared.schema.set(s.clone());
        }
        tokio::spawn(connection::run(Parts {
            reader,
            writer,
            in_band: in_band_rx,
            oob: oob_rx,
            handles_gone: alive_rx,
            shared: shared.clone(),
            max_message: opts.max_message,
            max_in_flight: opts.max_in_flight.max(1),
            in_band_ids: opts.in_band_ids,
        }));
        let series = version_of(&greeting).series();
        let covered_label = qmp_types::VERSIONS.iter().copied().find(|label| {
            qmp_types::rt::QemuVersion::parse(label).is_some_and(|v| v.series() == series)
        });
        Ok(Client {
            inner: Arc::new(Inner {
                in_band: in_band_tx,
                oob: oob_tx,
                _alive: alive_tx,
                shared,
                greeting,
                covered_label,
                opts,
                unix,
                schema,
            }),
        })
    }
}
