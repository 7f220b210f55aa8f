//! What must not compile: a command of one protocol sent with the other
//! protocol's client (`tests/ui/`, checked with trybuild).

#[test]
fn a_command_goes_only_to_its_own_protocol() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
