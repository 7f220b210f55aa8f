//! Stage 2b: the resolved model (QEMU's `scripts/qapi/schema.py`).
//!
//! [`Schema::load`] parses, checks each expression, defines every entity
//! (built-in types, implicit argument and base types, array types), then
//! checks them in definition order: types resolve, members do not clash,
//! unions' discriminators and branches fit, alternates' branches can be
//! told apart on the wire, commands' `data` and `returns` are allowed,
//! and doc comments describe exactly what exists.

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

    fn json_type(&self) -> &'static str {
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
    /// Parses and checks the schema at `path` (with its includes) from the
    /// file system: regular files of at most
    /// [`crate::parser::DEFAULT_MAX_FILE_SIZE`] bytes each (see
    /// [`Schema::load_limited`]).
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Schema> {
        Schema::load_limited(path, crate::parser::DEFAULT_MAX_FILE_SIZE)
    }

    /// [`Schema::load`] with another limit on the size of each file.
    pub fn load_limited(path: impl AsRef<std::path::Path>, max_file_size: u64) -> Result<Schema> {
        let path = path.as_ref().to_string_lossy().into_owned();
        Schema::load_with(&crate::parser::FsLoaderAt::new(max_file_size), &path)
    }

    /// [`Schema::load`] with doc comments read by `rules` (for the schema
    /// of a QEMU older than 9.1, [`DocRules::Legacy`]).
    pub fn load_with_rules(path: impl AsRef<std::path::Path>, rules: DocRules) -> Result<Schema> {
        let path = path.as_ref().to_string_lossy().into_owned();
        let loader = crate::parser::FsLoaderAt::new(crate::parser::DEFAULT_MAX_FILE_SIZE);
        Schema::load_with_options(&loader, &path, rules)
    }

    /// Parses and checks the schema at `path`, reading files through
    /// `loader`, doc comments by QEMU 10's rules.
    pub fn load_with(loader: &dyn Loader, path: &str) -> Result<Schema> {
        Schema::load_with_options(loader, path, DocRules::Qemu10)
    }

    /// Parses and checks the schema at `path`, reading files through
    /// `loader`, doc comments by `rules`.
    pub fn load_with_options(loader: &dyn Loader, path: &str, rules: DocRules) -> Result<Schema> {
        let parsed = parse(loader, path, rules == DocRules::Legacy)?;
        let mut exprs = parsed.exprs;
        let mut schema = Schema {
            sources: parsed.sources,
            entities: Vec::new(),
            docs: parsed.docs,
            pragma: parsed.pragma,
            modules: Vec::new(),
            feature_names: Vec::new(),
            index: HashMap::new(),
            defns: Vec::new(),
        };
        let mut defns = Vec::new();
        let res = check_exprs(&mut exprs, &schema.docs, &schema.pragma, &mut defns);
        schema.defns = defns;
        if let Err(raise) = res {
            return Err(schema.error(&raise));
        }
        let root_dir = match path.rfind('/') {
            Some(i) => path[..i].to_string(),
            None => String::new(),
        };
        match schema.build(loader, path, &root_dir, exprs) {
            Ok(()) => Ok(schema),
            Err(raise) => Err(schema.error(&raise)),
        }
    }

    fn error(&self, raise: &Raise) -> crate::Error {
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
    fn defn_name(&self, info: Info) -> Option<&str> {
        self.defns
            .get(info.defn as usize)
            .and_then(|d| d.as_ref())
            .map(|(_, n)| n.as_str())
    }

    fn defn_meta(&self, info: Info) -> Option<&'static str> {
        self.defns
            .get(info.defn as usize)
            .and_then(|d| d.as_ref())
            .map(|(m, _)| *m)
    }

    // ----- definition --------------------------------------------------

    fn define(&mut self, ent: Entity) -> R<EntityId> {
        if let Some(&other) = self.index.get(&ent.name) {
            let info = ent.info.unwrap_or(Info::new(0, 0));
            let other = &self.entities[other];
            return match other.info {
                Some(prev) => Err(Box::new(Raise {
                    info,
                    col: None,
                    msg: format!("'{}' is already defined", ent.name),
                    previous: Some(prev),
                })),
                None => err(info, format!("{} is already defined", other.describe())),
            };
        }
        let id = self.entities.len();
        self.index.insert(ent.name.clone(), id);
        self.entities.push(ent);
        Ok(id)
    }

    fn make_array_type(&mut self, element: &str, info: Option<Info>) -> R<String> {
        let name = format!("{element}List");
        if !self
            .lookup(&name)
            .is_some_and(|id| self.entities[id].is_type())
        {
            self.define(Entity {
                name: name.clone(),
                info,
                doc: None,
                ifcond: None,
                features: Vec::new(),
                kind: EntityKind::Array {
                    element_name: element.to_string(),
                    element: UNRESOLVED,
                },
            })?;
        }
        Ok(name)
    }

    fn make_features(&mut self, features: Option<&Value>, info: Info) -> Vec<Feature> {
        let Some(Value::List(features)) = features else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for f in features {
            let Some(d) = f.as_dict() else { continue };
            let name = d.get_str("name").unwrap_or_default().to_string();
            if !self.feature_names.iter().any(|f| f.name == name) {
                self.feature_names.push(Feature {
                    name: name.clone(),
                    info: Some(info),
                    ifcond: None,
                });
            }
            out.push(Feature {
                name,
                info: Some(info),
                ifcond: d.get("if").cloned(),
            });
        }
        out
    }

    fn make_type_ref(&mut self, typ: Option<&Value>, info: Info) -> R<String> {
        match typ {
            Some(Value::List(items)) => {
                let element = items.first().and_then(Value::as_str).unwrap_or_default();
                self.make_array_type(element, Some(info))
            }
            Some(Value::Str(s)) => Ok(s.clone()),
            _ => Ok(String::new()),
        }
    }

    fn make_members(
        &mut self,
        data: Option<&Value>,
        info: Info,
        defined_in: &str,
    ) -> R<Vec<Member>> {
        let Some(Value::Dict(data)) = data else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (key, value) in &data.0 {
            let (name, optional) = match key.strip_prefix('*') {
                Some(n) => (n.to_string(), true),
                None => (key.clone(), false),
            };
            let d = value.as_dict();
            let type_name = self.make_type_ref(d.and_then(|d| d.get("type")), info)?;
            let features = self.make_features(d.and_then(|d| d.get("features")), info);
            out.push(Member {
                name,
                info,
                type_name,
                ty: UNRESOLVED,
                optional,
                ifcond: d.and_then(|d| d.get("if")).cloned(),
                features,
                defined_in: defined_in.to_string(),
            });
        }
        Ok(out)
    }

    fn make_variants(
        &mut self,
        data: Option<&Value>,
        info: Info,
        defined_in: &str,
    ) -> R<Vec<Member>> {
        let Some(Value::Dict(data)) = data else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (key, value) in &data.0 {
            let d = value.as_dict();
            let type_name = self.make_type_ref(d.and_then(|d| d.get("type")), info)?;
            out.push(Member {
                name: key.clone(),
                info,
                type_name,
                ty: UNRESOLVED,
                optional: false,
                ifcond: d.and_then(|d| d.get("if")).cloned(),
                features: Vec::new(),
                defined_in: defined_in.to_string(),
            });
        }
        Ok(out)
    }

    fn make_implicit_object_type(
        &mut self,
        name: &str,
        info: Info,
        ifcond: Option<Value>,
        role: &str,
        members: &Value,
    ) -> R<Option<String>> {
        let name = format!("q_obj_{name}-{role}");
        let members = self.make_members(Some(members), info, &name)?;
        if members.is_empty() {
            return Ok(None);
        }
        if self.lookup(&name).is_none() {
            self.define(Entity {
                name: name.clone(),
                info: Some(info),
                doc: None,
                ifcond,
                features: Vec::new(),
                kind: EntityKind::Object(ObjectType {
                    base_name: None,
                    base: None,
                    local_members: members,
                    branches: None,
                    members: Vec::new(),
                }),
            })?;
        }
        Ok(Some(name))
    }

    fn def_predefineds(&mut self) -> R<()> {
        for f in ["deprecated", "unstable"] {
            self.feature_names.push(Feature {
                name: f.into(),
                info: None,
                ifcond: None,
            });
        }
        for (name, json_type) in BUILTINS {
            self.define(Entity {
                name: name.to_string(),
                info: None,
                doc: None,
                ifcond: None,
                features: Vec::new(),
                kind: EntityKind::Builtin { json_type },
            })?;
            self.make_array_type(name, None)?;
        }
        let object = |name: &str| Entity {
            name: name.into(),
            info: None,
            doc: None,
            ifcond: None,
            features: Vec::new(),
            kind: EntityKind::Object(ObjectType {
                base_name: None,
                base: None,
                local_members: Vec::new(),
                branches: None,
                members: Vec::new(),
            }),
        };
        self.define(object("q_empty"))?;
        let members = [
            "none", "qnull", "qnum", "qstring", "qdict", "qlist", "qbool",
        ]
        .iter()
        .map(|n| EnumMember {
            name: n.to_string(),
            info: None,
            ifcond: None,
            features: Vec::new(),
        })
        .collect();
        self.define(Entity {
            name: "QType".into(),
            info: None,
            doc: None,
            ifcond: None,
            features: Vec::new(),
            kind: EntityKind::Enum {
                members,
                prefix: None,
            },
        })?;
        Ok(())
    }

    fn def_expr(&mut self, expr: &Dict, info: Info, doc: Option<usize>) -> R<()> {
        let ifcond = expr.get("if").cloned();
        let flag = |k: &str, default: bool| expr.get_bool(k).unwrap_or(default);
        let entity = |name: &str, features, kind| Entity {
            name: name.to_string(),
            info: Some(info),
            doc,
            ifcond: ifcond.clone(),
            features,
            kind,
        };
        if let Some(name) = expr.get_str("enum") {
            let features = self.make_features(expr.get("features"), info);
            let mut members = Vec::new();
            if let Some(Value::List(data)) = expr.get("data") {
                for m in data.iter().filter_map(Value::as_dict) {
                    let mf = self.make_features(m.get("features"), info);
                    members.push(EnumMember {
                        name: m.get_str("name").unwrap_or_default().to_string(),
                        info: Some(info),
                        ifcond: m.get("if").cloned(),
                        features: mf,
                    });
                }
            }
            let prefix = expr.get_str("prefix").map(str::to_string);
            self.define(entity(name, features, EntityKind::Enum { members, prefix }))?;
        } else if let Some(name) = expr.get_str("struct") {
            let features = self.make_features(expr.get("features"), info);
            let local_members = self.make_members(expr.get("data"), info, name)?;
            let obj = ObjectType {
                base_name: expr.get_str("base").map(str::to_string),
                base: None,
                local_members,
                branches: None,
                members: Vec::new(),
            };
            self.define(entity(name, features, EntityKind::Object(obj)))?;
        } else if let Some(name) = expr.get_str("union") {
            let features = self.make_features(expr.get("features"), info);
            let base_name = match expr.get("base") {
                Some(Value::Str(s)) => Some(s.clone()),
                Some(base @ Value::Dict(_)) => {
                    self.make_implicit_object_type(name, info, ifcond.clone(), "base", base)?
                }
                _ => None,
            };
            let variants = self.make_variants(expr.get("data"), info, name)?;
            let obj = ObjectType {
                base_name,
                base: None,
                local_members: Vec::new(),
                branches: Some(Branches {
                    tag_name: expr
                        .get_str("discriminator")
                        .unwrap_or_default()
                        .to_string(),
                    tag_member: None,
                    variants,
                }),
                members: Vec::new(),
            };
            self.define(entity(name, features, EntityKind::Object(obj)))?;
        } else if let Some(name) = expr.get_str("alternate") {
            let features = self.make_features(expr.get("features"), info);
            let variants = self.make_variants(expr.get("data"), info, name)?;
            self.define(entity(name, features, EntityKind::Alternate { variants }))?;
        } else if let Some(name) = expr.get_str("command") {
            let features = self.make_features(expr.get("features"), info);
            let arg_type_name = match expr.get("data") {
                Some(Value::Str(s)) => Some(s.clone()),
                Some(data @ Value::Dict(_)) => {
                    self.make_implicit_object_type(name, info, ifcond.clone(), "arg", data)?
                }
                _ => None,
            };
            let ret_type_name = match expr.get("returns") {
                None => None,
                r => Some(self.make_type_ref(r, info)?),
            };
            let cmd = Command {
                arg_type_name,
                arg_type: None,
                ret_type_name,
                ret_type: None,
                generate: flag("gen", true),
                success_response: flag("success-response", true),
                boxed: flag("boxed", false),
                allow_oob: flag("allow-oob", false),
                allow_preconfig: flag("allow-preconfig", false),
                coroutine: flag("coroutine", false),
            };
            self.define(entity(name, features, EntityKind::Command(cmd)))?;
        } else if let Some(name) = expr.get_str("event") {
            let features = self.make_features(expr.get("features"), info);
            let arg_type_name = match expr.get("data") {
                Some(Value::Str(s)) => Some(s.clone()),
                Some(data @ Value::Dict(_)) => {
                    self.make_implicit_object_type(name, info, ifcond.clone(), "arg", data)?
                }
                _ => None,
            };
            let ev = Event {
                arg_type_name,
                arg_type: None,
                boxed: flag("boxed", false),
            };
            self.define(entity(name, features, EntityKind::Event(ev)))?;
        }
        Ok(())
    }

    fn build(
        &mut self,
        loader: &dyn Loader,
        root: &str,
        root_dir: &str,
        exprs: Vec<RawExpr>,
    ) -> R<()> {
        let builtin = "./builtin".to_string();
        let base = module_base(loader, root_dir);
        let root_module = module_name(loader, &base, root);
        self.modules.push(Module {
            name: builtin,
            entities: Vec::new(),
        });
        self.modules.push(Module {
            name: root_module,
            entities: Vec::new(),
        });
        self.def_predefineds()?;
        for raw in &exprs {
            match raw {
                RawExpr::Include { path, info } => {
                    let module = module_name(loader, &base, path);
                    if !self.modules.iter().any(|m| m.name == module) {
                        self.modules.push(Module {
                            name: module.clone(),
                            entities: Vec::new(),
                        });
                    }
                    self.entities.push(Entity {
                        name: String::new(),
                        info: Some(*info),
                        doc: None,
                        ifcond: None,
                        features: Vec::new(),
                        kind: EntityKind::Include { module },
                    });
                }
                RawExpr::Defn { expr, info, doc } => self.def_expr(expr, *info, *doc)?,
            }
        }
        self.check(loader, root_dir)
    }

    // ----- checking ----------------------------------------------------

    fn resolve_type(&self, name: &str, info: Info, what: &dyn Fn() -> String) -> R<EntityId> {
        match self.lookup(name) {
            Some(id) if self.entities[id].is_type() => Ok(id),
            _ => err(info, format!("{} uses unknown type '{name}'", what())),
        }
    }

    fn check_features_clash(&self, features: &[Feature], info: Info, defined_in: &str) -> R<()> {
        for (i, f) in features.iter().enumerate() {
            if let Some(other) = features[..i].iter().find(|o| c_name_eq(&o.name, &f.name)) {
                let dn = self.defn_name(info);
                return err(
                    info,
                    format!(
                        "{} collides with {}",
                        describe_member("feature", &f.name, defined_in, dn),
                        describe_member("feature", &other.name, defined_in, dn)
                    ),
                );
            }
        }
        Ok(())
    }

    /// QEMU's `QAPISchemaDefinition.check` and `QAPISchemaType.check`.
    fn check_definition(&self, id: EntityId) -> R<()> {
        let e = &self.entities[id];
        let Some(info) = e.info else { return Ok(()) };
        self.check_features_clash(&e.features, info, &e.name)?;
        if e.is_type()
            && let Some(f) = e.features.iter().find(|f| f.is_special())
        {
            return err(
                info,
                format!("feature '{}' is not supported for types", f.name),
            );
        }
        Ok(())
    }

    /// Resolves a member's type and checks its features.
    fn check_member(&self, m: &Member, role: &str) -> R<EntityId> {
        let ty = self.resolve_type(&m.type_name, m.info, &|| {
            describe_member(role, &m.name, &m.defined_in, self.defn_name(m.info))
        })?;
        self.check_features_clash(&m.features, m.info, &m.name)?;
        Ok(ty)
    }

    fn describe_ref(&self, r: (EntityId, usize), info: Info) -> String {
        let m = self.member(r);
        describe_member("member", &m.name, &m.defined_in, self.defn_name(info))
    }

    fn clash(&self, seen: &mut Vec<(EntityId, usize)>, r: (EntityId, usize), info: Info) -> R<()> {
        let name = &self.member(r).name;
        if let Some(other) = seen
            .iter()
            .find(|&&o| c_name_eq(&self.member(o).name, name))
        {
            return err(
                info,
                format!(
                    "{} collides with {}",
                    self.describe_ref(r, info),
                    self.describe_ref(*other, info)
                ),
            );
        }
        seen.push(r);
        Ok(())
    }

    /// QEMU's `QAPISchemaObjectType.check_clash`: the members of object
    /// type `id` (and of each of its branches) against `seen`.
    fn object_check_clash(
        &self,
        id: EntityId,
        info: Info,
        seen: &mut Vec<(EntityId, usize)>,
        depth: usize,
    ) -> R<()> {
        if depth > MAX_DEPTH {
            return err(info, "types nest too deeply");
        }
        let Some(o) = self.entities[id].as_object() else {
            return Ok(());
        };
        for &r in &o.members {
            self.clash(seen, r, info)?;
        }
        if let Some(b) = &o.branches {
            // Each branch against the members seen so far, not against
            // the other branches.
            let len = seen.len();
            for v in &b.variants {
                self.object_check_clash(v.ty, info, seen, depth + 1)?;
                seen.truncate(len);
            }
        }
        Ok(())
    }

    fn check_object(&mut self, id: EntityId, states: &mut [State], depth: usize) -> R<()> {
        match states[id] {
            State::Done => return Ok(()),
            State::Checking => {
                let e = &self.entities[id];
                return err(
                    e.info.unwrap_or(Info::new(0, 0)),
                    format!("object {} contains itself", e.name),
                );
            }
            State::Unchecked => {}
        }
        let Some(info) = self.entities[id].info else {
            states[id] = State::Done; // q_empty
            return Ok(());
        };
        if depth > MAX_DEPTH {
            return err(info, "types nest too deeply");
        }
        states[id] = State::Checking;
        self.check_definition(id)?;
        let Some(obj) = self.entities[id].as_object() else {
            return Ok(());
        };
        let base_name = obj.base_name.clone();
        let n_local = obj.local_members.len();
        let branches = obj.branches.clone();
        let mut seen: Vec<(EntityId, usize)> = Vec::new();
        let mut base = None;
        if let Some(base_name) = &base_name {
            let b = self.resolve_type(base_name, info, &|| "'base'".into())?;
            let be = &self.entities[b];
            if be.as_object().is_none_or(|o| o.branches.is_some()) {
                return err(
                    info,
                    format!("'base' requires a struct type, {} isn't", be.describe()),
                );
            }
            self.check_object(b, states, depth + 1)?;
            self.object_check_clash(b, info, &mut seen, depth + 1)?;
            base = Some(b);
        }
        for i in 0..n_local {
            let ty = self.check_member(self.member((id, i)), "member")?;
            if let EntityKind::Object(o) = &mut self.entities[id].kind {
                o.local_members[i].ty = ty;
            }
            self.clash(&mut seen, (id, i), info)?;
        }
        let members = seen.clone();
        if let Some(mut b) = branches {
            self.check_branches(id, info, &mut b, &seen, states, depth)?;
            let variants: Vec<EntityId> = b.variants.iter().map(|v| v.ty).collect();
            if let EntityKind::Object(o) = &mut self.entities[id].kind {
                o.branches = Some(b);
            }
            let len = seen.len();
            for ty in variants {
                self.object_check_clash(ty, info, &mut seen, depth + 1)?;
                seen.truncate(len);
            }
        }
        if let EntityKind::Object(o) = &mut self.entities[id].kind {
            o.base = base;
            o.members = members;
        }
        states[id] = State::Done;
        Ok(())
    }

    fn check_branches(
        &mut self,
        _id: EntityId,
        info: Info,
        b: &mut Branches,
        seen: &[(EntityId, usize)],
        states: &mut [State],
        depth: usize,
    ) -> R<()> {
        let tag = seen
            .iter()
            .copied()
            .find(|&r| c_name_eq(&self.member(r).name, &b.tag_name))
            .filter(|&r| self.member(r).name == b.tag_name);
        let Some(tag) = tag else {
            return err(
                info,
                format!("discriminator '{}' is not a member of 'base'", b.tag_name),
            );
        };
        b.tag_member = Some(tag);
        let tm = self.member(tag).clone();
        let mut base = "'base'".to_string();
        if let Some(bt) = self.lookup(&tm.defined_in)
            && !self.entities[bt].is_implicit()
        {
            base = format!("base type '{}'", tm.defined_in);
        }
        let EntityKind::Enum {
            members: values, ..
        } = &self.entities[tm.ty].kind
        else {
            return err(
                info,
                format!(
                    "discriminator member '{}' of {base} must be of enum type",
                    b.tag_name
                ),
            );
        };
        if tm.optional {
            return err(
                info,
                format!(
                    "discriminator member '{}' of {base} must not be optional",
                    b.tag_name
                ),
            );
        }
        if tm.ifcond.is_some() {
            return err(
                info,
                format!(
                    "discriminator member '{}' of {base} must not be conditional",
                    b.tag_name
                ),
            );
        }
        let values = values.clone();
        let enum_desc = self.entities[tm.ty].describe();
        for m in &values {
            if !b.variants.iter().any(|v| v.name == m.name) {
                b.variants.push(Member {
                    name: m.name.clone(),
                    info,
                    type_name: "q_empty".into(),
                    ty: UNRESOLVED,
                    optional: false,
                    ifcond: m.ifcond.clone(),
                    features: Vec::new(),
                    defined_in: tm.defined_in.clone(),
                });
            }
        }
        if b.variants.is_empty() {
            return err(info, "union has no branches");
        }
        for v in b.variants.iter_mut() {
            v.ty = self.check_member(v, "branch")?;
            if !values.iter().any(|m| m.name == v.name) {
                return err(
                    info,
                    format!("branch '{}' is not a value of {enum_desc}", v.name),
                );
            }
            let vt = &self.entities[v.ty];
            if vt.as_object().is_none() {
                return err(
                    info,
                    format!(
                        "{} cannot use {}",
                        describe_member("branch", &v.name, &v.defined_in, self.defn_name(info)),
                        vt.describe()
                    ),
                );
            }
            self.check_object(v.ty, states, depth + 1)?;
        }
        Ok(())
    }

    fn check_alternate(&mut self, id: EntityId) -> R<()> {
        self.check_definition(id)?;
        let e = &self.entities[id];
        let Some(info) = e.info else { return Ok(()) };
        let EntityKind::Alternate { variants } = &e.kind else {
            return Ok(());
        };
        let mut variants = variants.clone();
        for v in variants.iter_mut() {
            v.ty = self.check_member(v, "branch")?;
        }
        let dn = self.defn_name(info);
        let mut types_seen: Vec<(&'static str, &str)> = Vec::new();
        for (i, v) in variants.iter().enumerate() {
            let desc = describe_member("branch", &v.name, &v.defined_in, dn);
            if let Some(other) = variants[..i].iter().find(|o| c_name_eq(&o.name, &v.name)) {
                return err(
                    info,
                    format!(
                        "{desc} collides with {}",
                        describe_member("branch", &other.name, &v.defined_in, dn)
                    ),
                );
            }
            let vt = &self.entities[v.ty];
            let qtype = match vt.json_type() {
                "null" => "QTYPE_QNULL",
                "string" => "QTYPE_QSTRING",
                "number" | "int" => "QTYPE_QNUM",
                "boolean" => "QTYPE_QBOOL",
                "array" => "QTYPE_QLIST",
                "object" => "QTYPE_QDICT",
                _ => return err(info, format!("{desc} cannot use {}", vt.describe())),
            };
            let mut conflicting = vec![qtype];
            if qtype == "QTYPE_QSTRING" {
                if let EntityKind::Enum { members, .. } = &vt.kind {
                    for m in members {
                        if m.name == "on" || m.name == "off" {
                            conflicting.push("QTYPE_QBOOL");
                        }
                        if m.name.starts_with(|c: char| "-+0123456789.".contains(c)) {
                            conflicting.push("QTYPE_QNUM");
                        }
                    }
                } else {
                    conflicting.push("QTYPE_QNUM");
                    conflicting.push("QTYPE_QBOOL");
                }
            }
            conflicting.sort_unstable();
            conflicting.dedup();
            for qt in conflicting {
                if let Some((_, other)) = types_seen.iter().find(|(t, _)| *t == qt) {
                    return err(
                        info,
                        format!("{desc} can't be distinguished from '{other}'"),
                    );
                }
                types_seen.push((qt, &v.name));
            }
        }
        if let EntityKind::Alternate { variants: vs } = &mut self.entities[id].kind {
            *vs = variants;
        }
        Ok(())
    }

    fn has_conditional_members(&self, id: EntityId) -> bool {
        self.entities[id]
            .as_object()
            .is_some_and(|o| o.members.iter().any(|&r| self.member(r).ifcond.is_some()))
    }

    fn check_args(
        &mut self,
        name: &str,
        info: Info,
        boxed: bool,
        what: &str,
        states: &mut [State],
    ) -> R<EntityId> {
        let t = self.resolve_type(name, info, &|| format!("{what}'s 'data'"))?;
        let te = &self.entities[t];
        let Some(o) = te.as_object() else {
            return err(
                info,
                format!("{what}'s 'data' cannot take {}", te.describe()),
            );
        };
        if o.branches.is_some() && !boxed {
            return err(
                info,
                format!(
                    "{what}'s 'data' can take {} only with 'boxed': true",
                    te.describe()
                ),
            );
        }
        self.check_object(t, states, 0)?;
        if self.has_conditional_members(t) && !boxed {
            return err(
                info,
                format!("conditional {what} arguments require 'boxed': true"),
            );
        }
        Ok(t)
    }

    fn check_entity(&mut self, id: EntityId, states: &mut [State]) -> R<()> {
        let info = self.entities[id].info;
        // Objects are checked in place (cloning them would dominate).
        if matches!(self.entities[id].kind, EntityKind::Object(_)) {
            return self.check_object(id, states, 0);
        }
        if let EntityKind::Enum { members, .. } = &self.entities[id].kind {
            self.check_definition(id)?;
            if let Some(info) = info {
                let dn = self.defn_name(info);
                let name = &self.entities[id].name;
                for (i, m) in members.iter().enumerate() {
                    if let Some(other) = members[..i].iter().find(|o| c_name_eq(&o.name, &m.name)) {
                        return err(
                            info,
                            format!(
                                "{} collides with {}",
                                describe_member("value", &m.name, name, dn),
                                describe_member("value", &other.name, name, dn)
                            ),
                        );
                    }
                }
            }
            return Ok(());
        }
        match self.entities[id].kind.clone() {
            // Enums were checked above.
            EntityKind::Include { .. } | EntityKind::Builtin { .. } | EntityKind::Enum { .. } => {}
            EntityKind::Array { element_name, .. } => {
                self.check_definition(id)?;
                let ainfo = info.unwrap_or(Info::new(0, 0));
                let meta = info.and_then(|i| self.defn_meta(i)).unwrap_or("array");
                let element = self.resolve_type(&element_name, ainfo, &|| meta.to_string())?;
                if matches!(self.entities[element].kind, EntityKind::Array { .. }) {
                    return err(
                        ainfo,
                        format!(
                            "{meta} uses array of array type '{element_name}', which is not supported"
                        ),
                    );
                }
                if let EntityKind::Array { element: e, .. } = &mut self.entities[id].kind {
                    *e = element;
                }
            }
            EntityKind::Object(_) => self.check_object(id, states, 0)?,
            EntityKind::Alternate { .. } => self.check_alternate(id)?,
            EntityKind::Command(mut c) => {
                self.check_definition(id)?;
                let info = info.unwrap_or(Info::new(0, 0));
                if let Some(a) = &c.arg_type_name {
                    c.arg_type = Some(self.check_args(a, info, c.boxed, "command", states)?);
                }
                if let Some(r) = &c.ret_type_name {
                    let rt = self.resolve_type(r, info, &|| "command's 'returns'".into())?;
                    c.ret_type = Some(rt);
                    let name = &self.entities[id].name;
                    if !self
                        .pragma
                        .command_returns_exceptions
                        .iter()
                        .any(|e| e == name)
                    {
                        let mut t = rt;
                        if let EntityKind::Array { element, .. } = self.entities[t].kind {
                            t = element;
                        }
                        if self.entities.get(t).is_none_or(|e| e.as_object().is_none()) {
                            return err(
                                info,
                                format!(
                                    "command's 'returns' cannot take {}",
                                    self.entities[rt].describe()
                                ),
                            );
                        }
                    }
                }
                self.entities[id].kind = EntityKind::Command(c);
            }
            EntityKind::Event(mut ev) => {
                self.check_definition(id)?;
                let info = info.unwrap_or(Info::new(0, 0));
                if let Some(a) = &ev.arg_type_name {
                    ev.arg_type = Some(self.check_args(a, info, ev.boxed, "event", states)?);
                }
                self.entities[id].kind = EntityKind::Event(ev);
            }
        }
        Ok(())
    }

    fn connect_object_members(&mut self, doc: usize, id: EntityId) -> R<()> {
        let Some(o) = self.entities[id].as_object() else {
            return Ok(());
        };
        let exceptions = &self.pragma;
        for m in &o.local_members {
            self.docs[doc].connect_member(&m.name, "member", m.info, exceptions)?;
            for f in &m.features {
                self.docs[doc].connect_feature(&f.name, m.info)?;
            }
        }
        Ok(())
    }

    fn connect_doc(&mut self, id: EntityId) -> R<()> {
        let e = &self.entities[id];
        let Some(doc) = e.doc else { return Ok(()) };
        let Some(info) = e.info else { return Ok(()) };
        for f in &e.features {
            self.docs[doc].connect_feature(&f.name, f.info.unwrap_or(info))?;
        }
        let exceptions = &self.pragma;
        match &e.kind {
            EntityKind::Enum { members, .. } => {
                for m in members {
                    let mi = m.info.unwrap_or(info);
                    self.docs[doc].connect_member(&m.name, "value", mi, exceptions)?;
                    for f in &m.features {
                        self.docs[doc].connect_feature(&f.name, mi)?;
                    }
                }
            }
            EntityKind::Object(o) => {
                if let Some(b) = o.base
                    && self.entities[b].is_implicit()
                {
                    self.connect_object_members(doc, b)?;
                }
                self.connect_object_members(doc, id)?;
            }
            EntityKind::Alternate { variants } => {
                for v in variants {
                    self.docs[doc].connect_member(&v.name, "branch", v.info, exceptions)?;
                }
            }
            EntityKind::Command(Command {
                arg_type: Some(a), ..
            })
            | EntityKind::Event(Event {
                arg_type: Some(a), ..
            }) => {
                let a = *a;
                if self.entities[a].is_implicit() {
                    self.connect_object_members(doc, a)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check(&mut self, loader: &dyn Loader, root_dir: &str) -> R<()> {
        let mut states = vec![State::Unchecked; self.entities.len()];
        for id in 0..self.entities.len() {
            self.check_entity(id, &mut states)?;
            self.connect_doc(id)?;
        }
        // Modules (the name of each file's module computed once).
        let base = module_base(loader, root_dir);
        let mut file_modules: HashMap<crate::source::FileId, usize> = HashMap::new();
        for id in 0..self.entities.len() {
            let e = &self.entities[id];
            let info = match &e.kind {
                EntityKind::Array { element, .. } => {
                    self.entities.get(*element).and_then(|e| e.info)
                }
                _ => e.info,
            };
            let module = match info {
                None => self.modules.iter().position(|m| m.name == "./builtin"),
                Some(i) => match file_modules.get(&i.file) {
                    Some(&m) => Some(m),
                    None => {
                        let name = module_name(loader, &base, self.sources.path(i.file));
                        let m = self.modules.iter().position(|m| m.name == name);
                        if let Some(m) = m {
                            file_modules.insert(i.file, m);
                        }
                        m
                    }
                },
            };
            if let Some(m) = module {
                self.modules[m].entities.push(id);
            }
        }
        for d in &self.docs {
            d.check()?;
        }
        if let Some(f) = self.feature_names.get(64) {
            return err(
                f.info.unwrap_or(Info::new(0, 0)),
                "Maximum of 64 schema features is permitted",
            );
        }
        Ok(())
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
