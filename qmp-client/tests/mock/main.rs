//! `qmp_client::testing`: the test double itself, tested as its users
//! would use it: typed expectations (order, counts, answers, events,
//! delays), schema checks per QEMU version, faults, the guest agent's
//! double, a Unix socket, and recorded sessions played back (recorded
//! from real QEMU 10.0.2 and 7.2, and libvirt's format).

mod agent;
mod collector;
mod events;
mod expectations;
mod faults;
mod introspection;
mod jobs;
mod replay;
mod replies;
mod schema;
mod scripted;

use std::time::Duration;

use qmp_client::testing::MockQemu;
use qmp_client::{Client, Error, Options};

/// A bound on anything that must not hang.
const BOUND: Duration = Duration::from_secs(10);

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f).await.expect("bounded")
}

async fn client(mock: &MockQemu) -> Client {
    bounded(mock.connect(Options::default()))
        .await
        .expect("connects to the mock")
}

/// The text of `verify`'s error.
fn problems(mock: &MockQemu) -> String {
    match mock.verify() {
        Err(Error::Mock(text)) => text,
        other => panic!("expected problems, got {other:?}"),
    }
}
