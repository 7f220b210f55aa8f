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

use std::collections::{HashMap, HashSet};

use super::*;

/// A set of versions: bit `i` is the `i`th of [`Versioning::labels`].
pub type VersionSet = u64;

/// Which versions have what, in a merged model. Names are the merged
/// model's (the newest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Versioning {
    /// The versions merged, oldest first (`7.2.0`, `10.0.2`, ..).
    pub labels: Vec<String>,
    /// Entities (commands, events, types), by name.
    pub entities: HashMap<String, VersionSet>,
    /// Members, by (the type whose own member it is, member name).
    pub members: HashMap<(String, String), VersionSet>,
    /// Enum values, by (enum, value).
    pub values: HashMap<(String, String), VersionSet>,
    /// Union and alternate branches, by (type, branch name).
    pub variants: HashMap<(String, String), VersionSet>,
    /// `if` conditions per version: by key ([`Versioning::entity_key`],
    /// [`Versioning::member_key`], [`Versioning::value_key`],
    /// [`Versioning::variant_key`]), the versions with that condition and
    /// its text. Absent for a version: unconditional there.
    pub conditions: HashMap<String, Vec<(VersionSet, String)>>,
    /// Members and branches (by [`Versioning::member_key`] or
    /// [`Versioning::variant_key`]) whose merged type is wider than the
    /// type some versions give them (it reads every version's form):
    /// those versions.
    pub widened: HashMap<String, VersionSet>,
    /// Unions that older versions sent as a plain struct, without the
    /// discriminator: the branch whose members those versions send, and
    /// the versions. Such a reply decodes into that branch, untagged.
    pub untagged: HashMap<String, (String, VersionSet)>,
    /// Members and enum values only older versions have: the doc comment
    /// (index into the model's docs) of the older definition that
    /// describes them, by [`Versioning::member_key`] or
    /// [`Versioning::value_key`].
    pub docs: HashMap<String, usize>,
    /// Types known by an older name in older versions.
    pub aliases: Vec<Alias>,
    /// What the merge met and how it resolved it, in the order met.
    pub notes: Vec<MergeNote>,
}

