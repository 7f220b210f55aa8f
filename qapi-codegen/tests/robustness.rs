//! Bad input of every kind gives an error, never a panic or a hang.

use qapi_gen::{Error, MemLoader, Schema};

fn load(text: &[u8]) -> Result<Schema, Error> {
    let mut loader = MemLoader::new();
    loader.insert("s.json", text.to_vec());
    Schema::load_with(&loader, "s.json")
}

fn message(text: &[u8]) -> String {
    match load(text) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// xorshift: deterministic junk without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let len = (rng.next() % 200) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = load(&bytes);
    }
}

#[test]
fn random_schema_tokens_never_panic() {
    const TOKENS: [&str; 24] = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "'struct'",
        "'union'",
        "'enum'",
        "'alternate'",
        "'command'",
        "'event'",
        "'data'",
        "'base'",
        "'discriminator'",
        "'Foo'",
        "'*x'",
        "'int'",
        "'if'",
        "'features'",
        "true",
        "'include'",
        "\n##\n# @Foo:\n##\n",
        "'Bar'",
    ];
    let mut rng = Rng(42);
    for _ in 0..5000 {
        let n = 1 + (rng.next() % 40) as usize;
        let text: String = (0..n)
            .map(|_| TOKENS[(rng.next() % TOKENS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ");
        let _ = load(text.as_bytes());
    }
}

#[test]
fn deep_nesting_is_an_error() {
    let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let msg = message(text.as_bytes());
    assert!(msg.contains("nest more than"), "{msg}");
}

#[test]
fn deep_if_nesting_is_an_error() {
    let mut cond = "'A'".to_string();
    for _ in 0..1000 {
        cond = format!("{{'not': {cond}}}");
    }
    let text = format!("{{ 'struct': 'Foo', 'data': {{}}, 'if': {cond} }}");
    let msg = message(text.as_bytes());
    assert!(msg.contains("nest more than"), "{msg}");
}

#[test]
fn long_base_chains_are_an_error_not_a_stack_overflow() {
    let mut text = String::from("{ 'struct': 'Sx0', 'data': {} }\n");
    for i in 1..5000 {
        text.push_str(&format!(
            "{{ 'struct': 'Sx{i}', 'base': 'Sx{}', 'data': {{ 'm{i}': 'int' }} }}\n",
            i - 1
        ));
    }
    // Checked from the last definition's view: S1 first, which is fine;
    // so reverse the order to make the first check descend the whole chain.
    let lines: Vec<&str> = text.lines().rev().collect();
    let msg = message(lines.join("\n").as_bytes());
    assert!(msg.contains("types nest too deeply"), "{msg}");
}

#[test]
fn invalid_utf8_is_an_error() {
    let msg = message(b"{ 'enum': 'Foo',\n 'data': [ '\xff' ] }");
    assert_eq!(
        msg,
        "s.json:2: invalid UTF-8 (at byte offset 29); schema files must be UTF-8"
    );
}

#[test]
fn missing_files_are_errors() {
    let msg = message(b"{ 'include': 'nope.json' }");
    assert_eq!(
        msg,
        "s.json:1: can't read include file 'nope.json': entity not found"
    );
    let e = Schema::load("/nonexistent/schema.json").expect_err("error");
    assert_eq!(
        e.to_string(),
        "can't read schema file '/nonexistent/schema.json': No such file or directory"
    );
}

#[test]
fn huge_schema_loads() {
    let mut text = String::new();
    for i in 0..40_000 {
        text.push_str(&format!(
            "{{ 'enum': 'Enum{i}', 'data': [ 'a', 'b', 'c' ] }}\n{{ 'struct': 'Struct{i}', 'data': {{ 'x': 'Enum{i}', '*y': ['int'] }} }}\n"
        ));
    }
    assert!(text.len() > 4_000_000);
    let schema = load(text.as_bytes()).expect("valid");
    assert!(schema.lookup("Struct39999").is_some());
}

#[test]
fn errors_carry_their_location() {
    let e = load(b"{ 'struct': 'Foo',\n  'data': { 'a': 'Nope' } }").expect_err("error");
    let d = e.diagnostic().expect("schema error");
    assert_eq!((d.file.as_str(), d.line, d.col), ("s.json", 1, None));
    assert_eq!(d.message, "member 'a' uses unknown type 'Nope'");
    assert_eq!(
        d.rendered,
        "s.json: In struct 'Foo':\ns.json:1: member 'a' uses unknown type 'Nope'"
    );
}

#[test]
fn long_member_chains_generate_without_a_stack_overflow() {
    // Each struct holds the previous one as an optional member: sizing
    // them for boxing (boxing.rs) walks the chain.
    let mut text = String::from("{ 'struct': 'Mx0', 'data': { 'a': 'int' } }\n");
    for i in 1..5000 {
        text.push_str(&format!(
            "{{ 'struct': 'Mx{i}', 'data': {{ '*inner': 'Mx{}', 'b{i}': 'int' }} }}\n",
            i - 1
        ));
    }
    let lines: Vec<&str> = text.lines().rev().collect();
    let schema = load(lines.join("\n").as_bytes()).expect("a valid schema");
    let files =
        qapi_gen::rust::generate(&schema, &qapi_gen::rust::Options::default()).expect("generates");
    let all: String = files.iter().map(|f| f.contents.as_str()).collect();
    // A link grows by 16 bytes per level until it is large enough to be
    // boxed, then starts small again: every eighth or so is boxed.
    let boxed = all
        .matches("::std::option::Option<::std::boxed::Box<Mx")
        .count();
    assert!((400..1000).contains(&boxed), "{boxed} of 4999 links boxed");
}
