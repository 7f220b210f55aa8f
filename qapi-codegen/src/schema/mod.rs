//! Stage 2b: the resolved model (QEMU's `scripts/qapi/schema.py`).
//!
//! [`Schema::load`] parses, checks each expression, defines every entity
//! (built-in types, implicit argument and base types, array types), then
//! checks them in definition order: types resolve, members do not clash,
//! unions' discriminators and branches fit, alternates' branches can be
//! told apart on the wire, commands' `data` and `returns` are allowed,
//! and doc comments describe exactly what exists.

mod build;
mod check;
mod merge;

pub(crate) use merge::correspond_types;
pub use merge::{Alias, Key, MergeNote, NoteKind, VersionSet, Versioning};

use std::collections::HashMap;

use crate::doc::Doc;
use crate::error::Result;
use crate::expr::{Defn, c_name_eq, check_exprs};
use crate::parser::{Loader, Pragma, RawExpr, parse};
use crate::source::{Info, R, Raise, SourceMap, err};
use crate::value::{Dict, Value};

/// Index of an entity in [`Schema::entities`].
pub type EntityId = usize;

/// Marks a type reference not resolved (yet).
const UNRESOLVED: EntityId = usize::MAX;

/// A feature of a definition or member (`deprecated`, `unstable`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// Its name.
    pub name: String,
    /// Where it was declared (`None` for the predefined special ones).
    pub info: Option<Info>,
    /// Its `if` condition, as written.
    pub ifcond: Option<Value>,
}

impl Feature {
    /// Whether this is one of QEMU's special features.
    pub fn is_special(&self) -> bool {
        self.name == "deprecated" || self.name == "unstable"
    }
}

/// An enum value.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumMember {
    /// The value as on the wire.
    pub name: String,
    /// Where it was declared (`None` for predefined enums).
    pub info: Option<Info>,
    /// Its `if` condition.
    pub ifcond: Option<Value>,
    /// Its features.
    pub features: Vec<Feature>,
}

/// A member of an object type, or a branch of a union or alternate.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The name (without the `*` of optional members).
    pub name: String,
    /// Where it was declared.
    pub info: Info,
    /// The type's name as written (arrays as `TList`).
    pub type_name: String,
    /// The resolved type, once checked.
    pub ty: EntityId,
    /// Whether the member may be absent.
    pub optional: bool,
    /// Its `if` condition.
    pub ifcond: Option<Value>,
    /// Its features.
    pub features: Vec<Feature>,
    /// The name of the type that declares it.
    pub defined_in: String,
}

/// A union's branches.
#[derive(Debug, Clone, PartialEq)]
pub struct Branches {
    /// The discriminator's name.
    pub tag_name: String,
    /// The discriminator member: (object type, index in its local members).
    pub tag_member: Option<(EntityId, usize)>,
    /// One branch per discriminator value (implicit ones use `q_empty`).
    pub variants: Vec<Member>,
}

/// A struct, a union, or an implicit object type.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectType {
    /// The base type's name.
    pub base_name: Option<String>,
    /// The resolved base.
    pub base: Option<EntityId>,
    /// Members declared here.
    pub local_members: Vec<Member>,
    /// Branches, for unions.
    pub branches: Option<Branches>,
    /// All members, base first: (declaring object type, local index).
    pub members: Vec<(EntityId, usize)>,
}

/// A command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The argument type's name.
    pub arg_type_name: Option<String>,
    /// The resolved argument type (an object type).
    pub arg_type: Option<EntityId>,
    /// The return type's name.
    pub ret_type_name: Option<String>,
    /// The resolved return type.
    pub ret_type: Option<EntityId>,
    /// `gen` (false for commands with hand-written marshalling, such as
    /// `device_add`).
    pub generate: bool,
    /// `success-response` (false: QEMU sends no reply on success).
    pub success_response: bool,
    /// `boxed` arguments.
    pub boxed: bool,
    /// `allow-oob`.
    pub allow_oob: bool,
    /// `allow-preconfig`.
    pub allow_preconfig: bool,
    /// `coroutine`.
    pub coroutine: bool,
}

/// An event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The data type's name.
    pub arg_type_name: Option<String>,
    /// The resolved data type.
    pub arg_type: Option<EntityId>,
    /// `boxed`.
    pub boxed: bool,
}

/// What an entity is.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityKind {
    /// An `include` directive; the module it names.
    Include {
        /// Module name (path relative to the root schema's directory).
        module: String,
    },
    /// A built-in type; its JSON type.
    Builtin {
        /// `string`, `number`, `int`, `boolean`, `null` or `value`.
        json_type: &'static str,
    },
    /// An enum.
    Enum {
        /// Values.
        members: Vec<EnumMember>,
        /// `prefix`.
        prefix: Option<String>,
    },
    /// An array type.
    Array {
        /// The element type's name.
        element_name: String,
        /// The resolved element type.
        element: EntityId,
    },
    /// A struct, union or implicit object type.
    Object(ObjectType),
    /// An alternate; its branches.
    Alternate {
        /// Branches.
        variants: Vec<Member>,
    },
    /// A command.
    Command(Command),
    /// An event.
    Event(Event),
}

