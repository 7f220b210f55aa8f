//! The socket: dialling with a deadline, and the write half the
//! connection task writes commands to (a Unix socket, which can pass file
//! descriptors, or any byte stream).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

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

/// The write half: a Unix socket (which can pass fds) or any stream.
pub(crate) enum Writer {
    Unix(tokio::net::unix::OwnedWriteHalf),
    Other(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Writer {
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Unix(u) => u.write_all(bytes).await,
            Writer::Other(o) => {
                o.write_all(bytes).await?;
                o.flush().await
            }
        }
    }

    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self {
            Writer::Unix(u) => Pin::new(u).poll_write_vectored(cx, bufs),
            Writer::Other(o) => match Pin::new(&mut **o).poll_write_vectored(cx, bufs) {
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
        match self {
            Writer::Unix(_) => Poll::Ready(Ok(())),
            Writer::Other(o) => Pin::new(&mut **o).poll_flush(cx),
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
        let Writer::Unix(u) = self else {
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
        let r = match self {
            Writer::Unix(u) => tokio::time::timeout(SHUTDOWN_GRACE, u.shutdown()).await,
            Writer::Other(o) => tokio::time::timeout(SHUTDOWN_GRACE, o.shutdown()).await,
        };
        if let Ok(Err(e)) = r {
            tracing::trace!(error = %e, "socket shutdown failed");
        }
    }
}

/// A connected Unix stream's halves (fds can be passed).
pub(crate) fn unix(stream: tokio::net::UnixStream) -> (Reader, Writer) {
    let (r, w) = stream.into_split();
    (Box::new(r), Writer::Unix(w))
}

/// Any byte stream's halves (no fd passing).
pub(crate) fn stream<S>(stream: S) -> (Reader, Writer)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(stream);
    (Box::new(r), Writer::Other(Box::new(w)))
}
