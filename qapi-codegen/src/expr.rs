//! Stage 2a: context-free checks and normalisation of each expression
//! (QEMU's `scripts/qapi/expr.py`): keys, names, `if` conditions,
//! features, flags, member shapes. Sugared forms are rewritten in place
//! (`'name': 'type'` becomes `'name': {'type': 'type'}`, a feature or enum
//! value `'x'` becomes `{'name': 'x'}`).

use std::fmt::{self, Display};

use crate::doc::Doc;
use crate::parser::{Pragma, RawExpr};
use crate::source::{Info, R, err};
use crate::value::{Dict, Value};

/// The definition kinds ("meta-types").
pub const METAS: [&str; 6] = ["enum", "struct", "union", "alternate", "command", "event"];

/// QEMU's `c_name(name, protect=False)`: every character other than
/// ASCII letters, digits and `_` becomes `_`.
#[cfg(test)]
fn c_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An error message's subject, `{parent} {what}'{name}'`, formatted only
/// when an error is raised (checking a valid schema formats nothing).
struct Subject<'a>(&'a dyn Display, &'static str, &'a str);

impl Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}'{}'", self.0, self.1, self.2)
    }
}

/// `'if' condition of {subject}`.
struct IfCondOf<'a>(&'a dyn Display);

impl Display for IfCondOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'if' condition of {}", self.0)
    }
}

/// `'{meta}'`.
struct Quoted<'a>(&'a str);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0)
    }
}

/// Whether `c_name(a) == c_name(b)`, without allocating.
pub fn c_name_eq(a: &str, b: &str) -> bool {
    let c = |c: char| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    };
    a.chars().map(c).eq(b.chars().map(c))
}

fn valid_stem(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Matches `(__[a-z0-9.-]+_)?(x-)?([a-z][a-z0-9_-]*)$` (case-insensitive)
/// and returns the stem (the last group).
fn name_stem(name: &str) -> Option<&str> {
    let mut rest = name;
    if let Some(r) = rest.strip_prefix("__") {
        let n = r
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
            .count();
        if n > 0 && r.as_bytes().get(n) == Some(&b'_') {
            rest = &r[n + 1..];
        }
    }
    if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case("x-") && valid_stem(&rest[2..]) {
        return Some(&rest[2..]);
    }
    valid_stem(rest).then_some(rest)
}

fn check_name_is_str<'v>(name: Option<&'v Value>, info: Info, source: &dyn Display) -> R<&'v str> {
    match name {
        Some(Value::Str(s)) => Ok(s),
        _ => err(info, format!("{source} requires a string name")),
    }
}

fn check_name_str<'n>(name: &'n str, info: Info, source: &dyn Display) -> R<&'n str> {
    match name_stem(name) {
        // `c_name(name).starts_with("q_")`, without allocating.
        Some(stem)
            if !(name.starts_with('q')
                && name[1..]
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_ascii_alphanumeric())) =>
        {
            Ok(stem)
        }
        _ => err(info, format!("{source} has an invalid name")),
    }
}

fn check_name_upper(name: &str, info: Info, source: &dyn Display) -> R<()> {
    let stem = check_name_str(name, info, source)?;
    if stem.chars().any(|c| c.is_ascii_lowercase() || c == '-') {
        return err(
            info,
            format!("name of {source} must not use lowercase or '-'"),
        );
    }
    Ok(())
}

fn check_name_lower(
    name: &str,
    info: Info,
    source: &dyn Display,
    permit_upper: bool,
    permit_underscore: bool,
) -> R<()> {
    let stem = check_name_str(name, info, source)?;
    if (!permit_upper && stem.chars().any(|c| c.is_ascii_uppercase()))
        || (!permit_underscore && stem.contains('_'))
    {
        return err(
            info,
            format!("name of {source} must not use uppercase or '_'"),
        );
    }
    Ok(())
}

fn check_name_camel(name: &str, info: Info, source: &dyn Display) -> R<()> {
    let stem = check_name_str(name, info, source)?;
    let b = stem.as_bytes();
    let camel = b.first().is_some_and(u8::is_ascii_uppercase)
        && b.iter().all(u8::is_ascii_alphanumeric)
        && b[1..].iter().any(u8::is_ascii_lowercase);
    if !camel {
        return err(info, format!("name of {source} must use CamelCase"));
    }
    Ok(())
}

