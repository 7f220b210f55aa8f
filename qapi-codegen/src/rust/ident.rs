//! Identifier rules, in one place: how QAPI names become Rust names.
//!
//! - fields: `snake_case`; types, variants: `UpperCamelCase` (via heck);
//! - Rust keywords become raw identifiers (`type` → `r#type`), except the
//!   ones that can't be raw (`self`, `Self`, `super`, `crate`, `_`), which
//!   get a trailing `_`;
//! - a name that starts with a digit gets a prefix (`_` for fields, `V`
//!   for variants and types);
//! - clashes inside one scope are broken by numbering (`foo`, `foo_2`),
//!   in schema order, so output is deterministic.

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span};

/// Strict and reserved keywords of Rust 2024 that can be raw identifiers.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Keywords that can't be raw identifiers.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Makes `name` (already cased) a valid identifier string: `r#` for
/// keywords, `_` suffix for the ones that can't be raw, `prefix` before a
/// leading digit, `_` for an empty name.
fn sanitize(name: &str, digit_prefix: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        s.push('_');
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, digit_prefix);
    }
    if NOT_RAW.contains(&s.as_str()) {
        s.push('_');
    } else if KEYWORDS.contains(&s.as_str()) {
        s.insert_str(0, "r#");
    }
    s
}

/// The module (and file) name for a schema file's stem: snake case, and
/// a keyword gets a trailing `_` instead of `r#`, so that the same string
/// is a valid identifier in every edition and a plain file name
/// (`type.json` → `mod type_;` in `type_.rs`).
pub fn module(stem: &str) -> String {
    let s = sanitize(&stem.to_snake_case(), "_");
    match s.strip_prefix("r#") {
        Some(k) => format!("{k}_"),
        None => s,
    }
}

/// A constant's name for QAPI name `name`: `SCREAMING_SNAKE_CASE`
/// (`BlockdevOptions` → `BLOCKDEV_OPTIONS`, `q_obj_device_del-arg` →
/// `Q_OBJ_DEVICE_DEL_ARG`).
pub fn constant(name: &str) -> String {
    sanitize(&name.to_shouty_snake_case(), "_")
}

/// The field name for QAPI member `name`.
pub fn field(name: &str) -> String {
    sanitize(&name.to_snake_case(), "_")
}

/// The type or variant name for QAPI name `name`. Names that are already
/// valid CamelCase identifiers (most QAPI type names) are kept as they
/// are, so `QCryptoBlockFormat` stays itself; all-caps event names are
/// cased (`SHUTDOWN` → `Shutdown`).
pub fn camel(name: &str) -> String {
    let kept = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        && name.chars().any(|c| c.is_ascii_lowercase());
    if kept {
        return sanitize(name, "V");
    }
    let cased = name.to_upper_camel_case();
    // heck drops characters such as '.'; keep digits apart from each
    // other ("1" stays "1", "x86_64" becomes "X86_64" rather than "X8664").
    sanitize(&join_digits(name, &cased), "V")
}

/// heck joins `x86_64` into `X8664`; put back an `_` between two digits
/// that the QAPI name separated, so distinct values stay distinct.
fn join_digits(original: &str, cased: &str) -> String {
    let sep_between_digits = original
        .as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && !w[1].is_ascii_alphanumeric() && w[2].is_ascii_digit());
    if !sep_between_digits {
        return cased.to_string();
    }
    let mut out = String::new();
    let mut words = original
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .peekable();
    while let Some(w) = words.next() {
        out.push_str(&w.to_upper_camel_case());
        if let Some(next) = words.peek()
            && w.ends_with(|c: char| c.is_ascii_digit())
            && next.starts_with(|c: char| c.is_ascii_digit())
        {
            out.push('_');
        }
    }
    out
}

/// Names in Rust's prelude. A QAPI type with one of these names (QEMU has
/// a struct `String`) would shadow it for anyone who glob-imports the
/// generated types, so it gets a `Qapi` prefix (`QapiString`).
pub const PRELUDE: &[&str] = &[
    "AsMut",
    "AsRef",
    "Box",
    "Clone",
    "Copy",
    "Default",
    "DoubleEndedIterator",
    "Drop",
    "Eq",
    "Err",
    "ExactSizeIterator",
    "Extend",
    "Fn",
    "FnMut",
    "FnOnce",
    "From",
    "FromIterator",
    "Into",
    "IntoIterator",
    "Iterator",
    "None",
    "Ok",
    "Option",
    "Ord",
    "PartialEq",
    "PartialOrd",
    "Result",
    "Send",
    "Sized",
    "Some",
    "String",
    "Sync",
    "ToOwned",
    "ToString",
    "TryFrom",
    "TryInto",
    "Unpin",
    "Vec",
];

