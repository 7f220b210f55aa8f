//! A file in the guest as an `AsyncRead + AsyncWrite`, through
//! `guest-file-*`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine as _;
use qmp_types::qga::{
    GuestFileClose, GuestFileFlush, GuestFileOpen, GuestFileReadCommand, GuestFileWriteCommand,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::GuestAgent;
use crate::error::{Error, Result};

/// Bytes moved per `guest-file-read`/`guest-file-write` (the agent's own
/// limit on one read is 48 MiB; smaller keeps each call short).
const CHUNK: usize = 1 << 20;

type Op<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// An open file in the guest ([`GuestAgent::open`]). Reads and writes go
/// through the agent a chunk at a time. Close it with
/// `AsyncWriteExt::shutdown` (or [`GuestFile::close`]); dropping it closes
/// it in a task of the current runtime.
pub struct GuestFile {
    agent: GuestAgent,
    handle: i64,
    read_buf: Vec<u8>,
    read_pos: usize,
    eof: bool,
    reading: Option<Op<(Vec<u8>, bool)>>,
    writing: Option<Op<usize>>,
    flushing: Option<Op<()>>,
    closing: Option<Op<()>>,
    closed: bool,
}

impl std::fmt::Debug for GuestFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestFile")
            .field("handle", &self.handle)
            .field("closed", &self.closed)
            .finish()
    }
}

fn io(e: Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl GuestAgent {
    /// Opens a file in the guest (`guest-file-open`); `mode` as `fopen`'s
    /// (`"r"`, `"w"`, `"a+"`, ...).
    pub async fn open(&self, path: &str, mode: &str) -> Result<GuestFile> {
        let handle = self
            .execute(GuestFileOpen::new(path).with_mode(mode))
            .await?;
        Ok(GuestFile {
            agent: self.clone(),
            handle,
            read_buf: Vec::new(),
            read_pos: 0,
            eof: false,
            reading: None,
            writing: None,
            flushing: None,
            closing: None,
            closed: false,
        })
    }
}

impl GuestFile {
    /// The agent's handle for it.
    pub fn handle(&self) -> i64 {
        self.handle
    }

    /// Closes it (`guest-file-close`).
    pub async fn close(mut self) -> Result<()> {
        self.closed = true;
        self.agent.execute(GuestFileClose::new(self.handle)).await
    }
}

impl AsyncRead for GuestFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.read_pos < this.read_buf.len() {
                let n = buf.remaining().min(this.read_buf.len() - this.read_pos);
                buf.put_slice(&this.read_buf[this.read_pos..this.read_pos + n]);
                this.read_pos += n;
                return Poll::Ready(Ok(()));
            }
            if this.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let op = this.reading.get_or_insert_with(|| {
                let agent = this.agent.clone();
                let handle = this.handle;
                Box::pin(async move {
                    let r = agent
                        .execute(GuestFileReadCommand::new(handle).with_count(CHUNK as i64))
                        .await?;
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(&r.buf_b64)
                        .map_err(|e| {
                            Error::Protocol(format!("guest-file-read: data is not base64: {e}"))
                        })?;
                    Ok((data, r.eof))
                })
            });
            let r = ready!(op.as_mut().poll(cx));
            this.reading = None;
            let (data, eof) = r.map_err(io)?;
            this.eof = eof || data.is_empty();
            this.read_buf = data;
            this.read_pos = 0;
        }
    }
}

impl AsyncWrite for GuestFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let op = this.writing.get_or_insert_with(|| {
            let agent = this.agent.clone();
            let handle = this.handle;
            let chunk = &buf[..buf.len().min(CHUNK)];
            let data = base64::engine::general_purpose::STANDARD.encode(chunk);
            Box::pin(async move {
                let r = agent
                    .execute(GuestFileWriteCommand::new(handle, data))
                    .await?;
                usize::try_from(r.count).map_err(|_| {
                    Error::Protocol(format!("guest-file-write wrote {} bytes", r.count))
                })
            })
        });
        let r = ready!(op.as_mut().poll(cx));
        this.writing = None;
        Poll::Ready(r.map_err(io))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        let op = this.flushing.get_or_insert_with(|| {
            let agent = this.agent.clone();
            let handle = this.handle;
            Box::pin(async move { agent.execute(GuestFileFlush::new(handle)).await })
        });
        let r = ready!(op.as_mut().poll(cx));
        this.flushing = None;
        Poll::Ready(r.map_err(io))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.closed && this.closing.is_none() {
            return Poll::Ready(Ok(()));
        }
        let op = this.closing.get_or_insert_with(|| {
            let agent = this.agent.clone();
            let handle = this.handle;
            Box::pin(async move { agent.execute(GuestFileClose::new(handle)).await })
        });
        let r = ready!(op.as_mut().poll(cx));
        this.closing = None;
        this.closed = true;
        Poll::Ready(r.map_err(io))
    }
}

impl Drop for GuestFile {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let agent = self.agent.clone();
        let handle = self.handle;
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                if let Err(e) = agent.execute(GuestFileClose::new(handle)).await {
                    tracing::warn!(handle, error = %e, "could not close a guest file");
                }
            });
        } else {
            tracing::warn!(
                handle,
                "GuestFile dropped outside a tokio runtime: left open in the guest"
            );
        }
    }
}
