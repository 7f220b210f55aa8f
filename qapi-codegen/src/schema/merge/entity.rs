//! Folding one older entity into its merged counterpart: enum values,
//! members (wherever the newer type or its bases hold them), branches,
//! and the shape changes noted on the way.

use super::widening::{Pending, Slot};
use super::{Fold, Key, MergeNote, NoteKind, VersionSet, Versioning};
use crate::schema::{
    Entity, EntityId, EntityKind, EnumMember, MAX_DEPTH, Member, ObjectType, Schema, UNRESOLVED,
};

/// One older entity being folded into merged entity `mid`: where the
/// notes, presence and pending type changes go.
pub(super) struct Folding<'f> {
    /// The merged entity.
    pub(super) mid: EntityId,
    /// The older version: renames, locations, its bit.
    pub(super) fold: Fold<'f>,
    /// The older definition's doc comment (index into the merged docs).
    pub(super) old_doc: Option<usize>,
    /// Where presence and notes are recorded.
    pub(super) v: &'f mut Versioning,
    /// Members whose type changed, decided once the version is in.
    pub(super) pending: &'f mut Vec<Pending>,
}

impl Folding<'_> {
    fn map(&self, name: &str) -> String {
        (self.fold.0)(name)
    }

    fn bit(&self) -> VersionSet {
        self.fold.2
    }

    /// The older version's label.
    fn older(&self) -> String {
        self.v.names(self.bit()).join("")
    }

    /// An older member or branch as the merged model holds it: its type
    /// by the merged name, its location remapped, to be resolved.
    fn adopt(&self, m: &Member) -> Member {
        let mut x = m.clone();
        x.info = (self.fold.1)(x.info);
        x.type_name = self.map(&x.type_name);
        x.ty = UNRESOLVED;
        x
    }

    /// Queues older member `old` (at `slot` of merged entity `owner`),
    /// whose type changed, to be decided once the version is in.
    fn queue(&mut self, subject: String, owner: EntityId, slot: Slot, old: &Member, text: String) {
        self.pending.push(Pending {
            bit: self.bit(),
            subject,
            owner,
            slot,
            old: old.type_name.clone(),
            text,
        });
    }

    fn note(&mut self, kind: NoteKind, subject: String, text: String) {
        self.v.notes.push(MergeNote {
            kind,
            subject,
            text,
        });
    }
}

impl Schema {
    /// Merges the older `oe` into entity `f.mid` (same name after
    /// renames).
    pub(super) fn merge_entity(&mut self, oe: &Entity, f: &mut Folding<'_>) {
        let mid = f.mid;
        let subject = format!(
            "{} '{}'",
            self.entities[mid].meta(),
            self.entities[mid].name
        );
        match (&oe.kind, &self.entities[mid].kind) {
            (EntityKind::Builtin { .. }, EntityKind::Builtin { .. })
            | (EntityKind::Array { .. }, EntityKind::Array { .. }) => {}
            (EntityKind::Enum { members, .. }, EntityKind::Enum { .. }) => {
                self.fold_enum(members, f);
            }
            (EntityKind::Object(oo), EntityKind::Object(_)) => {
                self.note_object_shape(oe, oo, &subject, f);
                self.fold_members(oo, &subject, f);
                let name = self.entities[mid].name.clone();
                if let EntityKind::Object(mo) = &mut self.entities[mid].kind
                    && let (Some(ob), Some(mb)) = (&oo.branches, &mut mo.branches)
                {
                    let into = BranchList {
                        list: &mut mb.variants,
                        owner: mid,
                        owner_name: &name,
                        union: true,
                    };
                    into.merge(&ob.variants, f);
                }
            }
            (EntityKind::Alternate { variants: ov }, EntityKind::Alternate { .. }) => {
                let name = self.entities[mid].name.clone();
                if let EntityKind::Alternate { variants } = &mut self.entities[mid].kind {
                    let into = BranchList {
                        list: variants,
                        owner: mid,
                        owner_name: &name,
                        union: false,
                    };
                    into.merge(ov, f);
                }
            }
            (EntityKind::Command(oc), EntityKind::Command(mc)) => {
                // By the older name: a type renamed into the newer
                // argument type (`MigrateSetParameters` →
                // `MigrationParameters`) counts.
                if let Some(old) = &oc.arg_type_name
                    && Some(old) != mc.arg_type_name.as_ref()
                {
                    let list = f.v.older_args.entry(oe.name.clone()).or_default();
                    if !list.contains(old) {
                        list.push(old.clone());
                    }
                }
                let args = (oc.arg_type_name.as_deref(), mc.arg_type_name.clone());
                let rets = (oc.ret_type_name.as_deref(), mc.ret_type_name.clone());
                note_signature(
                    "arguments",
                    "none",
                    args,
                    NoteKind::ShapeChanged,
                    &subject,
                    f,
                );
                note_signature(
                    "returns",
                    "nothing",
                    rets,
                    NoteKind::TypeChanged,
                    &subject,
                    f,
                );
            }
            (EntityKind::Event(oev), EntityKind::Event(mev)) => {
                let data = (oev.arg_type_name.as_deref(), mev.arg_type_name.clone());
                note_signature("data", "none", data, NoteKind::ShapeChanged, &subject, f);
            }
            _ => {
                let text = format!(
                    "a {} in {}: the newer {} is kept",
                    oe.meta(),
                    f.older(),
                    self.entities[mid].meta()
                );
                f.note(NoteKind::ShapeChanged, subject, text);
            }
        }
    }

