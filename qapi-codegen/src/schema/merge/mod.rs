//! Several checked schemas, one per QEMU release (oldest first), merged
//! into one versioned model ([`Schema::merge`]).
//!
//! The newest schema is the base: its names, docs and features win. Each
//! older one is folded in, newest to oldest:
//!
//! 1. Types are paired by position, starting from the commands and events
//!    both have (arguments, return types), then members by name, bases,
//!    branches and array elements. An old type whose name the newer schema
//!    no longer has, found where a newer type sits, was renamed: it is
//!    merged into the newer one and recorded as an [`Alias`].
//! 2. Entities, members, enum values and branches are the union; each
//!    knows the versions that have it ([`Versioning`]).
//! 3. A member is required only when every version that has its type
//!    requires it and no `if` guards it (the `if` rule holds for one
//!    schema too, see [`Schema::apply_if_rule`]).
//! 4. A member whose type changed between versions gets a type that reads
//!    every form (see [`MergeNote`] for each resolution).
//!
//! Every conflict met is a [`MergeNote`] in [`Versioning::notes`]; the
//! generator prints them.
//!
//! The jobs, one file each: [`versioning`] is the model of who has what
//! (with a typed [`Key`] for each entity, member, value and branch);
//! `pairing` pairs an older schema's types with the merged model's;
//! `entity` folds one older entity into its merged counterpart;
//! `widening` decides what a member whose type changed becomes. This
//! file drives them and keeps the model linked.

mod entity;
mod pairing;
pub mod versioning;
mod widening;

use std::collections::{HashMap, HashSet};

use super::*;
pub(crate) use pairing::correspond_types;
pub use versioning::{Alias, Key, MergeNote, NoteKind, VersionSet, Versioning};

/// Old type name → merged type name, for one older schema.
type Corr = HashMap<String, String>;

/// How one older version folds in: type renames, source locations,
/// its version bit.
type Fold<'a> = (
    &'a dyn Fn(&str) -> String,
    &'a dyn Fn(Info) -> Info,
    VersionSet,
);

impl Schema {
    /// Merges checked schemas, one per version, oldest first, into one
    /// model whose [`Schema::versioning`] says which versions have what.
    /// `versions` holds (label, schema) pairs; at most 64.
    pub fn merge(versions: Vec<(String, Schema)>) -> Result<Schema> {
        if versions.is_empty() || versions.len() > 64 {
            return Err(crate::Error::Merge(format!(
                "merging needs 1 to 64 schemas, not {}",
                versions.len()
            )));
        }
        let n = versions.len();
        let (labels, schemas): (Vec<String>, Vec<Schema>) = versions.into_iter().unzip();
        let mut schemas = schemas;
        let mut m = schemas
            .pop()
            .unwrap_or_else(|| unreachable!("checked non-empty above"));
        let mut v = Versioning {
            labels,
            ..Versioning::default()
        };
        let newest: VersionSet = 1 << (n - 1);
        m.record_presence(&mut v, newest);
        v.record_conditions(&m, &|x: &str| x.to_string(), newest);
        for (k, o) in schemas.iter().enumerate().rev() {
            let bit: VersionSet = 1 << k;
            let label = v.labels[k].clone();
            let corr = correspond_types(o, &m, &label, bit, &mut v);
            let map = |x: &str| corr.get(x).cloned().unwrap_or_else(|| x.to_string());
            v.record_conditions(o, &map, bit);
            m.fold_in(o, &corr, bit, &mut v)?;
        }
        m.relink()?;
        m.apply_presence_rule(&mut v);
        m.versioning = Some(v);
        m.apply_if_rule();
        m.relink()?;
        Ok(m)
    }

    /// Makes every member guarded by an `if` optional: QEMU built without
    /// the condition does not send it. (Commands, events, enum values and
    /// branches under an `if` keep their condition in the metadata.)
    pub fn apply_if_rule(&mut self) {
        let mut notes = Vec::new();
        let versioning = self.versioning.take();
        for e in &mut self.entities {
            let owner = e.name.clone();
            if let EntityKind::Object(o) = &mut e.kind {
                for mem in &mut o.local_members {
                    let key = Key::member(&owner, &mem.name);
                    let guarded = mem.ifcond.is_some()
                        || versioning
                            .as_ref()
                            .is_some_and(|v| v.ever_conditional(&key));
                    if guarded && !mem.optional {
                        mem.optional = true;
                        notes.push(MergeNote {
                            kind: NoteKind::MadeOptional,
                            subject: format!("type '{owner}' member '{}'", mem.name),
                            text: "required but guarded by `if` (in some version): optional".into(),
                        });
                    }
                }
            }
        }
        self.versioning = versioning;
        if let Some(v) = &mut self.versioning {
            v.notes.extend(notes);
        }
    }

