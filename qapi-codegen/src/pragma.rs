//! Pragmas: the schema-wide settings a schema declares with
//! `{ 'pragma': { ... } }`, which the checks of later stages consult.

/// Pragmas: schema-wide settings (`{ 'pragma': { ... } }`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pragma {
    /// Whether every definition needs a doc comment.
    pub doc_required: bool,
    /// Commands whose names may use `_`.
    pub command_name_exceptions: Vec<String>,
    /// Commands that may return a non-object type.
    pub command_returns_exceptions: Vec<String>,
    /// Definitions whose members may lack documentation.
    pub documentation_exceptions: Vec<String>,
    /// Whether the schema declares `documentation-exceptions` at all. QEMU
    /// introduced that pragma together with the rule that every member
    /// be documented; schemas older than the rule (QEMU 7.2) lack both,
    /// and the rule is enforced only for schemas that declare the pragma.
    pub documentation_exceptions_declared: bool,
    /// Types whose member names may use uppercase or `_`.
    pub member_name_exceptions: Vec<String>,
}