impl Versioning {
    /// Every version.
    pub fn all(&self) -> VersionSet {
        if self.labels.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << self.labels.len()) - 1
        }
    }

    /// The versions that have entity `name` (all when not recorded).
    pub fn entity(&self, name: &str) -> VersionSet {
        self.entities.get(name).copied().unwrap_or(self.all())
    }

    /// The versions that have member `member` of type `owner`.
    pub fn member(&self, owner: &str, member: &str) -> VersionSet {
        let key = (owner.to_string(), member.to_string());
        self.members
            .get(&key)
            .copied()
            .unwrap_or(self.entity(owner))
    }

    /// The versions that have value `value` of enum `owner`.
    pub fn value(&self, owner: &str, value: &str) -> VersionSet {
        let key = (owner.to_string(), value.to_string());
        self.values.get(&key).copied().unwrap_or(self.entity(owner))
    }

    /// The versions that have branch `branch` of union or alternate
    /// `owner`.
    pub fn variant(&self, owner: &str, branch: &str) -> VersionSet {
        let key = (owner.to_string(), branch.to_string());
        self.variants
            .get(&key)
            .copied()
            .unwrap_or(self.entity(owner))
    }

    /// The key of entity `name` in [`Versioning::conditions`].
    pub fn entity_key(name: &str) -> String {
        name.to_string()
    }

    /// The key of member `member` of type `owner`.
    pub fn member_key(owner: &str, member: &str) -> String {
        format!("{owner}.{member}")
    }

    /// The key of value `value` of enum `owner`.
    pub fn value_key(owner: &str, value: &str) -> String {
        format!("{owner}={value}")
    }

    /// The key of branch `branch` of union or alternate `owner`.
    pub fn variant_key(owner: &str, branch: &str) -> String {
        format!("{owner}|{branch}")
    }

    /// The `if` condition of `key` in the version of bit `bit`, if any.
    pub fn condition(&self, key: &str, bit: VersionSet) -> Option<&str> {
        self.conditions
            .get(key)?
            .iter()
            .find(|(set, _)| set & bit != 0)
            .map(|(_, c)| c.as_str())
    }

    /// Whether `key` is conditional in any version.
    pub fn ever_conditional(&self, key: &str) -> bool {
        self.conditions.contains_key(key)
    }

    fn add_condition(&mut self, key: String, bit: VersionSet, cond: &Option<crate::value::Value>) {
        let Some(c) = cond else { return };
        let text = crate::schema::condition_text(c);
        let list = self.conditions.entry(key).or_default();
        match list.iter_mut().find(|(_, t)| *t == text) {
            Some((set, _)) => *set |= bit,
            None => list.push((bit, text)),
        }
    }

    /// Records every `if` of schema `o` (version `bit`), under the merged
    /// names `map` gives.
    fn record_conditions(&mut self, o: &Schema, map: &dyn Fn(&str) -> String, bit: VersionSet) {
        for e in &o.entities {
            let name = map(&e.name);
            self.add_condition(Versioning::entity_key(&name), bit, &e.ifcond);
            match &e.kind {
                EntityKind::Enum { members, .. } => {
                    for x in members {
                        self.add_condition(Versioning::value_key(&name, &x.name), bit, &x.ifcond);
                    }
                }
                EntityKind::Object(ob) => {
                    for x in &ob.local_members {
                        self.add_condition(Versioning::member_key(&name, &x.name), bit, &x.ifcond);
                    }
                    for x in ob.branches.iter().flat_map(|b| &b.variants) {
                        self.add_condition(Versioning::variant_key(&name, &x.name), bit, &x.ifcond);
                    }
                }
                EntityKind::Alternate { variants } => {
                    for x in variants {
                        self.add_condition(Versioning::variant_key(&name, &x.name), bit, &x.ifcond);
                    }
                }
                _ => {}
            }
        }
    }

    /// Records that entity `e`, its members, values and branches exist in
    /// `bit`.
    fn record_entity(&mut self, e: &Entity, bit: VersionSet) {
        let mark = |map: &mut HashMap<(String, String), VersionSet>, item: &str| {
            *map.entry((e.name.clone(), item.to_string())).or_default() |= bit;
        };
        match &e.kind {
            EntityKind::Include { .. } => return,
            EntityKind::Enum { members, .. } => {
                members.iter().for_each(|x| mark(&mut self.values, &x.name));
            }
            EntityKind::Object(o) => {
                o.local_members
                    .iter()
                    .for_each(|x| mark(&mut self.members, &x.name));
                o.branches
                    .iter()
                    .flat_map(|b| &b.variants)
                    .for_each(|x| mark(&mut self.variants, &x.name));
            }
            EntityKind::Alternate { variants } => {
                variants
                    .iter()
                    .for_each(|x| mark(&mut self.variants, &x.name));
            }
            _ => {}
        }
        *self.entities.entry(e.name.clone()).or_default() |= bit;
    }

    /// The labels of the versions in `set`, oldest first.
    pub fn names(&self, set: VersionSet) -> Vec<&str> {
        self.labels
            .iter()
            .enumerate()
            .filter(|(i, _)| set & (1 << i) != 0)
            .map(|(_, l)| l.as_str())
            .collect()
    }
}

/// A type an older version calls by another name.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// The older name.
    pub old: String,
    /// The merged (newest) name.
    pub new: String,
    /// The versions that use the older name.
    pub versions: VersionSet,
}

/// What kind of conflict the merge met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NoteKind {
    /// A type was renamed; the old name becomes a deprecated alias.
    Renamed,
    /// A member is required in some versions, optional or absent in
    /// others (or guarded by `if`): it is optional.
    MadeOptional,
    /// A member's type changed; the merged type reads every form.
    TypeChanged,
    /// Something else changed shape (a base, a discriminator, a struct
    /// that became a union, a command's arguments); the newest shape is
    /// kept.
    ShapeChanged,
}

/// A conflict the merge met and how it was resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeNote {
    /// What kind.
    pub kind: NoteKind,
    /// What it is about (`type 'Foo' member 'bar'`).
    pub subject: String,
    /// What differs, and what the merged model does about it.
    pub text: String,
}

impl MergeNote {
    /// The note for Markdown: names in backticks.
    pub fn text_markdown(&self) -> String {
        format!("{}: {}", self.subject, self.text).replace('\'', "`")
    }
}

