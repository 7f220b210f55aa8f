//! Members whose type changed between versions: whether the newer type
//! reads the older form, else a type that reads every form.

use std::collections::HashSet;

use super::{Corr, Key, MergeNote, NoteKind, VersionSet, Versioning};
use crate::schema::{Entity, EntityId, EntityKind, MAX_DEPTH, Member, Schema, UNRESOLVED};

/// Where a member sits in its owner.
pub(super) enum Slot {
    /// A member (of the owner's own members).
    Member(String),
    /// A union branch.
    Branch(String),
    /// An alternate's branch.
    Alternative(String),
}

/// A member whose type differs in an older version, to be decided once
/// that version is folded in.
pub(super) struct Pending {
    /// What it is about, for the note.
    pub(super) subject: String,
    /// The older version's bit.
    pub(super) bit: VersionSet,
    /// The merged entity whose member it is.
    pub(super) owner: EntityId,
    /// Where in it.
    pub(super) slot: Slot,
    /// The older type's name (in the older schema).
    pub(super) old: String,
    /// What changed, for the note.
    pub(super) text: String,
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
    /// Decides each member whose type changed: the newer type is kept
    /// when it reads the older form (see [`reads`]), else the member
    /// becomes `any`, which reads every form.
    pub(super) fn resolve_type_changes(
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
                Slot::Member(n) => Key::member(&owner_name, n),
                Slot::Branch(n) | Slot::Alternative(n) => Key::branch(&owner_name, n),
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
}