fn check_defn_name_str(name: &str, info: Info, meta: &str, pragma: &Pragma) -> R<()> {
    match meta {
        "event" => check_name_upper(name, info, &meta),
        "command" => check_name_lower(
            name,
            info,
            &meta,
            false,
            pragma.command_name_exceptions.iter().any(|e| e == name),
        ),
        _ => {
            check_name_camel(name, info, &meta)?;
            if name.ends_with("List") {
                return err(info, format!("{meta} name should not end in 'List'"));
            }
            Ok(())
        }
    }
}

fn quoted_sorted<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = items.collect();
    v.sort_unstable();
    v.dedup();
    v.iter()
        .map(|e| format!("'{e}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_keys(
    value: &Dict,
    info: Info,
    source: &dyn Display,
    required: &[&str],
    optional: &[&str],
) -> R<()> {
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| !value.contains(k))
        .collect();
    if !missing.is_empty() {
        return err(
            info,
            format!(
                "{source} misses key{} {}",
                if missing.len() > 1 { "s" } else { "" },
                quoted_sorted(missing.into_iter())
            ),
        );
    }
    let unknown: Vec<&str> = value
        .keys()
        .filter(|k| !required.contains(k) && !optional.contains(k))
        .collect();
    if !unknown.is_empty() {
        return err(
            info,
            format!(
                "{source} has unknown key{} {}\nValid keys are {}.",
                if unknown.len() > 1 { "s" } else { "" },
                quoted_sorted(unknown.into_iter()),
                quoted_sorted(required.iter().chain(optional).copied())
            ),
        );
    }
    Ok(())
}

/// Like [`check_keys`], for a value that must be an object; QEMU only
/// ever passes objects here (after normalisation), so anything else
/// reports the keys it misses.
fn check_keys_v(
    value: &Value,
    info: Info,
    source: &dyn Display,
    required: &[&str],
    optional: &[&str],
) -> R<()> {
    match value {
        Value::Dict(d) => check_keys(d, info, source, required, optional),
        _ => check_keys(&Dict::default(), info, source, required, optional),
    }
}

fn check_flags(expr: &Dict, info: Info) -> R<()> {
    for key in ["gen", "success-response"] {
        if expr.get(key).is_some_and(|v| *v != Value::Bool(false)) {
            return err(info, format!("flag '{key}' may only use false value"));
        }
    }
    for key in ["boxed", "allow-oob", "allow-preconfig", "coroutine"] {
        if expr.get(key).is_some_and(|v| *v != Value::Bool(true)) {
            return err(info, format!("flag '{key}' may only use true value"));
        }
    }
    if expr.contains("allow-oob") && expr.contains("coroutine") {
        return err(info, "flags 'allow-oob' and 'coroutine' are incompatible");
    }
    Ok(())
}

fn check_if_cond(cond: &Value, info: Info, source: &dyn Display) -> R<()> {
    match cond {
        Value::Str(s) => {
            let b = s.as_bytes();
            let ok = b.first().is_some_and(u8::is_ascii_uppercase)
                && b.iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
            if !ok {
                return err(
                    info,
                    format!("'if' condition '{s}' of {source} is not a valid identifier"),
                );
            }
            Ok(())
        }
        Value::Dict(d) => {
            check_keys(d, info, &IfCondOf(source), &[], &["all", "any", "not"])?;
            if d.len() != 1 {
                return err(
                    info,
                    format!("'if' condition of {source} has conflicting keys"),
                );
            }
            if let Some(not) = d.get("not") {
                return check_if_cond(not, info, source);
            }
            let (op, operands) = match d.get("all") {
                Some(v) => ("all", v),
                None => ("any", d.get("any").unwrap_or(&Value::Bool(false))),
            };
            let Value::List(operands) = operands else {
                return err(
                    info,
                    format!("'{op}' condition of {source} must be an array"),
                );
            };
            if operands.is_empty() {
                return err(info, format!("'if' condition [] of {source} is useless"));
            }
            operands
                .iter()
                .try_for_each(|o| check_if_cond(o, info, source))
        }
        _ => err(
            info,
            format!("'if' condition of {source} must be a string or an object"),
        ),
    }
}