/// A definition (or include directive) of the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Its name (empty for includes).
    pub name: String,
    /// Where it was defined; `None` for predefined entities. For implicit
    /// types, where they were first needed.
    pub info: Option<Info>,
    /// Its doc comment (index into [`Schema::docs`]).
    pub doc: Option<usize>,
    /// Its `if` condition.
    pub ifcond: Option<Value>,
    /// Its features.
    pub features: Vec<Feature>,
    /// What it is.
    pub kind: EntityKind,
}

impl Entity {
    /// QEMU's meta-type word: `struct`, `union`, `enum`, `array`,
    /// `alternate`, `built-in`, `command`, `event`, `include`.
    pub fn meta(&self) -> &'static str {
        match &self.kind {
            EntityKind::Include { .. } => "include",
            EntityKind::Builtin { .. } => "built-in",
            EntityKind::Enum { .. } => "enum",
            EntityKind::Array { .. } => "array",
            EntityKind::Object(o) if o.branches.is_some() => "union",
            EntityKind::Object(_) => "struct",
            EntityKind::Alternate { .. } => "alternate",
            EntityKind::Command(_) => "command",
            EntityKind::Event(_) => "event",
        }
    }

    /// Whether this is a type (as opposed to a command, event, include).
    pub fn is_type(&self) -> bool {
        !matches!(
            self.kind,
            EntityKind::Include { .. } | EntityKind::Command(_) | EntityKind::Event(_)
        )
    }

    /// Whether QEMU made this type up (built-in arrays, `q_obj_*`, `QType`).
    pub fn is_implicit(&self) -> bool {
        match &self.kind {
            EntityKind::Object(_) => self.name.starts_with("q_"),
            EntityKind::Enum { .. } => self.name == "QType",
            EntityKind::Array { .. } => true,
            _ => self.info.is_none(),
        }
    }

    /// The object type, if this is one.
    pub fn as_object(&self) -> Option<&ObjectType> {
        match &self.kind {
            EntityKind::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The JSON type of a value of this type (`value` for an alternate).
    pub(crate) fn json_type(&self) -> &'static str {
        match &self.kind {
            EntityKind::Builtin { json_type } => json_type,
            EntityKind::Enum { .. } => "string",
            EntityKind::Array { .. } => "array",
            EntityKind::Object(_) => "object",
            _ => "value",
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            EntityKind::Array { element_name, .. } => format!("array type ['{element_name}']"),
            _ if self.is_type() => format!("{} type '{}'", self.meta(), self.name),
            _ => format!("{} '{}'", self.meta(), self.name),
        }
    }
}

/// A module: one schema file and the entities defined in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// `./builtin`, or the file's path relative to the root schema's
    /// directory.
    pub name: String,
    /// Its entities, in definition order.
    pub entities: Vec<EntityId>,
}

/// A checked schema.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The files read.
    pub sources: SourceMap,
    /// Every entity, in definition order (predefined ones first).
    pub entities: Vec<Entity>,
    /// Doc comments, in source order.
    pub docs: Vec<Doc>,
    /// The schema's pragmas.
    pub pragma: Pragma,
    /// Modules, `./builtin` and the root first, then in include order.
    pub modules: Vec<Module>,
    /// Every feature name used, the special ones first.
    pub feature_names: Vec<Feature>,
    /// Which versions have what, when this model merges several QEMU
    /// releases' schemas ([`Schema::merge`]); `None` for one schema.
    pub versioning: Option<Versioning>,
    index: HashMap<String, EntityId>,
    defns: Vec<Option<Defn>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Unchecked,
    Checking,
    Done,
}

/// Who a member belongs to, for messages (QEMU's `describe`).
fn describe_member(role: &str, name: &str, defined_in: &str, defn_name: Option<&str>) -> String {
    let (mut role, mut meta, mut defined_in) = (role.to_string(), "type", defined_in);
    if let Some(rest) = defined_in.strip_prefix("q_obj_") {
        defined_in = rest;
        if let Some(d) = rest.strip_suffix("-arg") {
            role = "parameter".into();
            meta = "command";
            defined_in = d;
        } else if let Some(d) = rest.strip_suffix("-base") {
            role = format!("base {role}");
            defined_in = d;
        }
    }
    if Some(defined_in) != defn_name {
        format!("{role} '{name}' of {meta} '{defined_in}'")
    } else {
        format!("{role} '{name}'")
    }
}