    /// Records that every entity, member, value and branch of `self`
    /// exists in `bit`.
    fn record_presence(&self, v: &mut Versioning, bit: VersionSet) {
        for e in &self.entities {
            v.record_entity(e, bit);
        }
    }

    /// Folds the older schema `o` (version `bit`) into `self`.
    fn fold_in(
        &mut self,
        o: &Schema,
        corr: &Corr,
        bit: VersionSet,
        v: &mut Versioning,
    ) -> Result<()> {
        let file_off = u32::try_from(self.sources.files.len()).unwrap_or(u32::MAX / 2);
        self.sources.files.extend(o.sources.files.iter().cloned());
        let remap = |i: Info| Info {
            file: i.file + file_off,
            ..i
        };
        let doc_off = self.docs.len();
        self.docs.extend(o.docs.iter().cloned().map(|mut d| {
            d.info = remap(d.info);
            d
        }));
        let map = |n: &str| corr.get(n).cloned().unwrap_or_else(|| n.to_string());
        // The module of each of `o`'s entities.
        let mut module_of: HashMap<EntityId, &str> = HashMap::new();
        for md in &o.modules {
            for &id in &md.entities {
                module_of.insert(id, &md.name);
            }
        }
        let mut pending = Vec::new();
        for (oid, oe) in o.entities.iter().enumerate() {
            if matches!(oe.kind, EntityKind::Include { .. }) {
                continue;
            }
            let name = map(&oe.name);
            match self.index.get(&name).copied() {
                None => {
                    let mut e = oe.clone();
                    e.name = name.clone();
                    e.info = e.info.map(remap);
                    e.doc = e.doc.map(|d| d + doc_off);
                    rename_refs(&mut e, &map, &remap);
                    let id = self.entities.len();
                    self.index.insert(name.clone(), id);
                    self.entities.push(e);
                    let module = module_of.get(&oid).copied().unwrap_or("./builtin");
                    match self.modules.iter_mut().find(|md| md.name == module) {
                        Some(md) => md.entities.push(id),
                        None => self.modules.push(Module {
                            name: module.to_string(),
                            entities: vec![id],
                        }),
                    }
                    // Everything in it exists in this version.
                    v.record_entity(&self.entities[id], bit);
                }
                Some(mid) => {
                    v.mark(Key::entity(&name), bit);
                    // An implicit type's members are described by its
                    // command's, event's or union's doc.
                    let doc = oe
                        .doc
                        .or_else(|| o.entities[o.lookup(implicit_owner(&oe.name)?)?].doc)
                        .map(|d| d + doc_off);
                    let mut f = entity::Folding {
                        mid,
                        fold: (&map, &remap, bit),
                        old_doc: doc,
                        v,
                        pending: &mut pending,
                    };
                    self.merge_entity(oe, &mut f);
                }
            }
        }
        // Ids and member lists are valid again before types are compared.
        self.relink()?;
        self.resolve_type_changes(o, corr, pending, v);
        Ok(())
    }

    /// Makes members optional that some version having their type lacks.
    fn apply_presence_rule(&mut self, v: &mut Versioning) {
        let mut notes = Vec::new();
        for e in &mut self.entities {
            let owner = e.name.clone();
            let has_type = v.entity(&owner);
            if let EntityKind::Object(o) = &mut e.kind {
                for mem in &mut o.local_members {
                    let has = v.member(&owner, &mem.name);
                    if has_type & !has != 0 && !mem.optional {
                        mem.optional = true;
                        notes.push(MergeNote {
                            kind: NoteKind::MadeOptional,
                            subject: format!("type '{owner}' member '{}'", mem.name),
                            text: format!(
                                "only in {} of {}: optional",
                                v.names(has).join(", "),
                                v.names(has_type).join(", ")
                            ),
                        });
                    }
                }
            }
        }
        v.notes.extend(notes);
    }

