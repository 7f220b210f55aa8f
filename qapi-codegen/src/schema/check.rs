//! Checking the model in definition order: types resolve, members do
//! not clash, unions and alternates fit, commands' `data`/`returns` are
//! allowed, doc comments describe exactly what exists.

use super::*;

impl Schema {
    // ----- checking ----------------------------------------------------

    pub(super) fn resolve_type(
        &self,
        name: &str,
        info: Info,
        what: &dyn Fn() -> String,
    ) -> R<EntityId> {
        match self.lookup(name) {
            Some(id) if self.entities[id].is_type() => Ok(id),
            _ => err(info, format!("{} uses unknown type '{name}'", what())),
        }
    }

    pub(super) fn check_features_clash(
        &self,
        features: &[Feature],
        info: Info,
        defined_in: &str,
    ) -> R<()> {
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
    pub(super) fn check_definition(&self, id: EntityId) -> R<()> {
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
    pub(super) fn check_member(&self, m: &Member, role: &str) -> R<EntityId> {
        let ty = self.resolve_type(&m.type_name, m.info, &|| {
            describe_member(role, &m.name, &m.defined_in, self.defn_name(m.info))
        })?;
        self.check_features_clash(&m.features, m.info, &m.name)?;
        Ok(ty)
    }

    pub(super) fn describe_ref(&self, r: (EntityId, usize), info: Info) -> String {
        let m = self.member(r);
        describe_member("member", &m.name, &m.defined_in, self.defn_name(info))
    }

    pub(super) fn clash(
        &self,
        seen: &mut Vec<(EntityId, usize)>,
        r: (EntityId, usize),
        info: Info,
    ) -> R<()> {
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
    pub(super) fn object_check_clash(
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

    pub(super) fn check_object(
        &mut self,
        id: EntityId,
        states: &mut [State],
        depth: usize,
    ) -> R<()> {
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

    pub(super) fn check_branches(
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

    pub(super) fn check_alternate(&mut self, id: EntityId) -> R<()> {
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

    pub(super) fn has_conditional_members(&self, id: EntityId) -> bool {
        self.entities[id]
            .as_object()
            .is_some_and(|o| o.members.iter().any(|&r| self.member(r).ifcond.is_some()))
    }

    pub(super) fn check_args(
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

    pub(super) fn check_entity(&mut self, id: EntityId, states: &mut [State]) -> R<()> {
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

    pub(super) fn connect_object_members(&mut self, doc: usize, id: EntityId) -> R<()> {
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

    pub(super) fn connect_doc(&mut self, id: EntityId) -> R<()> {
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

    pub(super) fn check(&mut self, loader: &dyn Loader, root_dir: &str) -> R<()> {
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
}
