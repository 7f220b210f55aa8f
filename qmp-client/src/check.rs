//! A command's arguments checked against a schema as QEMU's QMP input
//! visitor checks them, with its words: a member missing, unexpected,
//! of the wrong JSON type, an integer out of range, an enum value not
//! accepted. One walker serves every source of shapes ([`Shapes`]): the
//! bindings' tables at one covered version (the test double) and a
//! connected QEMU's own `query-qmp-schema` ([`crate::introspect`]).

use serde_json::{Map, Value};

/// What a type is, as far as a check needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape<'s> {
    /// Anything goes (`any`, or a type the source does not describe).
    Any,
    /// A JSON scalar of this kind: `string`, `number`, `boolean`, `null`.
    Scalar(&'static str),
    /// An integer within this range (C type name for errors).
    Int(i128, i128, &'static str),
    /// A string among the enum's values ([`Shapes::enum_has`]).
    Enum,
    /// A JSON object: members, and a union's branch by its discriminator.
    Object,
    /// A JSON array of this element type.
    Array(&'s str),
    /// One of the alternate's branches ([`Shapes::alternatives`]).
    Alternate,
}

/// One member of an object type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member<'s> {
    pub(crate) name: &'s str,
    pub(crate) ty: &'s str,
    pub(crate) optional: bool,
}

/// A schema as the walker sees it: types by name. Every answer is the
/// checked QEMU's (a member or value another version has is absent).
pub(crate) trait Shapes {
    /// What type `ty` is.
    fn shape(&self, ty: &str) -> Shape<'_>;
    /// Whether enum `ty` accepts `value`.
    fn enum_has(&self, ty: &str, value: &str) -> bool;
    /// Object `ty`'s own members (a union's common ones), in order.
    fn members<'s>(
        &'s self,
        ty: &str,
        each: &mut dyn FnMut(Member<'s>) -> Result<(), Refusal>,
    ) -> Result<(), Refusal>;
    /// A union's discriminator member.
    fn tag(&self, ty: &str) -> Option<&str>;
    /// The object type whose members union `ty`'s branch `value` adds.
    fn branch(&self, ty: &str, value: &str) -> Option<&str>;
    /// Alternate `ty`'s branch types, in order.
    fn alternatives(&self, ty: &str) -> Vec<&str>;
}

/// Why QEMU would refuse a command's arguments, in its words
/// (`Display`); each names the member's path as QEMU does (`file.aio`,
/// `devices[0].id`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A required member is missing: `Parameter 'a.b' is missing`.
    Missing(String),
    /// A member the type does not have: `Parameter 'a.b' is unexpected`.
    Unexpected(String),
    /// A value of the wrong JSON type (path, the type expected):
    /// `Invalid parameter type for 'a', expected: string`.
    WrongType(String, String),
    /// An integer out of its type's range (path, the C type):
    /// `Parameter 'a' expects uint8_t`.
    OutOfRange(String, &'static str),
    /// An enum value the type does not have (path, value): `Parameter
    /// 'a' does not accept value 'x'`.
    BadValue(String, String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Missing(p) => write!(f, "Parameter '{p}' is missing"),
            Refusal::Unexpected(p) => write!(f, "Parameter '{p}' is unexpected"),
            Refusal::WrongType(p, e) => {
                write!(f, "Invalid parameter type for '{p}', expected: {e}")
            }
            Refusal::OutOfRange(p, c) => write!(f, "Parameter '{p}' expects {c}"),
            Refusal::BadValue(p, v) => write!(f, "Parameter '{p}' does not accept value '{v}'"),
        }
    }
}

/// Checks `args` as the arguments of a command whose argument type is
/// `arg_type` (`None`: it takes none). `open`: the command takes
/// undeclared arguments beside its own (`device_add`).
pub(crate) fn check_args(
    shapes: &dyn Shapes,
    arg_type: Option<&str>,
    open: bool,
    args: &Map<String, Value>,
) -> Result<(), Refusal> {
    match arg_type {
        Some(ty) => Walk { shapes, open }.object(ty, args, &Path::Root),
        None => match args.keys().next() {
            Some(k) => Err(Refusal::Unexpected(k.clone())),
            None => Ok(()),
        },
    }
}

// The bindings' own type names are checked only by the test double.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
/// The range of QAPI integer type `ty`, and its C name for errors.
pub(crate) fn int_range(ty: &str) -> Option<(i128, i128, &'static str)> {
    Some(match ty {
        "int" | "int64" => (i64::MIN.into(), i64::MAX.into(), "int64_t"),
        "int8" => (i8::MIN.into(), i8::MAX.into(), "int8_t"),
        "int16" => (i16::MIN.into(), i16::MAX.into(), "int16_t"),
        "int32" => (i32::MIN.into(), i32::MAX.into(), "int32_t"),
        "uint8" => (0, u8::MAX.into(), "uint8_t"),
        "uint16" => (0, u16::MAX.into(), "uint16_t"),
        "uint32" => (0, u32::MAX.into(), "uint32_t"),
        "uint64" | "size" => (0, u64::MAX.into(), "uint64_t"),
        _ => return None,
    })
}

