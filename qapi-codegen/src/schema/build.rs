//! Building the model: loading, then defining every entity from the
//! checked expressions (built-in, implicit and array types included).

use super::*;

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
            versioning: None,
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

    // ----- definition --------------------------------------------------

    pub(super) fn define(&mut self, ent: Entity) -> R<EntityId> {
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

    pub(super) fn make_array_type(&mut self, element: &str, info: Option<Info>) -> R<String> {
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

    pub(super) fn make_features(&mut self, features: Option<&Value>, info: Info) -> Vec<Feature> {
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

    pub(super) fn make_type_ref(&mut self, typ: Option<&Value>, info: Info) -> R<String> {
        match typ {
            Some(Value::List(items)) => {
                let element = items.first().and_then(Value::as_str).unwrap_or_default();
                self.make_array_type(element, Some(info))
            }
            Some(Value::Str(s)) => Ok(s.clone()),
            _ => Ok(String::new()),
        }
    }

    pub(super) fn make_members(
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

    pub(super) fn make_variants(
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

    pub(super) fn make_implicit_object_type(
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

    pub(super) fn def_predefineds(&mut self) -> R<()> {
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

    pub(super) fn def_expr(&mut self, expr: &Dict, info: Info, doc: Option<usize>) -> R<()> {
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

    pub(super) fn build(
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
}