    /// Resolves every reference by name again, and recomputes each
    /// object's member list and discriminator.
    fn relink(&mut self) -> Result<()> {
        let index = &self.index;
        let find = |n: &str| -> Result<EntityId> {
            index.get(n).copied().ok_or_else(|| {
                crate::Error::Merge(format!("merged model: type '{n}' is not defined"))
            })
        };
        let mut resolved: Vec<(EntityId, EntityKind)> = Vec::new();
        for (id, e) in self.entities.iter().enumerate() {
            let mut kind = e.kind.clone();
            match &mut kind {
                EntityKind::Array {
                    element_name,
                    element,
                } => *element = find(element_name)?,
                EntityKind::Object(o) => {
                    o.base = o.base_name.as_deref().map(&find).transpose()?;
                    for m in &mut o.local_members {
                        m.ty = find(&m.type_name)?;
                    }
                    if let Some(b) = &mut o.branches {
                        for m in &mut b.variants {
                            m.ty = find(&m.type_name)?;
                        }
                    }
                }
                EntityKind::Alternate { variants } => {
                    for m in variants {
                        m.ty = find(&m.type_name)?;
                    }
                }
                EntityKind::Command(c) => {
                    c.arg_type = c.arg_type_name.as_deref().map(&find).transpose()?;
                    c.ret_type = c.ret_type_name.as_deref().map(&find).transpose()?;
                }
                EntityKind::Event(ev) => {
                    ev.arg_type = ev.arg_type_name.as_deref().map(&find).transpose()?;
                }
                _ => continue,
            }
            resolved.push((id, kind));
        }
        for (id, kind) in resolved {
            self.entities[id].kind = kind;
        }
        // Member lists, bases first.
        let mut done: HashSet<EntityId> = HashSet::new();
        for id in 0..self.entities.len() {
            self.relink_members(id, &mut done, 0)?;
        }
        Ok(())
    }

    fn relink_members(
        &mut self,
        id: EntityId,
        done: &mut HashSet<EntityId>,
        depth: usize,
    ) -> Result<()> {
        if done.contains(&id) {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(crate::Error::Merge(format!(
                "merged model: the bases of '{}' nest too deeply",
                self.entities[id].name
            )));
        }
        let Some(o) = self.entities[id].as_object() else {
            done.insert(id);
            return Ok(());
        };
        let mut members = Vec::new();
        if let Some(b) = o.base {
            self.relink_members(b, done, depth + 1)?;
            if let Some(bo) = self.entities[b].as_object() {
                members.extend(bo.members.iter().copied());
            }
        }
        let Some(o) = self.entities[id].as_object() else {
            return Ok(());
        };
        members.extend((0..o.local_members.len()).map(|i| (id, i)));
        let tag = o.branches.as_ref().map(|b| {
            members
                .iter()
                .copied()
                .find(|&r| self.member(r).name == b.tag_name)
        });
        if let EntityKind::Object(o) = &mut self.entities[id].kind {
            o.members = members;
            if let (Some(b), Some(tag)) = (&mut o.branches, tag) {
                b.tag_member = tag;
            }
        }
        done.insert(id);
        Ok(())
    }
}

/// Renames the type references of a copied entity.
fn rename_refs(e: &mut Entity, map: &dyn Fn(&str) -> String, remap: &dyn Fn(Info) -> Info) {
    let fix = |m: &mut Member| {
        m.type_name = map(&m.type_name);
        m.ty = UNRESOLVED;
        m.info = remap(m.info);
    };
    match &mut e.kind {
        EntityKind::Array { element_name, .. } => *element_name = map(element_name),
        EntityKind::Object(o) => {
            o.base_name = o.base_name.as_deref().map(map);
            o.local_members.iter_mut().for_each(fix);
            if let Some(b) = &mut o.branches {
                b.variants.iter_mut().for_each(fix);
            }
        }
        EntityKind::Alternate { variants } => variants.iter_mut().for_each(fix),
        EntityKind::Command(c) => {
            c.arg_type_name = c.arg_type_name.as_deref().map(map);
            c.ret_type_name = c.ret_type_name.as_deref().map(map);
        }
        EntityKind::Event(ev) => ev.arg_type_name = ev.arg_type_name.as_deref().map(map),
        _ => {}
    }
}
