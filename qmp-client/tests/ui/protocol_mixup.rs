//! A guest agent command can't go to QEMU's monitor, nor a QMP command to
//! the guest agent.

async fn mixup(qmp: qmp_client::Client, ga: qmp_client::agent::GuestAgent) {
    let _ = qmp.execute(qmp_types::qga::GuestPing::new()).await;
    let _ = ga.execute(qmp_types::QueryStatus::new()).await;
}

fn main() {
    let _ = mixup;
}
