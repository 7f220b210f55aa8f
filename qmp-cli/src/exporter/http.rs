//! The exporter's HTTP side: `GET /metrics` (and `/` pointing to it),
//! one request per connection, bounded in size and time so that a slow
//! or hostile client costs a task and nothing else.

use std::sync::Arc;
use std::time::Duration;

use qmp_client::collector::Collector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::Result;

/// The longest request head read.
const MAX_HEAD: usize = 8 << 10;
/// How long a client has to send its request and read the reply.
const CLIENT_TIME: Duration = Duration::from_secs(10);
/// OpenMetrics' content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Accepts forever; each connection in a task of its own.
pub async fn serve(listener: TcpListener, collector: Arc<Collector>) -> Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, say: not a reason to stop serving;
                // a pause so as not to spin.
                eprintln!("qmp exporter: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let collector = collector.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLIENT_TIME, answer(stream, &collector)).await;
        });
    }
}

/// Reads one request head and answers it.
async fn answer(mut s: TcpStream, collector: &Collector) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return reply(
                &mut s,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"",
            )
            .await;
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let body = super::encode(collector);
            reply(&mut s, "200 OK", OPENMETRICS, body.as_bytes()).await
        }
        ("GET", "/") => {
            let body = b"qmp exporter: the metrics are at /metrics\n";
            reply(&mut s, "200 OK", "text/plain; charset=utf-8", body).await
        }
        ("GET", _) => reply(&mut s, "404 Not Found", "text/plain", b"not found\n").await,
        _ => {
            reply(
                &mut s,
                "405 Method Not Allowed",
                "text/plain",
                b"GET only\n",
            )
            .await
        }
    }
}

async fn reply(s: &mut TcpStream, status: &str, ty: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ty}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.shutdown().await
}
