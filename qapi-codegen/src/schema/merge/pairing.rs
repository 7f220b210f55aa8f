//! Pairing an older schema's types with the merged model's by position
//! (arguments, returns, members, bases, branches, elements): what an older
//! version calls by another name.

use std::collections::HashSet;

use super::{Alias, Corr, MergeNote, NoteKind, VersionSet, Versioning};
use crate::schema::{EntityKind, Member, ObjectType, Schema};

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