/// The name of a generated top-level type: [`camel`], with a `Qapi`
/// prefix for names in [`PRELUDE`].
pub fn type_name(name: &str) -> String {
    let c = camel(name);
    if PRELUDE.contains(&c.as_str()) {
        format!("Qapi{c}")
    } else {
        c
    }
}

/// A `proc_macro2::Ident` for a string made by [`field`] or [`camel`].
pub fn ident(s: &str) -> Ident {
    match s.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(s, Span::call_site()),
    }
}

/// Names unique within one scope: the first `foo` keeps its name, later
/// ones become `foo_2`, `foo_3` (or `Foo2` for CamelCase).
#[derive(Debug, Default)]
pub struct Scope {
    taken: std::collections::HashSet<String>,
}

impl Scope {
    /// A scope with `reserved` names already taken.
    pub fn with_reserved(reserved: &[&str]) -> Scope {
        Scope {
            taken: reserved.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `name`, or a numbered variant of it if taken.
    pub fn unique(&mut self, name: String) -> String {
        if self.taken.insert(name.clone()) {
            return name;
        }
        let camel = name.starts_with(|c: char| c.is_ascii_uppercase());
        let base = name.trim_start_matches("r#");
        for n in 2.. {
            // `self_` becomes `self_2`, never `self__2` (not snake case).
            let candidate = if camel || base.ends_with('_') {
                format!("{base}{n}")
            } else {
                format!("{base}_{n}")
            };
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
        }
        unreachable!("an unbounded counter always finds a free name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_keyword_becomes_raw() {
        for kw in KEYWORDS {
            assert_eq!(field(kw), format!("r#{kw}"), "{kw}");
            // And the result is a valid identifier.
            let _ = ident(&field(kw));
        }
    }

    #[test]
    fn non_raw_keywords_get_a_suffix() {
        assert_eq!(field("self"), "self_");
        assert_eq!(field("super"), "super_");
        assert_eq!(field("crate"), "crate_");
        assert_eq!(camel("self"), "Self_");
        assert_eq!(field("_"), "__");
        for s in ["self_", "super_", "crate_", "Self_"] {
            let _ = ident(s);
        }
    }

    #[test]
    fn qapi_names() {
        assert_eq!(field("node-name"), "node_name");
        assert_eq!(field("x-perf"), "x_perf");
        assert_eq!(field("iops_rd_max"), "iops_rd_max");
        assert_eq!(field("type"), "r#type");
        assert_eq!(field("1"), "_1");
        assert_eq!(camel("query-status"), "QueryStatus");
        assert_eq!(camel("SHUTDOWN"), "Shutdown");
        assert_eq!(camel("BLOCK_JOB_COMPLETED"), "BlockJobCompleted");
        assert_eq!(camel("QCryptoBlockFormat"), "QCryptoBlockFormat");
        assert_eq!(camel("qcow2"), "Qcow2");
        assert_eq!(camel("1"), "V1");
        assert_eq!(camel("x86_64"), "X86_64");
        assert_eq!(camel("__org.qemu_x-Enum"), "OrgQemuXEnum");
        assert_eq!(camel("ctrl_r"), "CtrlR");
    }

    #[test]
    fn prelude_names_are_prefixed() {
        assert_eq!(type_name("String"), "QapiString");
        assert_eq!(type_name("Option"), "QapiOption");
        assert_eq!(type_name("StrOrNull"), "StrOrNull");
    }

    #[test]
    fn scopes_number_clashes() {
        let mut s = Scope::with_reserved(&["Unknown"]);
        assert_eq!(s.unique("Unknown".into()), "Unknown2");
        assert_eq!(s.unique("a_b".into()), "a_b");
        assert_eq!(s.unique("a_b".into()), "a_b_2");
        assert_eq!(s.unique("r#type".into()), "r#type");
        assert_eq!(s.unique("r#type".into()), "type_2");
    }
}