impl std::fmt::Display for MergeNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.text)
    }
}

/// Old type name → merged type name, for one older schema.
type Corr = HashMap<String, String>;

/// How one older version folds in: type renames, source locations,
/// its version bit.
type Fold<'a> = (
    &'a dyn Fn(&str) -> String,
    &'a dyn Fn(Info) -> Info,
    VersionSet,
);

/// Where a member sits in its owner.
enum Slot {
    /// A member (of the owner's own members).
    Member(String),
    /// A union branch.
    Branch(String),
    /// An alternate's branch.
    Alternative(String),
}

/// A member whose type differs in an older version, to be decided once
/// that version is folded in.
struct Pending {
    subject: String,
    /// The older version's bit.
    bit: VersionSet,
    owner: EntityId,
    slot: Slot,
    /// The older type's name (in the older schema).
    old: String,
    text: String,
}

/// Whether type `new` of the merged model reads what type `old` of the
/// older schema `o` puts on the wire: `Ok` (with a caveat, if any) or why
/// not.
fn reads(
    m: &Schema,
    new: &str,
    o: &Schema,
    old: &str,
    corr: &Corr,
    seen: &mut HashSet<(String, String)>,
    depth: usize,
) -> std::result::Result<Option<String>, String> {
    let mapped = corr.get(old).map(String::as_str).unwrap_or(old);
    if mapped == new || !seen.insert((new.to_string(), old.to_string())) {
        return Ok(None);
    }
    if depth > MAX_DEPTH {
        return Err("the types nest too deeply to compare".into());
    }
    let (Some(ni), Some(oi)) = (m.lookup(new), o.lookup(old)) else {
        return Err(format!("'{old}' or '{new}' is not defined"));
    };
    let (ne, oe) = (&m.entities[ni], &o.entities[oi]);
    let json = |e: &Entity| e.json_type();
    let int = |e: &Entity| matches!(e.kind, EntityKind::Builtin { json_type: "int" });
    match (&oe.kind, &ne.kind) {
        _ if int(oe) && int(ne) => Ok(Some(format!(
            "both integers; the newer's range, {new}, is kept"
        ))),
        // An enum reads any string: unknown values are kept.
        (
            EntityKind::Enum { .. }
            | EntityKind::Builtin {
                json_type: "string",
            },
            EntityKind::Enum { .. },
        )
        | (
            EntityKind::Enum { .. },
            EntityKind::Builtin {
                json_type: "string",
            },
        ) => Ok(None),
        (_, EntityKind::Builtin { json_type: "value" }) => Ok(None),
        (
            EntityKind::Array {
                element_name: a, ..
            },
            EntityKind::Array {
                element_name: b, ..
            },
        ) => reads(m, b, o, a, corr, seen, depth + 1),
        (EntityKind::Object(x), EntityKind::Object(y)) => {
            let om: Vec<&Member> = x.members.iter().map(|&r| o.member(r)).collect();
            let nm: Vec<&Member> = y.members.iter().map(|&r| m.member(r)).collect();
            let mut caveats = Vec::new();
            for a in &om {
                let Some(b) = nm.iter().find(|b| b.name == a.name) else {
                    if y.branches.is_some() {
                        continue; // a union's branches take the other keys
                    }
                    return Err(format!("'{new}' has no member '{}' of '{old}'", a.name));
                };
                if let Some(c) = reads(m, &b.type_name, o, &a.type_name, corr, seen, depth + 1)? {
                    caveats.push(c);
                }
            }
            for b in &nm {
                if !b.optional && !om.iter().any(|a| a.name == b.name && !a.optional) {
                    return Err(format!(
                        "'{new}' requires '{}', which '{old}' may lack",
                        b.name
                    ));
                }
            }
            Ok(caveats.into_iter().next())
        }
        (_, EntityKind::Alternate { variants }) => {
            for b in variants {
                if reads(m, &b.type_name, o, old, corr, seen, depth + 1).is_ok() {
                    return Ok(None);
                }
            }
            Err(format!("no branch of alternate '{new}' reads '{old}'"))
        }
        _ => Err(format!(
            "'{old}' is {} on the wire, '{new}' {}",
            json(oe),
            json(ne)
        )),
    }
}

