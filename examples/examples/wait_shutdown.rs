//! Wait for SHUTDOWN while another task makes
//! the machine go away. A guestless QEMU ignores `system_powerdown`, so
//! this sends `quit`.
//!
//! `cargo run -p qmp-examples --example wait_shutdown [SOCKET]` (starts a private
//! `qemu-system-x86_64` when no socket is given).

use std::time::Duration;

use qmp_client::launch::Launcher;
use qmp_client::{Client, Options};
use qmp_types::{Quit, Shutdown};

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
    let since = mon.event_cursor();
    let waiter = {
        let mon = mon.clone();
        tokio::spawn(async move {
            mon.events_of::<Shutdown>(since)
                .wait(Duration::from_secs(10))
                .await
        })
    };
    println!("sleeping for a second ...");
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("... and sending 'quit'");
    // QEMU may hang up before or after its reply.
    if let Err(e) = mon.execute(Quit::new()).await
        && !e.is_socket_closed()
    {
        return Err(e.into());
    }
    let (ts, ev) = waiter.await??;
    println!(
        "OK, got a SHUTDOWN event at {}.{:06}: {ev:?}",
        ts.seconds, ts.microseconds
    );
    Ok(())
}
