//! The seed's second example: a human monitor command (`info vnc`).
//!
//! `cargo run --example hmp [SOCKET]` (starts a private
//! `qemu-system-x86_64` when no socket is given).

use qmp_client::{Client, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_qemu, socket) = match std::env::args().nth(1) {
        Some(p) => (None, std::path::PathBuf::from(p)),
        None => {
            let q = tests::Qemu::system(&[])?;
            let s = q.socket.clone();
            (Some(q), s)
        }
    };
    let mon = Client::connect_unix(&socket, Options::default()).await?;
    let out = mon.human("info vnc").await?;
    print!("{out}");
    Ok(())
}
