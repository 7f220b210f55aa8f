//! The guest agent: ping, what the agent offers, a program run in the
//! guest with its output, a file written and read back.
//!
//! `cargo run -p qmp-examples --example guest_agent [SOCKET]` talks to the
//! agent socket given (the host side of a VM's virtio-serial port, or
//! `qemu-ga -m unix-listen`), or starts a private `qemu-ga` on this
//! machine (commands that would change this host disabled) when none is
//! given.

use qmp_client::agent::{AgentOptions, GuestAgent};
use qmp_client::launch::Launcher;
use qmp_types::qga::{GuestExecCommand, GuestInfo, GuestPing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (qga, ga) = match std::env::args().nth(1) {
        Some(p) => (
            None,
            GuestAgent::connect_unix(p, AgentOptions::default()).await?,
        ),
        None => {
            let q = Launcher::guest_agent().start().await?;
            println!(
                "started a private qemu-ga (pid {}) on {}",
                q.pid(),
                q.socket().display()
            );
            let ga = q.connect_agent(AgentOptions::default()).await?;
            (Some(q), ga)
        }
    };
    ga.execute(GuestPing::new()).await?;
    let info = ga.execute(GuestInfo::new()).await?;
    let enabled = info.supported_commands.iter().filter(|c| c.enabled).count();
    println!(
        "agent {}: {enabled} of {} commands enabled",
        info.version,
        info.supported_commands.len()
    );

    let out = ga
        .exec(GuestExecCommand::new("/bin/uname").with_arg(vec!["-sr".into()]))
        .await?;
    println!(
        "uname -sr exited with {:?}: {}",
        out.exit_code,
        String::from_utf8_lossy(&out.stdout).trim()
    );

    let dir = match &qga {
        Some(q) => q.dir().to_path_buf(),
        None => std::path::PathBuf::from("/tmp"),
    };
    let path = dir.join("qmp-rs-guest-agent-example.txt");
    let path = path.to_string_lossy();
    let mut f = ga.open(&path, "w").await?;
    f.write_all(b"written through guest-file-write\n").await?;
    f.shutdown().await?;
    let mut f = ga.open(&path, "r").await?;
    let mut text = String::new();
    f.read_to_string(&mut text).await?;
    f.close().await?;
    print!("{path}: {text}");
    Ok(())
}