    /// Enum values: the union of both, each knowing its versions.
    fn fold_enum(&mut self, older: &[EnumMember], f: &mut Folding<'_>) {
        let name = self.entities[f.mid].name.clone();
        let EntityKind::Enum { members, .. } = &mut self.entities[f.mid].kind else {
            return;
        };
        for x in older {
            f.v.mark(Key::value(&name, &x.name), f.bit());
            if !members.iter().any(|y| y.name == x.name) {
                let mut x = x.clone();
                x.info = x.info.map(|i| (f.fold.1)(i));
                if let Some(d) = f.old_doc {
                    f.v.docs.insert(Key::value(&name, &x.name), d);
                }
                members.push(x);
            }
        }
    }

    /// Notes a changed base, a changed discriminator, and a struct that
    /// became a union (or the other way): the newer shape is kept.
    fn note_object_shape(&self, oe: &Entity, oo: &ObjectType, subject: &str, f: &mut Folding<'_>) {
        let Some(mo) = self.entities[f.mid].as_object() else {
            return;
        };
        let old_base = oo.base_name.as_deref().map(|b| f.map(b));
        let implicit = |b: &Option<String>| b.as_deref().is_some_and(|b| b.starts_with("q_obj_"));
        // Two implicit bases differ only by name.
        if old_base != mo.base_name && !(implicit(&oo.base_name) && implicit(&mo.base_name)) {
            let text = format!(
                "base {} in {}, {} in the newer: the newer is kept (older members merged)",
                oo.base_name.as_deref().unwrap_or("none"),
                f.older(),
                mo.base_name.as_deref().unwrap_or("none"),
            );
            f.note(NoteKind::ShapeChanged, subject.to_string(), text);
        }
        let text = match (&oo.branches, &mo.branches) {
            (Some(ob), Some(mb)) if ob.tag_name != mb.tag_name => format!(
                "discriminator '{}' in {}, '{}' in the newer: the newer is kept",
                ob.tag_name,
                f.older(),
                mb.tag_name
            ),
            (Some(_), None) | (None, Some(_)) => {
                format!("a {} in {}: the newer shape is kept", oe.meta(), f.older())
            }
            _ => return,
        };
        f.note(NoteKind::ShapeChanged, subject.to_string(), text);
    }

