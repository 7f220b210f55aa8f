//! A human monitor (HMP) command: `info vnc`.
//!
//! `cargo run -p qmp-examples --example hmp [SOCKET]` (starts a private
//! `qemu-system-x86_64` when no socket is given).

use qmp_client::launch::Launcher;
use qmp_client::{Client, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_qemu, mon) = match std::env::args().nth(1) {
        Some(p) => (None, Client::connect_unix(p, Options::default()).await?),
        None => {
            let q = Launcher::system_x86_64().guestless().start().await?;
            let mon = q.connect(Options::default()).await?;
            (Some(q), mon)
        }
    };
    let out = mon.human("info vnc").await?;
    print!("{out}");
    Ok(())
}