fn check_if(expr: &Dict, info: Info, source: &dyn Display) -> R<()> {
    match expr.get("if") {
        Some(cond) => check_if_cond(cond, info, source),
        None => Ok(()),
    }
}

fn check_if_v(expr: &Value, info: Info, source: &dyn Display) -> R<()> {
    match expr {
        Value::Dict(d) => check_if(d, info, source),
        _ => Ok(()),
    }
}

/// `'name': 'type'` becomes `'name': {'type': 'type'}`.
fn normalize_members(members: Option<&mut Value>) {
    if let Some(Value::Dict(d)) = members {
        for (_, v) in d.0.iter_mut() {
            if !matches!(v, Value::Dict(_)) {
                let t = std::mem::replace(v, Value::Bool(false));
                *v = Value::Dict(Dict(vec![("type".into(), t)]));
            }
        }
    }
}

fn check_type_name(value: Option<&Value>, info: Info, source: &dyn Display) -> R<()> {
    match value {
        None | Some(Value::Str(_)) => Ok(()),
        _ => err(info, format!("{source} should be a type name")),
    }
}

fn check_type_name_or_array(value: Option<&Value>, info: Info, source: &dyn Display) -> R<()> {
    match value {
        None | Some(Value::Str(_)) => Ok(()),
        Some(Value::List(items)) => {
            if items.len() != 1 || !matches!(items[0], Value::Str(_)) {
                return err(
                    info,
                    format!("{source}: array type must contain single type name"),
                );
            }
            Ok(())
        }
        _ => err(info, format!("{source} should be a type name or array")),
    }
}

fn check_type_implicit(
    value: Option<&mut Value>,
    info: Info,
    source: &dyn Display,
    parent_name: Option<&str>,
    pragma: &Pragma,
) -> R<()> {
    let Some(value) = value else { return Ok(()) };
    let Value::Dict(members) = value else {
        return err(info, format!("{source} should be an object or type name"));
    };
    let permissive =
        parent_name.is_some_and(|p| pragma.member_name_exceptions.iter().any(|e| e == p));
    for (key, arg) in members.0.iter_mut() {
        let key = key.as_str();
        let key_source = Subject(source, "member ", key);
        let key = key.strip_prefix('*').unwrap_or(key);
        check_name_lower(key, info, &key_source, permissive, permissive)?;
        // `c_name(key)` is "u" or starts with "has_" (c_name turns every
        // character but ASCII letters, digits and '_' into '_').
        let has_ =
            key.len() >= 4 && key.starts_with("has") && !key.as_bytes()[3].is_ascii_alphanumeric();
        if key == "u" || has_ {
            return err(info, format!("{key_source} uses reserved name"));
        }
        check_keys_v(arg, info, &key_source, &["type"], &["if", "features"])?;
        check_if_v(arg, info, &key_source)?;
        if let Value::Dict(arg) = arg {
            check_features(arg.get_mut("features"), info)?;
            check_type_name_or_array(arg.get("type"), info, &key_source)?;
        }
    }
    Ok(())
}

fn check_type_name_or_implicit(
    value: Option<&mut Value>,
    info: Info,
    source: &dyn Display,
    parent_name: Option<&str>,
    pragma: &Pragma,
) -> R<()> {
    match value {
        None | Some(Value::Str(_)) => Ok(()),
        v => check_type_implicit(v, info, source, parent_name, pragma),
    }
}

fn check_features(features: Option<&mut Value>, info: Info) -> R<()> {
    let Some(features) = features else {
        return Ok(());
    };
    let Value::List(features) = features else {
        return err(info, "'features' must be an array");
    };
    for f in features.iter_mut() {
        if !matches!(f, Value::Dict(_)) {
            let name = std::mem::replace(f, Value::Bool(false));
            *f = Value::Dict(Dict(vec![("name".into(), name)]));
        }
    }
    for feat in features.iter() {
        let Value::Dict(feat) = feat else { continue };
        let source = "'features' member";
        check_keys(feat, info, &source, &["name"], &["if"])?;
        let name = check_name_is_str(feat.get("name"), info, &source)?;
        let source = Subject(&source, "", name);
        check_name_lower(name, info, &source, false, false)?;
        check_if(feat, info, &source)?;
    }
    Ok(())
}

