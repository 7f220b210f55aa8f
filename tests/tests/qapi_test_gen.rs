//! Round trips through the code generated from QEMU's
//! `qapi-schema-test.json` (in `tests/src/qapi_test`, compiled under
//! `#[deny(warnings)]`): unions (flat, nested, with empty branches),
//! alternates of every JSON type, `if` conditions and features.

#![allow(deprecated, reason = "the schema marks members deprecated on purpose")]

use qmp_types::Command;
use serde_json::{Value, json};
use tests::qapi_test::*;

fn roundtrip<T>(v: Value) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let typed: T = serde_json::from_value(v.clone()).expect("decodes");
    assert_eq!(
        serde_json::to_value(&typed).expect("encodes"),
        v,
        "round trip of {v}"
    );
    typed
}

#[test]
fn flat_union_with_base_chain() {
    // Base UserDefUnionBase (itself based on UserDefZero) + branch by enum1.
    let v = json!({"integer": 1, "string": "s", "enum1": "value1", "boolean": true, "a_b": 7});
    let u: UserDefFlatUnion = roundtrip(v);
    assert_eq!(u.integer, 1);
    match &u.branch {
        UserDefFlatUnionBranch::Value1(a) => {
            assert!(a.boolean);
            assert_eq!(a.a_b, Some(7));
        }
        other => panic!("{other:?}"),
    }
    // value2 and value3 share a type; value4 has no branch members.
    let u: UserDefFlatUnion =
        roundtrip(json!({"integer": 1, "string": "s", "enum1": "value3", "intb": 2, "a-b": false}));
    assert!(
        matches!(u.branch, UserDefFlatUnionBranch::Value3(ref b) if b.intb == 2 && b.a_b == Some(false))
    );
    let u: UserDefFlatUnion = roundtrip(json!({"integer": 1, "string": "s", "enum1": "value4"}));
    assert_eq!(u.branch, UserDefFlatUnionBranch::Value4);
    assert_eq!(u.branch.tag(), "value4");
}

#[test]
fn union_in_union() {
    let v = json!({"type": "value-a", "type-a": "value-a1", "integer": 3, "name": "n"});
    let u: TestUnionInUnion = roundtrip(v);
    assert!(matches!(
        u,
        TestUnionInUnion::ValueA(TestUnionTypeA::ValueA1(_))
    ));
    let _: TestUnionInUnion = roundtrip(json!({"type": "value-b", "integer": 4, "onoff": true}));
}

#[test]
fn alternates_of_every_json_type() {
    let a: UserDefAlternate = roundtrip(json!("value2"));
    assert_eq!(a, UserDefAlternate::E(EnumOne::Value2));
    let a: UserDefAlternate = roundtrip(json!(42));
    assert_eq!(a, UserDefAlternate::I(42));
    let a: UserDefAlternate = roundtrip(json!(null));
    assert_eq!(a, UserDefAlternate::N);
    let a: UserDefAlternate = roundtrip(json!({"integer": 1, "string": "s", "enum1": "value4"}));
    assert!(matches!(a, UserDefAlternate::Udfu(_)));
    // number vs. enum, in both orders; a float is not an int.
    let n: AltEnumNum = roundtrip(json!(1.5));
    assert_eq!(n, AltEnumNum::from(1.5));
    assert!(matches!(n, AltEnumNum::N(x) if x.get() == 1.5));
    let n: AltNumEnum = roundtrip(json!("value1"));
    assert_eq!(n, AltNumEnum::E(EnumOne::Value1));
    assert!(serde_json::from_value::<AltEnumInt>(json!(1.5)).is_err());
    let l: AltListInt = roundtrip(json!([1, 2, 3]));
    assert_eq!(l, AltListInt::L(vec![1, 2, 3]));
    let b: AltEnumBool = roundtrip(json!(true));
    assert_eq!(b, AltEnumBool::B(true));
    let s: AltStrObj = roundtrip(json!("x"));
    assert_eq!(s, AltStrObj::S("x".into()));
    let bad = serde_json::from_value::<AltStrObj>(json!(true)).expect_err("no bool branch");
    assert!(bad.to_string().contains("got a boolean"), "{bad}");
}

#[test]
fn conditional_members_exist_and_say_so() {
    // `bar` is under an `if`: QEMU built without it does not send it, so
    // it is optional although the schema requires it.
    let s = TestIfStruct::new(1i64).with_bar(2i64).with_baz("z");
    let _: TestIfStruct = roundtrip(serde_json::to_value(&s).expect("encodes"));
    let _: TestIfStruct = roundtrip(json!({"foo": 1}));
    assert_eq!(
        <TestIfCmd as Command>::META.condition,
        Some("all(TEST_IF_CMD, TEST_IF_STRUCT)")
    );
    assert_eq!(<TestIfCmd as Command>::NAME, "test-if-cmd");
    let e: TestIfEnum = roundtrip(json!("bar"));
    assert_eq!(e, TestIfEnum::Bar);
    let u: TestIfUnion = roundtrip(json!({"type": "bar", "integer": 5}));
    assert!(matches!(u, TestIfUnion::Bar(_)));
    let m = EVENTS
        .iter()
        .find(|m| m.name == "TEST_IF_EVENT")
        .expect("listed");
    assert_eq!(m.condition, Some("all(TEST_IF_EVT, TEST_IF_STRUCT)"));
}

#[test]
fn features_reach_metadata() {
    let m = std::hint::black_box(<TestCommandFeatures1 as Command>::META);
    assert!(m.deprecated && !m.unstable);
    let m = std::hint::black_box(<TestCommandFeatures3 as Command>::META);
    assert!(m.unstable);
    assert_eq!(m.features, &["unstable", "feature1", "feature2"]);
    // A deprecated member is still on the wire.
    let _: FeatureStruct1 = roundtrip(json!({"foo": 1}));
}

#[test]
fn boxed_and_empty_commands_and_events() {
    assert_eq!(
        serde_json::to_value(BoxedStruct(UserDefZero::new(3i64))).expect("encodes"),
        json!({"integer": 3})
    );
    assert_eq!(
        serde_json::to_value(CmdSuccessResponse::new()).expect("encodes"),
        json!({})
    );
    let meta = std::hint::black_box(<CmdSuccessResponse as Command>::META);
    assert!(!meta.success_response);
    let e = AnyEvent::deserialize_data("EVENT_E", json!({"integer": 9})).expect("decodes");
    assert!(matches!(e, AnyEvent::EventE(EventE(ref z)) if z.integer == 9));
    let e = AnyEvent::deserialize_data("EVENT_A", json!({})).expect("decodes");
    assert_eq!(e.name(), "EVENT_A");
}

#[test]
fn downstream_names_are_valid_rust() {
    // `__org.qemu_x-Enum` and friends.
    let e: OrgQemuXEnum = roundtrip(json!("__org.qemu_x-value"));
    assert_eq!(e.as_str(), "__org.qemu_x-value");
    let _ = <OrgQemuXCommand as Command>::NAME;
}