/// By which QEMU's rules doc comments are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DocRules {
    /// QEMU 10.0's (the default): `Note:` and `Example:` sections are
    /// refused (rST directives replaced them in 9.1); a section's text
    /// follows its tag on the same line or on indented lines; a
    /// de-indented line right after a section's first line is an error;
    /// `@any text:` at the start of a line is a member description; a
    /// command that returns nothing has no `Returns:` section.
    #[default]
    Qemu10,
    /// QEMU before 9.1 (7.2's schema): `Note:`/`Example:` sections, text
    /// on unindented lines after a tag, a de-indented tag ending the
    /// section before it, `@name with blanks:` as text, and `Returns:` on
    /// any command are accepted.
    Legacy,
}

/// How deeply object types may nest (bases, branches) before the checker
/// gives up; QEMU's Python gives up sooner (its recursion limit).
const MAX_DEPTH: usize = 512;

impl Schema {
    pub(super) fn error(&self, raise: &Raise) -> crate::Error {
        self.sources.to_error(raise, &|d| {
            self.defns
                .get(d as usize)
                .and_then(|x| x.as_ref())
                .map(|(m, n)| (*m, n.as_str()))
        })
    }

    /// The entity called `name`.
    pub fn lookup(&self, name: &str) -> Option<EntityId> {
        self.index.get(name).copied()
    }

    /// The entity `id`.
    pub fn entity(&self, id: EntityId) -> &Entity {
        &self.entities[id]
    }

    /// A member reference as stored in [`ObjectType::members`].
    pub fn member(&self, (owner, i): (EntityId, usize)) -> &Member {
        match &self.entities[owner].kind {
            EntityKind::Object(o) => &o.local_members[i],
            // Member references are only made for object types.
            _ => &NO_MEMBER,
        }
    }

    /// The name of the definition `info` belongs to.
    pub(super) fn defn_name(&self, info: Info) -> Option<&str> {
        self.defns
            .get(info.defn as usize)
            .and_then(|d| d.as_ref())
            .map(|(_, n)| n.as_str())
    }

    pub(super) fn defn_meta(&self, info: Info) -> Option<&'static str> {
        self.defns
            .get(info.defn as usize)
            .and_then(|d| d.as_ref())
            .map(|(m, _)| *m)
    }

    /// Iterates over the entities of one kind, in definition order.
    pub fn iter(&self) -> impl Iterator<Item = (EntityId, &Entity)> {
        self.entities.iter().enumerate()
    }
}

static NO_MEMBER: Member = Member {
    name: String::new(),
    info: Info {
        file: 0,
        line: 0,
        defn: crate::source::NO_DEFN,
    },
    type_name: String::new(),
    ty: UNRESOLVED,
    optional: false,
    ifcond: None,
    features: Vec::new(),
    defined_in: String::new(),
};

/// The definition an implicit type was made for: `q_obj_foo-arg` →
/// `foo` (a command's or event's arguments), `q_obj_Foo-base` → `Foo` (a
/// union's base); `None` for other names.
pub fn implicit_owner(name: &str) -> Option<&str> {
    let owner = name.strip_prefix("q_obj_")?;
    Some(
        owner
            .strip_suffix("-arg")
            .or_else(|| owner.strip_suffix("-base"))
            .unwrap_or(owner),
    )
}

/// Built-in types and their JSON types.
pub const BUILTINS: [(&str, &str); 15] = [
    ("str", "string"),
    ("number", "number"),
    ("int", "int"),
    ("int8", "int"),
    ("int16", "int"),
    ("int32", "int"),
    ("int64", "int"),
    ("uint8", "int"),
    ("uint16", "int"),
    ("uint32", "int"),
    ("uint64", "int"),
    ("size", "int"),
    ("bool", "boolean"),
    ("any", "value"),
    ("null", "null"),
];

/// The absolute form of `root_dir`, for [`module_name`].
fn module_base(loader: &dyn Loader, root_dir: &str) -> String {
    loader.absolute(if root_dir.is_empty() { "." } else { root_dir })
}

/// `os.path.relpath(fname, root_dir)`, given `base = module_base(root_dir)`.
fn module_name(loader: &dyn Loader, base: &str, fname: &str) -> String {
    let path = loader.absolute(fname);
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let b: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = vec![".."; b.len() - common];
    parts.extend(&p[common..]);
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// An `if` condition as text: `CONFIG_LINUX`, `all(A, B)`, `not(A)`.
/// The model's own spelling, which the docs, the changelog, the
/// conformance report and the generated metadata all use.
pub fn condition_text(cond: &Value) -> String {
    match cond {
        Value::Str(s) => s.clone(),
        Value::Dict(d) => {
            let Some((op, v)) = d.0.first() else {
                return String::new();
            };
            let inner: Vec<String> = match v {
                Value::List(l) => l.iter().map(condition_text).collect(),
                other => vec![condition_text(other)],
            };
            format!("{op}({})", inner.join(", "))
        }
        Value::List(l) => l.iter().map(condition_text).collect::<Vec<_>>().join(", "),
        Value::Bool(b) => b.to_string(),
    }
}
