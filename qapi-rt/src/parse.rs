//! Parsing a caller's string into a generated enum ([`ParseEnumError`]):
//! unlike the wire, where a value a newer QEMU added is kept as
//! `Unknown`, a string a program chose must name a value the bindings
//! know, so a typo fails here instead of reaching QEMU.

use std::fmt;

/// A string that names none of an enum's values (`FromStr` of every
/// generated enum). To take any string, as from the wire, use the enum's
/// `from_wire`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseEnumError {
    /// The enum's name (`BlockdevAioOptions`).
    pub type_name: &'static str,
    /// The string given.
    pub value: String,
    /// The values it could have been, as on the wire.
    pub expected: &'static [&'static str],
}

impl fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a {} value; expected one of: {}",
            self.value,
            self.type_name,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for ParseEnumError {}