#[cfg_attr(not(feature = "testing"), allow(dead_code))]
/// The shape of a built-in QAPI type by its name, if `ty` is one.
pub(crate) fn builtin(ty: &str) -> Option<Shape<'static>> {
    if let Some((lo, hi, c)) = int_range(ty) {
        return Some(Shape::Int(lo, hi, c));
    }
    Some(match ty {
        "str" => Shape::Scalar("string"),
        "number" => Shape::Scalar("number"),
        "bool" => Shape::Scalar("boolean"),
        "null" => Shape::Scalar("null"),
        "any" => Shape::Any,
        _ => return None,
    })
}

struct Walk<'t> {
    shapes: &'t dyn Shapes,
    /// The command takes undeclared arguments (at the top level).
    open: bool,
}

/// Where a value is, as QEMU names it in errors (`a.b[2].c`); written
/// out only for an error.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Member(Path::Root, name) => f.write_str(name),
            Path::Member(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// The JSON kind a value of `shape` has (`None`: any).
fn json_kind(shape: Shape<'_>) -> Option<&'static str> {
    match shape {
        Shape::Any => None,
        Shape::Scalar(k) => Some(k),
        Shape::Int(..) => Some("integer"),
        Shape::Enum => Some("string"),
        Shape::Object => Some("object"),
        Shape::Array(_) => Some("array"),
        Shape::Alternate => None,
    }
}

fn is_kind(v: &Value, kind: &str) -> bool {
    match kind {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => true,
    }
}

impl Walk<'_> {
    /// An object of type `ty` (a struct or union).
    fn object(&self, ty: &str, map: &Map<String, Value>, path: &Path<'_>) -> Result<(), Refusal> {
        let mut known: Vec<&str> = Vec::new();
        self.members(ty, map, path, &mut known)?;
        if let Some(tag) = self.shapes.tag(ty)
            && let Some(value) = map.get(tag).and_then(Value::as_str)
            && let Some(bty) = self.shapes.branch(ty, value)
        {
            self.members(bty, map, path, &mut known)?;
        }
        if self.open && matches!(path, Path::Root) {
            return Ok(());
        }
        match map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(Refusal::Unexpected(Path::Member(path, k).to_string())),
            None => Ok(()),
        }
    }

    /// The members `owner` declares, in schema order (QEMU's order of
    /// checks).
    fn members<'s>(
        &'s self,
        owner: &str,
        map: &Map<String, Value>,
        path: &Path<'_>,
        known: &mut Vec<&'s str>,
    ) -> Result<(), Refusal> {
        self.shapes.members(owner, &mut |m| {
            known.push(m.name);
            let p = Path::Member(path, m.name);
            match map.get(m.name) {
                Some(v) => self.value(m.ty, v, &p),
                None if !m.optional => Err(Refusal::Missing(p.to_string())),
                None => Ok(()),
            }
        })
    }

    /// A value of QAPI type `ty` at `path`.
    fn value(&self, ty: &str, v: &Value, path: &Path<'_>) -> Result<(), Refusal> {
        let wrong = |expected: &str| Refusal::WrongType(path.to_string(), expected.to_string());
        match self.shapes.shape(ty) {
            Shape::Any => Ok(()),
            Shape::Int(lo, hi, cname) => {
                let n = v
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| v.as_u64().map(i128::from));
                match n {
                    None => Err(wrong("integer")),
                    Some(n) if n < lo || n > hi => {
                        Err(Refusal::OutOfRange(path.to_string(), cname))
                    }
                    Some(_) => Ok(()),
                }
            }
            Shape::Scalar(kind) if is_kind(v, kind) => Ok(()),
            Shape::Scalar(kind) => Err(wrong(kind)),
            Shape::Enum => {
                let Some(s) = v.as_str() else {
                    return Err(wrong("string"));
                };
                if self.shapes.enum_has(ty, s) {
                    Ok(())
                } else {
                    Err(Refusal::BadValue(path.to_string(), s.to_string()))
                }
            }
            Shape::Object => match v.as_object() {
                Some(map) => self.object(ty, map, path),
                None => Err(wrong("object")),
            },
            Shape::Array(element) => match v.as_array() {
                Some(items) => items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, item)| self.value(element, item, &Path::Index(path, i))),
                None => Err(wrong("array")),
            },
            Shape::Alternate => {
                let pick = self.shapes.alternatives(ty).into_iter().find(|b| {
                    match json_kind(self.shapes.shape(b)) {
                        None => true,
                        // A number branch takes integers too.
                        Some("number") => v.is_number(),
                        Some(kind) => is_kind(v, kind),
                    }
                });
                match pick {
                    Some(b) => self.value(b, v, path),
                    None => Err(wrong(ty)),
                }
            }
        }
    }
}