    /// Members: each older member lands where the newer type (or its base
    /// chain) has it, else as a new member. A struct that became a union:
    /// members now in a branch are that branch's; without the
    /// discriminator, such a reply is that branch, untagged.
    fn fold_members(&mut self, oo: &ObjectType, subject: &str, f: &mut Folding<'_>) {
        let mid = f.mid;
        let name = self.entities[mid].name.clone();
        let Some(mo) = self.entities[mid].as_object() else {
            return;
        };
        let became_union = oo.branches.is_none()
            && mo
                .branches
                .as_ref()
                .is_some_and(|b| !oo.local_members.iter().any(|m| b.tag_name == m.name));
        let branch_types: Vec<(String, EntityId)> = mo
            .branches
            .iter()
            .flat_map(|b| &b.variants)
            .filter_map(|x| Some((x.name.clone(), *self.index.get(&x.type_name)?)))
            .collect();
        let bit = f.bit();
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
                            f.v.untagged.entry(name.clone()).or_insert((case, 0)).1 |= bit;
                        }
                        o
                    }
                    None => mid,
                },
            };
            let owner_name = self.entities[owner].name.clone();
            f.v.mark(Key::member(&owner_name, &om.name), bit);
            let EntityKind::Object(o) = &mut self.entities[owner].kind else {
                continue;
            };
            match o.local_members.iter_mut().find(|x| x.name == om.name) {
                Some(x) => {
                    if let Some(text) = merge_member(x, om, f) {
                        let subject = format!("type '{owner_name}' member '{}'", om.name);
                        f.queue(subject, owner, Slot::Member(om.name.clone()), om, text);
                    }
                }
                None => {
                    let mut x = f.adopt(om);
                    x.defined_in = owner_name.clone();
                    if let Some(d) = f.old_doc {
                        f.v.docs.insert(Key::member(&owner_name, &x.name), d);
                    }
                    o.local_members.push(x);
                }
            }
        }
        if let Some((case, set)) = f.v.untagged.get(&name)
            && set & bit != 0
        {
            let text = format!(
                "a struct without discriminator in {}: such a reply decodes as branch `{case}`, untagged (and re-encodes without the discriminator)",
                f.older()
            );
            f.note(NoteKind::ShapeChanged, subject.to_string(), text);
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
}

/// Notes a command's arguments or returns, or an event's data, that name
/// another type in the older version (`none` says what absence reads
/// as): the newer is kept.
fn note_signature(
    what: &str,
    none: &str,
    (older, newer): (Option<&str>, Option<String>),
    kind: NoteKind,
    subject: &str,
    f: &mut Folding<'_>,
) {
    let older = older.map(|o| f.map(o));
    if older == newer {
        return;
    }
    let text = format!(
        "{what} {} in {}, {} in the newer: the newer is kept",
        older.as_deref().unwrap_or(none),
        f.older(),
        newer.as_deref().unwrap_or(none)
    );
    f.note(kind, subject.to_string(), text);
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
    fn merge(self, older: &[Member], f: &mut Folding<'_>) {
        let name = self.owner_name;
        let bit = f.bit();
        for ov in older {
            f.v.mark(Key::branch(name, &ov.name), bit);
            match self.list.iter_mut().find(|x| x.name == ov.name) {
                Some(x) => {
                    if let Some(text) = merge_member(x, ov, f) {
                        let (what, slot) = if self.union {
                            ("union", Slot::Branch(ov.name.clone()))
                        } else {
                            ("alternate", Slot::Alternative(ov.name.clone()))
                        };
                        let subject = format!("{what} '{name}' branch '{}'", ov.name);
                        f.queue(subject, self.owner, slot, ov, text);
                    }
                }
                None => self.list.push(f.adopt(ov)),
            }
        }
    }
}

/// Folds older member `om` into merged member `x` (same name): presence is
/// recorded by the caller; here optionality and type. Returns what changed
/// in type, if anything.
fn merge_member(x: &mut Member, om: &Member, f: &Folding<'_>) -> Option<String> {
    if om.optional && !x.optional {
        x.optional = true;
    }
    let old = f.map(&om.type_name);
    if old == x.type_name {
        return None;
    }
    Some(format!(
        "type '{}' in {}, '{}' in the newer",
        old,
        f.older(),
        x.type_name
    ))
}