fn check_enum(expr: &mut Dict, info: Info, name: &str, pragma: &Pragma) -> R<()> {
    if !matches!(expr.get("data"), Some(Value::List(_))) {
        return err(info, "'data' must be an array");
    }
    if expr
        .get("prefix")
        .is_some_and(|p| !matches!(p, Value::Str(_)))
    {
        return err(info, "'prefix' must be a string");
    }
    let permissive = pragma.member_name_exceptions.iter().any(|e| e == name);
    let Some(Value::List(members)) = expr.get_mut("data") else {
        return Ok(());
    };
    for m in members.iter_mut() {
        if !matches!(m, Value::Dict(_)) {
            let n = std::mem::replace(m, Value::Bool(false));
            *m = Value::Dict(Dict(vec![("name".into(), n)]));
        }
    }
    for member in members.iter_mut() {
        let Value::Dict(member) = member else {
            continue;
        };
        let source = "'data' member";
        check_keys(member, info, &source, &["name"], &["if", "features"])?;
        let member_name = check_name_is_str(member.get("name"), info, &source)?.to_string();
        let source = Subject(&source, "", &member_name);
        // Enum values may start with a digit: hide it from the name check.
        let checked = if member_name.starts_with(|c: char| c.is_ascii_digit()) {
            std::borrow::Cow::Owned(format!("d{member_name}"))
        } else {
            std::borrow::Cow::Borrowed(member_name.as_str())
        };
        check_name_lower(&checked, info, &source, permissive, permissive)?;
        check_if(member, info, &source)?;
        check_features(member.get_mut("features"), info)?;
    }
    Ok(())
}

fn check_union(expr: &mut Dict, info: Info, name: &str, pragma: &Pragma) -> R<()> {
    check_type_name_or_implicit(expr.get_mut("base"), info, &"'base'", Some(name), pragma)?;
    check_name_is_str(expr.get("discriminator"), info, &"'discriminator'")?;
    let Some(Value::Dict(members)) = expr.get("data") else {
        return err(info, "'data' must be an object");
    };
    for (key, value) in &members.0 {
        let source = Subject(&"'data'", "member ", key);
        check_keys_v(value, info, &source, &["type"], &["if"])?;
        check_if_v(value, info, &source)?;
        check_type_name(value.as_dict().and_then(|d| d.get("type")), info, &source)?;
    }
    Ok(())
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Str(s) => !s.is_empty(),
        Value::Bool(b) => *b,
        Value::List(l) => !l.is_empty(),
        Value::Dict(d) => !d.is_empty(),
    }
}

fn check_alternate(expr: &Dict, info: Info) -> R<()> {
    let members = expr.get("data");
    if !members.is_some_and(truthy) {
        return err(info, "'data' must not be empty");
    }
    let Some(Value::Dict(members)) = members else {
        return err(info, "'data' must be an object");
    };
    for (key, value) in &members.0 {
        let source = Subject(&"'data'", "member ", key);
        check_name_lower(key, info, &source, false, false)?;
        check_keys_v(value, info, &source, &["type"], &["if"])?;
        check_if_v(value, info, &source)?;
        check_type_name_or_array(value.as_dict().and_then(|d| d.get("type")), info, &source)?;
    }
    Ok(())
}

fn check_command_or_event(expr: &mut Dict, info: Info, pragma: &Pragma, command: bool) -> R<()> {
    let boxed = expr.get("boxed").is_some_and(truthy);
    if boxed {
        if !expr.contains("data") {
            return err(info, "'boxed': true requires 'data'");
        }
        check_type_name(expr.get("data"), info, &"'data'")?;
    } else {
        check_type_name_or_implicit(expr.get_mut("data"), info, &"'data'", None, pragma)?;
    }
    if command {
        check_type_name_or_array(expr.get("returns"), info, &"'returns'")?;
    }
    Ok(())
}

