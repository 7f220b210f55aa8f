//! `MockAgent`: the guest agent's double, synchronisation included.

use qmp_client::agent::AgentOptions;
use qmp_client::testing::MockAgent;
use qmp_client::{Error, ErrorClass};
use qmp_types::qga::*;

use super::bounded;

#[tokio::test]
async fn the_agent_double_syncs_checks_and_answers_typed() {
    let mock = MockAgent::with_version("10.0.2").expect("covered");
    mock.expect::<GuestPing>();
    mock.expect::<GuestGetHostName>()
        .reply(GuestHostName::new("vm0"));
    mock.expect::<GuestFsfreezeFreeze>().fail(
        ErrorClass::GenericError,
        "failed to freeze /: Device or resource busy",
    );
    let ga = bounded(mock.connect(AgentOptions::default()))
        .await
        .expect("synchronised with guest-sync-delimited");
    ga.execute(GuestPing::new()).await.expect("ping");
    let host = ga
        .execute(GuestGetHostName::new())
        .await
        .expect("host name");
    assert_eq!(host.host_name, "vm0");
    let err = ga
        .execute(GuestFsfreezeFreeze::new())
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("Device or resource busy"), "{err}");
    // Unscripted, and an argument the agent's schema lacks.
    let err = ga.execute(GuestInfo::new()).await.expect_err("unexpected");
    assert!(
        err.to_string().contains("unexpected command guest-info"),
        "{err}"
    );
    let text = match mock.verify() {
        Err(Error::Mock(t)) => t,
        other => panic!("{other:?}"),
    };
    assert!(text.contains("unexpected command guest-info"), "{text}");
    let names: Vec<String> = mock.calls().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "guest-ping",
            "guest-get-host-name",
            "guest-fsfreeze-freeze",
            "guest-info"
        ]
    );
}
