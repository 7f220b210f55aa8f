//! Scripted replies: checked against the reply type when scripted (the
//! problem named with the expectation's file and line), sent invalid on
//! purpose, or made from the few fields a test cares about.

use super::*;
use qmp_types::*;
use serde_json::json;

#[tokio::test]
async fn a_reply_missing_a_member_is_named_with_where_it_was_scripted() {
    let mock = MockQemu::new();
    let line = line!() + 1;
    mock.expect::<QueryNamedBlockNodes>().reply_json(json!([
        {"node-name": "disk0", "drv": "qcow2", "image": {"virtual-size": 1}}
    ]));
    let text = problems(&mock);
    assert!(
        text.contains(&format!("tests/mock/replies.rs:{line}")),
        "{text}"
    );
    assert!(text.contains("missing field"), "{text}");
    assert!(text.contains("query-named-block-nodes"), "{text}");
    // The call still gets it, as code under test would meet it.
    let c = client(&mock).await;
    let e = c
        .execute(QueryNamedBlockNodes::new())
        .await
        .expect_err("does not decode");
    assert!(e.to_string().contains("missing field"), "{e}");
}

#[tokio::test]
async fn an_invalid_reply_on_purpose_is_no_problem_of_the_script() {
    let mock = MockQemu::new();
    mock.expect::<QueryStatus>()
        .reply_invalid(json!({"running": "yes"}));
    let c = client(&mock).await;
    assert!(c.execute(QueryStatus::new()).await.is_err());
    mock.verify().expect("sent invalid on purpose");
}

#[tokio::test]
async fn a_reply_from_a_few_fields_is_completed_with_plain_fakes() {
    let mock = MockQemu::with_version("10.0.2").expect("covered");
    // The example of the issue: one node, with only what the code reads.
    mock.expect::<QueryNamedBlockNodes>().reply_with(json!([
        {"node-name": "disk0", "drv": "qcow2", "image": {"filename": "/vm/disk0.qcow2"}}
    ]));
    // A union (on `target`): its first branch unless the test names one.
    mock.expect::<QueryCpusFast>()
        .reply_with(json!([{"cpu-index": 0}, {"cpu-index": 1, "target": "s390x"}]));
    // A struct with nested required members, and an enum.
    mock.expect::<QueryStatus>()
        .reply_with(json!({"running": true}));
    let c = client(&mock).await;
    let nodes = c
        .execute(QueryNamedBlockNodes::new())
        .await
        .expect("decodes");
    assert_eq!(nodes[0].node_name.as_deref(), Some("disk0"));
    assert_eq!(nodes[0].image.filename, "/vm/disk0.qcow2");
    assert_eq!(nodes[0].file, "fake-file");
    assert_eq!(nodes[0].image.format, "fake-format");
    assert_eq!(nodes[0].iops, 0);
    assert!(!nodes[0].encrypted);
    let cpus = c.execute(QueryCpusFast::new()).await.expect("decodes");
    assert_eq!(cpus.len(), 2);
    assert_eq!(cpus[0].cpu_index, 0);
    assert_eq!(cpus[0].qom_path, "fake-qom-path");
    let s390x = serde_json::to_value(&cpus[1]).expect("encodes");
    assert_eq!(s390x["target"], "s390x");
    assert!(s390x.get("cpu-state").is_some(), "{s390x}");
    let st = c.execute(QueryStatus::new()).await.expect("decodes");
    assert!(st.running);
    mock.verify().expect("all valid");
}