impl Schema {
    /// Merges checked schemas, one per version, oldest first, into one
    /// model whose [`Schema::versioning`] says which versions have what.
    /// `versions` holds (label, schema) pairs; at most 64.
    pub fn merge(versions: Vec<(String, Schema)>) -> Result<Schema> {
        if versions.is_empty() || versions.len() > 64 {
            return Err(crate::Error::Generate(format!(
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
                    let key = Versioning::member_key(&owner, &mem.name);
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
                    *v.entities.entry(name.clone()).or_default() |= bit;
                    // An implicit type's members are described by its
                    // command's, event's or union's doc.
                    let doc = oe
                        .doc
                        .or_else(|| o.entities[o.lookup(implicit_owner(&oe.name)?)?].doc)
                        .map(|d| d + doc_off);
                    self.merge_entity(mid, oe, (&map, &remap, bit), doc, v, &mut pending);
                }
            }
        }
        // Ids and member lists are valid again before types are compared.
        self.relink()?;
        self.resolve_type_changes(o, corr, pending, v);
        Ok(())
    }

    /// Decides each member whose type changed: the newer type is kept
    /// when it reads the older form (see [`reads`]), else the member
    /// becomes `any`, which reads every form.
    fn resolve_type_changes(
        &mut self,
        o: &Schema,
        corr: &Corr,
        pending: Vec<Pending>,
        v: &mut Versioning,
    ) {
        for p in pending {
            let new = match self.slot(p.owner, &p.slot) {
                Some(m) => m.type_name.clone(),
                None => continue,
            };
            let mut seen = HashSet::new();
            let verdict = reads(self, &new, o, &p.old, corr, &mut seen, 0);
            let owner_name = self.entities[p.owner].name.clone();
            let key = match &p.slot {
                Slot::Member(n) => Versioning::member_key(&owner_name, n),
                Slot::Branch(n) | Slot::Alternative(n) => Versioning::variant_key(&owner_name, n),
            };
            let widened_for = if verdict.is_ok() {
                p.bit
            } else {
                v.entity(&owner_name) & !p.bit
            };
            *v.widened.entry(key).or_default() |= widened_for;
            let text = match verdict {
                Ok(caveat) => format!(
                    "{}: the newer type reads the older form{}",
                    p.text,
                    caveat.map(|c| format!(" ({c})")).unwrap_or_default()
                ),
                Err(why) => {
                    // Perhaps the older type (as merged) reads the newer
                    // form; else `any`, which reads every form.
                    let older = corr.get(&p.old).cloned().unwrap_or_else(|| p.old.clone());
                    let mut seen = HashSet::new();
                    let none = Corr::new();
                    let back = self.lookup(&older).is_some()
                        && reads(self, &older, self, &new, &none, &mut seen, 0).is_ok();
                    let (ty, text) = if back {
                        (
                            older.clone(),
                            format!(
                                "{}: {why}; the older type reads the newer form, so it is `{older}`",
                                p.text
                            ),
                        )
                    } else {
                        (
                            "any".to_string(),
                            format!("{}: {why}, so it is `any` (every form reads)", p.text),
                        )
                    };
                    if let Some(m) = self.slot_mut(p.owner, &p.slot) {
                        m.type_name = ty;
                        m.ty = UNRESOLVED;
                    }
                    text
                }
            };
            v.notes.push(MergeNote {
                kind: NoteKind::TypeChanged,
                subject: p.subject,
                text,
            });
        }
    }

    fn slot(&self, owner: EntityId, slot: &Slot) -> Option<&Member> {
        match (&self.entities[owner].kind, slot) {
            (EntityKind::Object(o), Slot::Member(n)) => {
                o.local_members.iter().find(|m| m.name == *n)
            }
            (EntityKind::Object(o), Slot::Branch(n)) => {
                o.branches.as_ref()?.variants.iter().find(|m| m.name == *n)
            }
            (EntityKind::Alternate { variants }, Slot::Alternative(n)) => {
                variants.iter().find(|m| m.name == *n)
            }
            _ => None,
        }
    }

    fn slot_mut(&mut self, owner: EntityId, slot: &Slot) -> Option<&mut Member> {
        match (&mut self.entities[owner].kind, slot) {
            (EntityKind::Object(o), Slot::Member(n)) => {
                o.local_members.iter_mut().find(|m| m.name == *n)
            }
            (EntityKind::Object(o), Slot::Branch(n)) => o
                .branches
                .as_mut()?
                .variants
                .iter_mut()
                .find(|m| m.name == *n),
            (EntityKind::Alternate { variants }, Slot::Alternative(n)) => {
                variants.iter_mut().find(|m| m.name == *n)
            }
            _ => None,
        }
    }

    /// Merges the older `oe` into entity `mid` (same name after renames).
    fn merge_entity(
        &mut self,
        mid: EntityId,
        oe: &Entity,
        (map, remap, bit): Fold<'_>,
        old_doc: Option<usize>,
        v: &mut Versioning,
        pending: &mut Vec<Pending>,
    ) {
        let name = self.entities[mid].name.clone();
        let meta = self.entities[mid].meta();
        let subject = |what: &str| format!("{meta} '{name}'{what}");
        let shape = |text: String, subject: String, v: &mut Versioning| {
            v.notes.push(MergeNote {
                kind: NoteKind::ShapeChanged,
                subject,
                text,
            })
        };
        match (&oe.kind, &self.entities[mid].kind) {
            (EntityKind::Builtin { .. }, EntityKind::Builtin { .. })
            | (EntityKind::Array { .. }, EntityKind::Array { .. }) => {}
            (EntityKind::Enum { members: om, .. }, EntityKind::Enum { .. }) => {
                let EntityKind::Enum { members, .. } = &mut self.entities[mid].kind else {
                    return;
                };
                for x in om {
                    *v.values.entry((name.clone(), x.name.clone())).or_default() |= bit;
                    if !members.iter().any(|y| y.name == x.name) {
                        let mut x = x.clone();
                        x.info = x.info.map(remap);
                        if let Some(d) = old_doc {
                            v.docs.insert(Versioning::value_key(&name, &x.name), d);
                        }
                        members.push(x);
                    }
                }
            }
            (EntityKind::Object(oo), EntityKind::Object(mo)) => {
                if oo.base_name.as_deref().map(map) != mo.base_name {
                    let text = format!(
                        "base {} in {}, {} in the newer: the newer is kept (older members merged)",
                        oo.base_name.as_deref().unwrap_or("none"),
                        v.names(bit).join(""),
                        mo.base_name.as_deref().unwrap_or("none"),
                    );
                    let s = subject("");
                    if !(oo
                        .base_name
                        .as_deref()
                        .is_some_and(|b| b.starts_with("q_obj_"))
                        && mo
                            .base_name
                            .as_deref()
                            .is_some_and(|b| b.starts_with("q_obj_")))
                    {
                        shape(text, s, v);
                    }
                }
                match (&oo.branches, &mo.branches) {
                    (Some(ob), Some(mb)) if ob.tag_name != mb.tag_name => {
                        let text = format!(
                            "discriminator '{}' in {}, '{}' in the newer: the newer is kept",
                            ob.tag_name,
                            v.names(bit).join(""),
                            mb.tag_name
                        );
                        shape(text, subject(""), v);
                    }
                    (Some(_), None) | (None, Some(_)) => {
                        let text = format!(
                            "a {} in {}: the newer shape is kept",
                            oe.meta(),
                            v.names(bit).join("")
                        );
                        shape(text, subject(""), v);
                    }
                    _ => {}
                }
                // Members: each older member lands where the newer type
                // (or its base chain) has it, else as a new member.
                // A struct that became a union: members now in a branch
                // are that branch's; without the discriminator, such a
                // reply is that branch, untagged.
                let became_union = oo.branches.is_none()
                    && mo.branches.is_some()
                    && !oo
                        .local_members
                        .iter()
                        .any(|m| mo.branches.as_ref().is_some_and(|b| b.tag_name == m.name));
                let branch_types: Vec<(String, EntityId)> = mo
                    .branches
                    .iter()
                    .flat_map(|b| &b.variants)
                    .filter_map(|x| Some((x.name.clone(), *self.index.get(&x.type_name)?)))
                    .collect();
                for om in &oo.local_members {
                    let in_branch = || {
                        branch_types.iter().find_map(|(case, t)| {
                            self.member_owner(*t, &om.name).map(|o| (case.clone(), o))
                        })
                    };
                    let owner = match self.member_owner(mid, &om.name) {
                        Some(o) => o,
                        None => match in_branch() {
                            Some((case, o)) => {
                                if became_union {
                                    let e = v.untagged.entry(name.clone()).or_insert((case, 0));
                                    e.1 |= bit;
                                }
                                o
                            }
                            None => mid,
                        },
                    };
                    let owner_name = self.entities[owner].name.clone();
                    *v.members
                        .entry((owner_name.clone(), om.name.clone()))
                        .or_default() |= bit;
                    let EntityKind::Object(o) = &mut self.entities[owner].kind else {
                        continue;
                    };
                    match o.local_members.iter_mut().find(|x| x.name == om.name) {
                        Some(x) => {
                            if let Some(text) = merge_member(x, om, map, bit, v) {
                                pending.push(Pending {
                                    bit,
                                    subject: format!("type '{owner_name}' member '{}'", om.name),
                                    owner,
                                    slot: Slot::Member(om.name.clone()),
                                    old: om.type_name.clone(),
                                    text,
                                });
                            }
                        }
                        None => {
                            let mut x = om.clone();
                            x.info = remap(x.info);
                            x.type_name = map(&x.type_name);
                            x.ty = UNRESOLVED;
                            x.defined_in = owner_name.clone();
                            if let Some(d) = old_doc {
                                v.docs
                                    .insert(Versioning::member_key(&owner_name, &x.name), d);
                            }
                            o.local_members.push(x);
                        }
                    }
                }
                if let Some((case, set)) = v.untagged.get(&name)
                    && set & bit != 0
                {
                    let text = format!(
                        "a struct without discriminator in {}: such a reply decodes as branch `{case}`, untagged (and re-encodes without the discriminator)",
                        v.names(bit).join("")
                    );
                    let s = subject("");
                    shape(text, s, v);
                }
                let EntityKind::Object(mo) = &mut self.entities[mid].kind else {
                    return;
                };
                if let (Some(ob), Some(mb)) = (&oo.branches, &mut mo.branches) {
                    let into = BranchList {
                        list: &mut mb.variants,
                        owner: mid,
                        owner_name: &name,
                        union: true,
                    };
                    into.merge(&ob.variants, (map, remap, bit), v, pending);
                }
            }
            (EntityKind::Alternate { variants: ov }, EntityKind::Alternate { .. }) => {
                let EntityKind::Alternate { variants } = &mut self.entities[mid].kind else {
                    return;
                };
                let into = BranchList {
                    list: variants,
                    owner: mid,
                    owner_name: &name,
                    union: false,
                };
                into.merge(ov, (map, remap, bit), v, pending);
            }
            (EntityKind::Command(oc), EntityKind::Command(mc)) => {
                let (oa, ma) = (oc.arg_type_name.as_deref().map(map), &mc.arg_type_name);
                if oa.as_ref() != ma.as_ref() {
                    let text = format!(
                        "arguments {} in {}, {} in the newer: the newer is kept",
                        oa.as_deref().unwrap_or("none"),
                        v.names(bit).join(""),
                        ma.as_deref().unwrap_or("none")
                    );
                    shape(text, subject(""), v);
                }
                let (or, mr) = (oc.ret_type_name.as_deref().map(map), &mc.ret_type_name);
                if or.as_ref() != mr.as_ref() {
                    let text = format!(
                        "returns {} in {}, {} in the newer: the newer is kept",
                        or.as_deref().unwrap_or("nothing"),
                        v.names(bit).join(""),
                        mr.as_deref().unwrap_or("nothing")
                    );
                    v.notes.push(MergeNote {
                        kind: NoteKind::TypeChanged,
                        subject: subject(""),
                        text,
                    });
                }
            }
            (EntityKind::Event(oev), EntityKind::Event(mev)) => {
                let (oa, ma) = (oev.arg_type_name.as_deref().map(map), &mev.arg_type_name);
                if oa.as_ref() != ma.as_ref() {
                    let text = format!(
                        "data {} in {}, {} in the newer: the newer is kept",
                        oa.as_deref().unwrap_or("none"),
                        v.names(bit).join(""),
                        ma.as_deref().unwrap_or("none")
                    );
                    shape(text, subject(""), v);
                }
            }
            _ => {
                let text = format!(
                    "a {} in {}: the newer {} is kept",
                    oe.meta(),
                    v.names(bit).join(""),
                    self.entities[mid].meta()
                );
                shape(text, subject(""), v);
            }
        }
    }

    /// The object type (`id` or one of its bases) whose own member
    /// `name` is.
    fn member_owner(&self, id: EntityId, name: &str) -> Option<EntityId> {
        let mut cur = Some(id);
        let mut guard = 0;
        while let Some(c) = cur {
            let o = self.entities[c].as_object()?;
            if o.local_members.iter().any(|m| m.name == name) {
                return Some(c);
            }
            cur = o
                .base_name
                .as_deref()
                .and_then(|b| self.index.get(b).copied());
            guard += 1;
            if guard > MAX_DEPTH {
                return None;
            }
        }
        None
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
                crate::Error::Generate(format!("merged model: type '{n}' is not defined"))
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
            return Err(crate::Error::Generate(format!(
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

/// A union's or alternate's branches in the merged model, for folding an
/// older version's in.
struct BranchList<'a> {
    list: &'a mut Vec<Member>,
    owner: EntityId,
    owner_name: &'a str,
    /// A union's (else an alternate's).
    union: bool,
}

impl BranchList<'_> {
    /// Records each older branch's version, adds those the merged model
    /// lacks, and queues those whose type changed.
    fn merge(
        self,
        older: &[Member],
        (map, remap, bit): Fold<'_>,
        v: &mut Versioning,
        pending: &mut Vec<Pending>,
    ) {
        let name = self.owner_name;
        for ov in older {
            *v.variants
                .entry((name.to_string(), ov.name.clone()))
                .or_default() |= bit;
            match self.list.iter_mut().find(|x| x.name == ov.name) {
                Some(x) => {
                    if let Some(text) = merge_member(x, ov, map, bit, v) {
                        let (what, slot) = if self.union {
                            ("union", Slot::Branch(ov.name.clone()))
                        } else {
                            ("alternate", Slot::Alternative(ov.name.clone()))
                        };
                        pending.push(Pending {
                            bit,
                            subject: format!("{what} '{name}' branch '{}'", ov.name),
                            owner: self.owner,
                            slot,
                            old: ov.type_name.clone(),
                            text,
                        });
                    }
                }
                None => {
                    let mut x = ov.clone();
                    x.info = remap(x.info);
                    x.type_name = map(&x.type_name);
                    x.ty = UNRESOLVED;
                    self.list.push(x);
                }
            }
        }
    }
}

/// Folds older member `om` into merged member `x` (same name): presence is
/// recorded by the caller; here optionality and type. Returns what changed
/// in type, if anything.
fn merge_member(
    x: &mut Member,
    om: &Member,
    map: &dyn Fn(&str) -> String,
    bit: VersionSet,
    v: &Versioning,
) -> Option<String> {
    if om.optional && !x.optional {
        x.optional = true;
    }
    let old = map(&om.type_name);
    if old == x.type_name {
        return None;
    }
    Some(format!(
        "type '{}' in {}, '{}' in the newer",
        old,
        v.names(bit).join(""),
        x.type_name
    ))
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

/// Pairs the types of older schema `o` with the merged model's by
/// position; returns the renames (older name → merged name) and records
/// them as aliases and notes.
pub(crate) fn correspond_types(
    o: &Schema,
    m: &Schema,
    label: &str,
    bit: VersionSet,
    v: &mut Versioning,
) -> Corr {
    let mut corr = Corr::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut queue: Vec<(String, String)> = Vec::new();
    for oe in &o.entities {
        let Some(me) = m.lookup(&oe.name).map(|id| &m.entities[id]) else {
            continue;
        };
        match (&oe.kind, &me.kind) {
            (EntityKind::Command(a), EntityKind::Command(b)) => {
                if let (Some(x), Some(y)) = (&a.arg_type_name, &b.arg_type_name) {
                    queue.push((x.clone(), y.clone()));
                }
                if let (Some(x), Some(y)) = (&a.ret_type_name, &b.ret_type_name) {
                    queue.push((x.clone(), y.clone()));
                }
            }
            (EntityKind::Event(a), EntityKind::Event(b)) => {
                if let (Some(x), Some(y)) = (&a.arg_type_name, &b.arg_type_name) {
                    queue.push((x.clone(), y.clone()));
                }
            }
            _ => {}
        }
    }
    // Types both have by name sit at the same position too.
    for oe in &o.entities {
        if oe.is_type() && m.lookup(&oe.name).is_some() {
            queue.push((oe.name.clone(), oe.name.clone()));
        }
    }
    queue.reverse();
    while let Some((a, b)) = queue.pop() {
        if !seen.insert((a.clone(), b.clone())) {
            continue;
        }
        let is_array = |s: &Schema, n: &str| {
            s.lookup(n)
                .is_some_and(|i| matches!(s.entities[i].kind, EntityKind::Array { .. }))
        };
        if a != b && !(is_array(o, &a) && is_array(m, &b)) {
            if m.lookup(&a).is_some() {
                // Not a rename: the type at this position changed; the
                // member merge reports it.
                continue;
            }
            match corr.get(&a) {
                Some(prev) if *prev != b => {
                    v.notes.push(MergeNote {
                        kind: NoteKind::ShapeChanged,
                        subject: format!("type '{a}' of {label}"),
                        text: format!(
                            "found where the newer has both '{prev}' and '{b}': merged into '{prev}'"
                        ),
                    });
                    continue;
                }
                Some(_) => {}
                None => {
                    corr.insert(a.clone(), b.clone());
                }
            }
        }
        let (Some(oi), Some(mi)) = (o.lookup(&a), m.lookup(&b)) else {
            continue;
        };
        let (oe, me) = (&o.entities[oi], &m.entities[mi]);
        match (&oe.kind, &me.kind) {
            (EntityKind::Object(x), EntityKind::Object(y)) => {
                if let (Some(p), Some(q)) = (&x.base_name, &y.base_name) {
                    queue.push((p.clone(), q.clone()));
                }
                let all = |s: &Schema, ob: &ObjectType| -> Vec<Member> {
                    ob.members.iter().map(|&r| s.member(r).clone()).collect()
                };
                let ym = all(m, y);
                for xm in all(o, x) {
                    if let Some(q) = ym.iter().find(|q| q.name == xm.name) {
                        queue.push((xm.type_name.clone(), q.type_name.clone()));
                    }
                }
                if let (Some(p), Some(q)) = (&x.branches, &y.branches) {
                    for xv in &p.variants {
                        if let Some(yv) = q.variants.iter().find(|yv| yv.name == xv.name) {
                            queue.push((xv.type_name.clone(), yv.type_name.clone()));
                        }
                    }
                }
            }
            (EntityKind::Alternate { variants: p }, EntityKind::Alternate { variants: q }) => {
                for xv in p {
                    if let Some(yv) = q.iter().find(|yv| yv.name == xv.name) {
                        queue.push((xv.type_name.clone(), yv.type_name.clone()));
                    }
                }
            }
            (
                EntityKind::Array {
                    element_name: p, ..
                },
                EntityKind::Array {
                    element_name: q, ..
                },
            ) => queue.push((p.clone(), q.clone())),
            _ => {}
        }
    }
    // An array is renamed exactly when its element is.
    for oe in &o.entities {
        if let EntityKind::Array { element_name, .. } = &oe.kind
            && m.lookup(&oe.name).is_none()
            && let Some(el) = corr.get(element_name)
        {
            let want = format!("{el}List");
            if m.lookup(&want).is_some() {
                corr.insert(oe.name.clone(), want);
            }
        }
    }
    let mut renames: Vec<(&String, &String)> = corr.iter().collect();
    renames.sort();
    for (old, new) in renames {
        let Some(oi) = o.lookup(old) else { continue };
        if o.entities[oi].is_implicit() {
            continue;
        }
        v.notes.push(MergeNote {
            kind: NoteKind::Renamed,
            subject: format!("type '{new}'"),
            text: format!("called '{old}' in {label}: '{old}' is a deprecated alias"),
        });
        match v
            .aliases
            .iter_mut()
            .find(|a| a.old == *old && a.new == *new)
        {
            Some(a) => a.versions |= bit,
            None => v.aliases.push(Alias {
                old: old.clone(),
                new: new.clone(),
                versions: bit,
            }),
        }
    }
    corr
}
