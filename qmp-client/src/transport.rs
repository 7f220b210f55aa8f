//! The socket: dialling with a deadline, and the write half the
//! connection task writes commands to (a Unix socket, which can pass file
//! descriptors, or any byte stream).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::record::{Dir, Tap};

/// The read half, as the connection task reads it.
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// How long the task lets the socket's shutdown take at the end.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

/// Connects with a deadline; either failure is [`Error::Connect`].
pub(crate) async fn dial<T>(
    address: &str,
    timeout: Duration,
    connect: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T> {
    let failed = |source| Error::Connect {
        address: address.to_string(),
        source,
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| {
            failed(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "dial timed out",
            ))
        })?
        .map_err(failed)
}

/// Dials the Unix socket at `path`, again and again while it does not
/// exist or nobody listens on it (a QEMU starting), within `timeout` (as
/// [`dial`]); then the last refusal, saying how long it was waited for.
pub(crate) async fn dial_appearing(
    path: &std::path::Path,
    timeout: Duration,
) -> Result<tokio::net::UnixStream> {
    let deadline = tokio::time::Instant::now() + timeout;
    let appeared = async {
        let mut pause = Duration::from_millis(5);
        loop {
            let e = match tokio::net::UnixStream::connect(path).await {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    e
                }
                other => return other,
            };
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{e} (waited {timeout:?} for it to appear)"),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    };
    dial(&path.display().to_string(), timeout, appeared).await
}

/// The write half: a Unix socket (which can pass fds) or any stream,
/// and the recording what is written goes to, if any.
pub(crate) struct Writer {
    half: Half,
    tap: Option<Arc<Tap>>,
    /// The process on the other end of a Unix socket (`SO_PEERCRED`).
    peer_pid: Option<i32>,
}

enum Half {
    Unix(tokio::net::unix::OwnedWriteHalf),
    Other(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Writer {
    /// Whether file descriptors can pass (a Unix socket).
    pub(crate) fn is_unix(&self) -> bool {
        matches!(self.half, Half::Unix(_))
    }

    /// The process on the other end, for a Unix socket whose peer the
    /// kernel names.
    pub(crate) fn peer_pid(&self) -> Option<i32> {
        self.peer_pid
    }

    fn sent(&self, bufs: &[IoSlice<'_>], mut n: usize) {
        if let Some(tap) = &self.tap {
            for b in bufs {
                let k = n.min(b.len());
                tap.bytes(Dir::Send, &b[..k]);
                n -= k;
                if n == 0 {
                    break;
                }
            }
        }
    }

    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.half {
            Half::Unix(u) => u.write_all(bytes).await?,
            Half::Other(o) => {
                o.write_all(bytes).await?;
                o.flush().await?;
            }
        }
        self.sent(&[IoSlice::new(bytes)], bytes.len());
        Ok(())
    }

    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = self.poll_write_vectored_untapped(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.sent(bufs, n);
        }
        r
    }

    fn poll_write_vectored_untapped(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.half {
            Half::Unix(u) => Pin::new(u).poll_write_vectored(cx, bufs),
            Half::Other(o) => match Pin::new(&mut **o).poll_write_vectored(cx, bufs) {
                Poll::Ready(Ok(n)) => {
                    // A buffered writer must not sit on a command.
                    match Pin::new(&mut **o).poll_flush(cx) {
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        _ => Poll::Ready(Ok(n)),
                    }
                }
                other => other,
            },
        }
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.half {
            Half::Unix(_) => Poll::Ready(Ok(())),
            Half::Other(o) => Pin::new(&mut **o).poll_flush(cx),
        }
    }

    /// Sends `bytes` with `fds` (SCM_RIGHTS) in one `sendmsg`; how many
    /// bytes went.
    pub(crate) fn poll_send_fds(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
        fds: &[OwnedFd],
    ) -> Poll<std::io::Result<usize>> {
        let r = self.poll_send_fds_untapped(cx, bytes, fds);
        if let Poll::Ready(Ok(n)) = r {
            self.sent(&[IoSlice::new(bytes)], n);
        }
        r
    }

    fn poll_send_fds_untapped(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &[u8],
        fds: &[OwnedFd],
    ) -> Poll<std::io::Result<usize>> {
        let Half::Unix(u) = &self.half else {
            return Poll::Ready(Err(std::io::Error::other("fd passing needs a Unix socket")));
        };
        let stream: &tokio::net::UnixStream = u.as_ref();
        let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        loop {
            match stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            let r = stream.try_io(tokio::io::Interest::WRITABLE, || {
                let iov = [IoSlice::new(bytes)];
                let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
                nix::sys::socket::sendmsg::<()>(
                    stream.as_raw_fd(),
                    &iov,
                    &cmsg,
                    nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                    None,
                )
                .map_err(std::io::Error::from)
            });
            match r {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    pub(crate) async fn shutdown(&mut self) {
        let r = match &mut self.half {
            Half::Unix(u) => tokio::time::timeout(SHUTDOWN_GRACE, u.shutdown()).await,
            Half::Other(o) => tokio::time::timeout(SHUTDOWN_GRACE, o.shutdown()).await,
        };
        if let Ok(Err(e)) = r {
            tracing::trace!(error = %e, "socket shutdown failed");
        }
    }
}

/// A connected Unix stream's halves (fds can be passed).
pub(crate) fn unix(stream: tokio::net::UnixStream) -> (Reader, Writer) {
    let peer_pid = stream.peer_cred().ok().and_then(|c| c.pid());
    let (r, w) = stream.into_split();
    (
        Box::new(r),
        Writer {
            half: Half::Unix(w),
            tap: None,
            peer_pid,
        },
    )
}

/// Any byte stream's halves (no fd passing).
pub(crate) fn stream<S>(stream: S) -> (Reader, Writer)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(stream);
    (
        Box::new(r),
        Writer {
            half: Half::Other(Box::new(w)),
            tap: None,
            peer_pid: None,
        },
    )
}

/// Records both halves of a connection at `path` ([`crate::Options::record`]).
pub(crate) fn record(
    reader: Reader,
    writer: &mut Writer,
    path: &std::path::Path,
    limit: u64,
) -> Result<(Reader, Arc<Tap>)> {
    let tap = Tap::create(path, limit).map_err(|source| Error::Record {
        path: path.to_path_buf(),
        source,
    })?;
    writer.tap = Some(tap.clone());
    Ok((
        Box::new(TapReader {
            inner: reader,
            tap: tap.clone(),
        }),
        tap,
    ))
}

/// A read half whose bytes also go to a recording.
struct TapReader {
    inner: Reader,
    tap: Arc<Tap>,
}

impl AsyncRead for TapReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            self.tap.bytes(Dir::Recv, &buf.filled()[before..]);
        }
        r
    }
}