/// The outcome of checking one definition: its meta-type and name.
pub(crate) type Defn = (&'static str, String);

/// Checks and normalises every expression; returns `(meta, name)` per
/// expression (`None` for includes), which also names the definition
/// context of errors (`In command 'x':`).
pub(crate) fn check_exprs(
    exprs: &mut [RawExpr],
    docs: &[Doc],
    pragma: &Pragma,
    defns: &mut Vec<Option<Defn>>,
) -> R<()> {
    for (i, raw) in exprs.iter_mut().enumerate() {
        let RawExpr::Defn { expr, info, doc } = raw else {
            defns.push(None);
            continue;
        };
        let mut metas = METAS.iter().copied().filter(|m| expr.contains(m));
        let (Some(meta), None) = (metas.next(), metas.next()) else {
            return err(
                *info,
                "expression must have exactly one key 'enum', 'struct', 'union', 'alternate', \
                 'command', 'event'",
            );
        };
        let name = check_name_is_str(expr.get(meta), *info, &Quoted(meta))?.to_string();
        defns.push(Some((meta, name)));
        let Some(Some((_, name))) = defns.last() else {
            continue; // just pushed
        };
        *info = info.with_defn(i as u32);
        let info = *info;
        check_defn_name_str(name, info, meta, pragma)?;

        if let Some(d) = doc.map(|d| &docs[d]) {
            if d.symbol.as_deref() != Some(name.as_str()) {
                return err(
                    info,
                    format!(
                        "documentation comment is for '{}'",
                        d.symbol.as_deref().unwrap_or_default()
                    ),
                );
            }
            d.check_expr(meta == "command", expr.contains("returns"))?;
        } else if pragma.doc_required {
            return err(info, "documentation comment required");
        }

        match meta {
            "enum" => {
                check_keys(
                    expr,
                    info,
                    &meta,
                    &["enum", "data"],
                    &["if", "features", "prefix"],
                )?;
                check_enum(expr, info, name, pragma)?;
            }
            "union" => {
                check_keys(
                    expr,
                    info,
                    &meta,
                    &["union", "base", "discriminator", "data"],
                    &["if", "features"],
                )?;
                normalize_members(expr.get_mut("base"));
                normalize_members(expr.get_mut("data"));
                check_union(expr, info, name, pragma)?;
            }
            "alternate" => {
                check_keys(
                    expr,
                    info,
                    &meta,
                    &["alternate", "data"],
                    &["if", "features"],
                )?;
                normalize_members(expr.get_mut("data"));
                check_alternate(expr, info)?;
            }
            "struct" => {
                check_keys(
                    expr,
                    info,
                    &meta,
                    &["struct", "data"],
                    &["base", "if", "features"],
                )?;
                normalize_members(expr.get_mut("data"));
                check_type_implicit(expr.get_mut("data"), info, &"'data'", Some(name), pragma)?;
                check_type_name(expr.get("base"), info, &"'base'")?;
            }
            "command" => {
                check_keys(
                    expr,
                    info,
                    &meta,
                    &["command"],
                    &[
                        "data",
                        "returns",
                        "boxed",
                        "if",
                        "features",
                        "gen",
                        "success-response",
                        "allow-oob",
                        "allow-preconfig",
                        "coroutine",
                    ],
                )?;
                normalize_members(expr.get_mut("data"));
                check_command_or_event(expr, info, pragma, true)?;
            }
            _ => {
                check_keys(
                    expr,
                    info,
                    &meta,
                    &["event"],
                    &["data", "boxed", "if", "features"],
                )?;
                normalize_members(expr.get_mut("data"));
                check_command_or_event(expr, info, pragma, false)?;
            }
        }
        check_if(expr, info, &meta)?;
        check_features(expr.get_mut("features"), info)?;
        check_flags(expr, info)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(name_stem("foo-bar"), Some("foo-bar"));
        assert_eq!(name_stem("x-foo"), Some("foo"));
        assert_eq!(name_stem("x-"), Some("x-"));
        assert_eq!(name_stem("__org.qemu_x-foo"), Some("foo"));
        assert_eq!(name_stem("__org.qemu_foo"), Some("foo"));
        assert_eq!(name_stem("__foo"), None);
        assert_eq!(name_stem("1a"), None);
        assert_eq!(name_stem(""), None);
        assert_eq!(name_stem("a b"), None);
    }

    #[test]
    fn c_names() {
        assert_eq!(c_name("a-b.c"), "a_b_c");
        assert_eq!(c_name("q-x"), "q_x");
    }

    #[test]
    fn c_names_compare_like_c_name() {
        let names = [
            "a-b", "a_b", "a.b", "ab", "a-bc", "é", "_", "-", "has-x", "has_x",
        ];
        for a in names {
            for b in names {
                assert_eq!(c_name_eq(a, b), c_name(a) == c_name(b), "{a} vs {b}");
            }
        }
    }
}
