//! Which members and branches the generator boxes for size (`boxing.rs`):
//! a union branch, or an optional member, whose type takes 128 estimated
//! bytes or more; never a required member, never a small one.

use qapi_gen::rust::{Options, generate};
use qapi_gen::{MemLoader, Schema};

/// The generated source of `schema` (one module), whitespace removed so
/// that formatting doesn't matter.
fn generated(schema: &str) -> String {
    let mut l = MemLoader::new();
    l.insert("s.json", schema.as_bytes().to_vec());
    let schema = Schema::load_with(&l, "s.json").expect("the schema loads");
    let files = generate(&schema, &Options::default()).expect("generates");
    files
        .iter()
        .map(|f| f.contents.as_str())
        .collect::<String>()
        .split_whitespace()
        .collect()
}

/// 16 `int` members and `extra`: 136 bytes; 4 `int` and `extra`: 40.
const TYPES: &str = "
{ 'struct': 'Big', 'data': { 'a1': 'int', 'a2': 'int', 'a3': 'int', 'a4': 'int',
  'a5': 'int', 'a6': 'int', 'a7': 'int', 'a8': 'int', 'a9': 'int', 'a10': 'int',
  'a11': 'int', 'a12': 'int', 'a13': 'int', 'a14': 'int', 'a15': 'int', 'a16': 'int' } }
{ 'struct': 'Small', 'data': { 'b1': 'int', 'b2': 'int', 'b3': 'int', 'b4': 'int' } }
{ 'enum': 'Kind', 'data': [ 'big', 'small', 'none' ] }
";

#[test]
fn a_large_branch_is_boxed_a_small_one_is_not() {
    let out = generated(&format!(
        "{TYPES}
{{ 'union': 'Choice', 'base': {{ 'kind': 'Kind' }}, 'discriminator': 'kind',
  'data': {{ 'big': 'Big', 'small': 'Small' }} }}"
    ));
    assert!(out.contains("Big(::std::boxed::Box<Big>),"), "{out}");
    assert!(out.contains("Small(Small),"), "{out}");
    // Building a value still takes the struct.
    assert!(
        out.contains("impl::std::convert::From<Big>forChoice{fnfrom(x:Big)->Self{Self::Big(::std::boxed::Box::new(x))"),
        "{out}"
    );
    assert!(out.contains("pubfnbig(x:impl::std::convert::Into<Big>)->Self{Self::Big(::std::boxed::Box::new(x.into()))"), "{out}");
}

#[test]
fn a_large_optional_member_is_boxed_a_required_one_is_not() {
    let out = generated(&format!(
        "{TYPES}
{{ 'struct': 'Holder', 'data': {{ '*maybe': 'Big', 'always': 'Big', '*little': 'Small' }} }}"
    ));
    assert!(
        out.contains("pubmaybe:::std::option::Option<::std::boxed::Box<Big>>,"),
        "{out}"
    );
    assert!(out.contains("pubalways:Big,"), "{out}");
    assert!(
        out.contains("publittle:::std::option::Option<Small>,"),
        "{out}"
    );
    // The setter takes the value and boxes it.
    assert!(
        out.contains("with_maybemaybe_maybemaybe\"maybe\":Big=>boxed"),
        "{out}"
    );
}

#[test]
fn the_estimate_counts_boxes_nested_types_and_the_threshold() {
    // 15 `int` and `extra`: 128 bytes, boxed; 14 and `extra`: 120, not.
    let fields = |n: usize| {
        (1..=n)
            .map(|i| format!("'m{i}': 'int'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let out = generated(&format!(
        "{{ 'struct': 'At', 'data': {{ {} }} }}
{{ 'struct': 'Below', 'data': {{ {} }} }}
{{ 'struct': 'Outer', 'data': {{ 'inner': 'Below', 'x': 'int' }} }}
{{ 'struct': 'Holder', 'data': {{ '*at': 'At', '*below': 'Below', '*outer': 'Outer' }} }}",
        fields(15),
        fields(14)
    ));
    assert!(
        out.contains("pubat:::std::option::Option<::std::boxed::Box<At>>,"),
        "{out}"
    );
    assert!(
        out.contains("pubbelow:::std::option::Option<Below>,"),
        "{out}"
    );
    // Outer holds Below inline (required): 120 + 8 + 8 bytes.
    assert!(
        out.contains("pubouter:::std::option::Option<::std::boxed::Box<Outer>>,"),
        "{out}"
    );
}

#[test]
fn a_large_event_is_boxed_in_any_event() {
    let out = generated(&format!(
        "{TYPES}
{{ 'event': 'BIG_ONE', 'data': 'Big' }}
{{ 'event': 'SMALL_ONE', 'data': 'Small' }}
{{ 'event': 'NONE' }}"
    ));
    assert!(out.contains("(BigOne,\"BIG_ONE\",true)"), "{out}");
    assert!(out.contains("(SmallOne,\"SMALL_ONE\"),"), "{out}");
    assert!(out.contains("boxed:true,"), "{out}");
    assert_eq!(out.matches("boxed:true").count(), 1, "{out}");
}
