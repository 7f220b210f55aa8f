//! What changed between two checked schemas (an older and a newer QEMU's),
//! as a Markdown changelog ([`diff`], [`Diff::to_markdown`]).
//!
//! Commands, events and named types are compared by name, renamed types
//! found by position (as the merge finds them); members of a command's or
//! event's implicit argument type are reported under the command or event.
//! For each pair: members, enum values and branches added or removed, a
//! member's type changed, optional ↔ required, features added or removed
//! (`deprecated`, `unstable`, others), `if` conditions changed, a
//! command's return type changed.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::schema::{Entity, EntityKind, Feature, Member, Schema, Versioning, correspond_types};
use crate::value::Value;

/// What part of the changelog a change belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Section {
    /// Commands added or removed.
    Commands,
    /// Events added or removed.
    Events,
    /// Named types added, removed or renamed.
    Types,
    /// Members (arguments, reply and event data members, struct members),
    /// enum values and branches added or removed.
    Members,
    /// A member's type, or a command's return type, changed.
    TypeChanges,
    /// Optional ↔ required.
    Optionality,
    /// Features added or removed.
    Features,
    /// `if` conditions added, removed or changed.
    Conditions,
}

impl Section {
    /// The section's heading.
    pub fn title(self) -> &'static str {
        match self {
            Section::Commands => "Commands",
            Section::Events => "Events",
            Section::Types => "Types",
            Section::Members => "Members, enum values and branches",
            Section::TypeChanges => "Types of members and replies",
            Section::Optionality => "Optional and required",
            Section::Features => "Features (deprecated, unstable, ...)",
            Section::Conditions => "Conditions (`if`)",
        }
    }

    const ALL: [Section; 8] = [
        Section::Commands,
        Section::Events,
        Section::Types,
        Section::Members,
        Section::TypeChanges,
        Section::Optionality,
        Section::Features,
        Section::Conditions,
    ];
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Where it is listed.
    pub section: Section,
    /// One Markdown line (without the list marker).
    pub text: String,
}

/// The changes from one schema to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The older schema's label (`7.2.0`).
    pub old: String,
    /// The newer schema's label.
    pub new: String,
    /// Every change, in section order, then alphabetically.
    pub changes: Vec<Change>,
}

impl Diff {
    /// The changes of one section.
    pub fn section(&self, s: Section) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.section == s)
    }

    /// A Markdown changelog: a `##` heading, then a `###` heading per
    /// section that has changes, each change a list item.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("## QEMU {} → {}\n\n", self.old, self.new);
        if self.changes.is_empty() {
            out.push_str("No changes.\n");
            return out;
        }
        for s in Section::ALL {
            let items: Vec<&Change> = self.section(s).collect();
            if items.is_empty() {
                continue;
            }
            let _ = writeln!(out, "### {} ({})\n", s.title(), items.len());
            for c in items {
                let _ = writeln!(out, "- {}", c.text);
            }
            out.push('\n');
        }
        out
    }
}

/// What an entity is called in the changelog: commands and events by
/// their names, implicit types by the definition they belong to.
fn subject(e: &Entity) -> String {
    let n = &e.name;
    if let Some(rest) = n.strip_prefix("q_obj_") {
        if let Some(c) = rest.strip_suffix("-arg") {
            return if c.chars().any(|ch| ch.is_ascii_lowercase()) {
                format!("command `{c}` arguments")
            } else {
                format!("event `{c}` data")
            };
        }
        if let Some(u) = rest.strip_suffix("-base") {
            return format!("`{u}` (its base members)");
        }
    }
    match &e.kind {
        EntityKind::Command(_) => format!("command `{n}`"),
        EntityKind::Event(_) => format!("event `{n}`"),
        _ => format!("`{n}`"),
    }
}

fn cond_text(c: &Option<Value>) -> String {
    match c {
        Some(c) => format!("`{}`", crate::schema::condition_text(c)),
        None => "none".into(),
    }
}

fn features(f: &[Feature]) -> BTreeSet<&str> {
    f.iter().map(|f| f.name.as_str()).collect()
}

/// Compares `old` (labelled `old_label`) with `new`.
pub fn diff(old: &Schema, old_label: &str, new: &Schema, new_label: &str) -> Diff {
    let mut scratch = Versioning::default();
    let corr = correspond_types(old, new, old_label, 1, &mut scratch);
    let map = |n: &str| corr.get(n).cloned().unwrap_or_else(|| n.to_string());
    let renamed_to: BTreeSet<String> = corr.values().cloned().collect();
    let mut changes: Vec<Change> = Vec::new();
    let mut push = |section, text: String| changes.push(Change { section, text });

    // Added and removed.
    let listed = |e: &Entity| match &e.kind {
        EntityKind::Command(_) => Some(Section::Commands),
        EntityKind::Event(_) => Some(Section::Events),
        _ if e.is_type() && !e.is_implicit() && e.info.is_some() => Some(Section::Types),
        _ => None,
    };
    for e in &new.entities {
        let Some(section) = listed(e) else { continue };
        if old.lookup(&e.name).is_none() && !renamed_to.contains(&e.name) {
            push(section, format!("Added {} `{}`", e.meta(), e.name));
        }
    }
    for e in &old.entities {
        let Some(section) = listed(e) else { continue };
        let mapped = map(&e.name);
        if new.lookup(&mapped).is_none() {
            push(section, format!("Removed {} `{}`", e.meta(), e.name));
        } else if mapped != e.name && !e.is_implicit() {
            push(
                section,
                format!("Renamed {} `{}` → `{mapped}`", e.meta(), e.name),
            );
        }
    }

    // Changes inside what both have.
    for oe in &old.entities {
        if matches!(
            oe.kind,
            EntityKind::Include { .. } | EntityKind::Builtin { .. }
        ) {
            continue;
        }
        let Some(ne) = new.lookup(&map(&oe.name)).map(|i| &new.entities[i]) else {
            continue;
        };
        let who = subject(ne);
        // An implicit type's `if` is its command's or event's.
        if oe.ifcond != ne.ifcond && !ne.is_implicit() {
            push(
                Section::Conditions,
                format!(
                    "{who}: `if` {} → {}",
                    cond_text(&oe.ifcond),
                    cond_text(&ne.ifcond)
                ),
            );
        }
        let (of, nf) = (features(&oe.features), features(&ne.features));
        for f in nf.difference(&of) {
            push(Section::Features, format!("{who}: now `{f}`"));
        }
        for f in of.difference(&nf) {
            push(Section::Features, format!("{who}: no longer `{f}`"));
        }
        match (&oe.kind, &ne.kind) {
            (EntityKind::Enum { members: om, .. }, EntityKind::Enum { members: nm, .. }) => {
                for v in nm {
                    match om.iter().find(|x| x.name == v.name) {
                        None => push(Section::Members, format!("{who}: added value `{}`", v.name)),
                        Some(o) => {
                            let item = format!("{who} value `{}`", v.name);
                            let (of, nf) = (&o.features[..], &v.features[..]);
                            tagged_changes(&item, (&o.ifcond, &v.ifcond), (of, nf), &mut push);
                        }
                    }
                }
                for v in om {
                    if !nm.iter().any(|x| x.name == v.name) {
                        push(
                            Section::Members,
                            format!("{who}: removed value `{}`", v.name),
                        );
                    }
                }
            }
            (EntityKind::Object(oo), EntityKind::Object(no)) => {
                // Own members only; a base's members are reported with
                // the base (unless the base is new here).
                let own =
                    |s: &Schema, o: &crate::schema::ObjectType, id_name: &str| -> Vec<Member> {
                        o.members
                            .iter()
                            .map(|&r| s.member(r))
                            .filter(|m| {
                                m.defined_in == id_name
                                    || s.lookup(&m.defined_in)
                                        .is_none_or(|b| s.entities[b].is_implicit())
                            })
                            .cloned()
                            .collect()
                    };
                let all_new: Vec<&Member> = no.members.iter().map(|&r| new.member(r)).collect();
                let all_old: Vec<&Member> = oo.members.iter().map(|&r| old.member(r)).collect();
                for m in own(new, no, &ne.name) {
                    match all_old.iter().find(|x| x.name == m.name) {
                        None => push(
                            Section::Members,
                            format!(
                                "{who}: added member `{}` ({})",
                                m.name,
                                if m.optional { "optional" } else { "required" }
                            ),
                        ),
                        Some(o) => member_changes(&who, o, &m, &map, &mut push),
                    }
                }
                for m in own(old, oo, &oe.name) {
                    if !all_new.iter().any(|x| x.name == m.name) {
                        push(
                            Section::Members,
                            format!("{who}: removed member `{}`", m.name),
                        );
                    }
                }
                if let (Some(ob), Some(nb)) = (&oo.branches, &no.branches) {
                    for v in &nb.variants {
                        match ob.variants.iter().find(|x| x.name == v.name) {
                            None => push(
                                Section::Members,
                                format!("{who}: added branch `{}`", v.name),
                            ),
                            Some(o) => {
                                if map(&o.type_name) != v.type_name {
                                    push(
                                        Section::TypeChanges,
                                        format!(
                                            "{who} branch `{}`: `{}` → `{}`",
                                            v.name, o.type_name, v.type_name
                                        ),
                                    );
                                }
                            }
                        }
                    }
                    for v in &ob.variants {
                        if !nb.variants.iter().any(|x| x.name == v.name) {
                            push(
                                Section::Members,
                                format!("{who}: removed branch `{}`", v.name),
                            );
                        }
                    }
                } else if oo.branches.is_some() != no.branches.is_some() {
                    push(
                        Section::TypeChanges,
                        format!("{who}: a {} became a {}", oe.meta(), ne.meta()),
                    );
                }
            }
            (EntityKind::Alternate { variants: ov }, EntityKind::Alternate { variants: nv }) => {
                for v in nv {
                    match ov.iter().find(|x| x.name == v.name) {
                        None => push(
                            Section::Members,
                            format!("{who}: added branch `{}`", v.name),
                        ),
                        Some(o) if map(&o.type_name) != v.type_name => push(
                            Section::TypeChanges,
                            format!(
                                "{who} branch `{}`: `{}` → `{}`",
                                v.name, o.type_name, v.type_name
                            ),
                        ),
                        Some(_) => {}
                    }
                }
                for v in ov {
                    if !nv.iter().any(|x| x.name == v.name) {
                        push(
                            Section::Members,
                            format!("{who}: removed branch `{}`", v.name),
                        );
                    }
                }
            }
            (EntityKind::Command(oc), EntityKind::Command(nc)) => {
                let (or, nr) = (oc.ret_type_name.as_deref().map(&map), &nc.ret_type_name);
                if or.as_ref() != nr.as_ref() {
                    push(
                        Section::TypeChanges,
                        format!(
                            "command `{}` returns {} → {}",
                            ne.name,
                            oc.ret_type_name
                                .as_deref()
                                .map(|t| format!("`{t}`"))
                                .unwrap_or("nothing".into()),
                            nr.as_deref()
                                .map(|t| format!("`{t}`"))
                                .unwrap_or("nothing".into()),
                        ),
                    );
                }
                if oc.arg_type_name.is_none() && nc.arg_type_name.is_some() {
                    push(
                        Section::Members,
                        format!("command `{}`: now takes arguments", ne.name),
                    );
                }
                if oc.arg_type_name.is_some() && nc.arg_type_name.is_none() {
                    push(
                        Section::Members,
                        format!("command `{}`: no longer takes arguments", ne.name),
                    );
                }
            }
            (EntityKind::Event(oev), EntityKind::Event(nev))
                if oev.arg_type_name.is_some() != nev.arg_type_name.is_some() =>
            {
                push(
                    Section::Members,
                    format!("event `{}`: data added or removed", ne.name),
                );
            }
            (a, b) if std::mem::discriminant(a) != std::mem::discriminant(b) => push(
                Section::TypeChanges,
                format!("{who}: a {} became a {}", oe.meta(), ne.meta()),
            ),
            _ => {}
        }
    }
    changes.sort();
    changes.dedup();
    Diff {
        old: old_label.to_string(),
        new: new_label.to_string(),
        changes,
    }
}

fn member_changes(
    who: &str,
    o: &Member,
    m: &Member,
    map: &dyn Fn(&str) -> String,
    push: &mut dyn FnMut(Section, String),
) {
    if map(&o.type_name) != m.type_name {
        push(
            Section::TypeChanges,
            format!(
                "{who} member `{}`: `{}` → `{}`",
                m.name, o.type_name, m.type_name
            ),
        );
    }
    if o.optional != m.optional {
        let (a, b) = if m.optional {
            ("required", "optional")
        } else {
            ("optional", "required")
        };
        push(
            Section::Optionality,
            format!("{who} member `{}`: {a} → {b}", m.name),
        );
    }
    let item = format!("{who} member `{}`", m.name);
    tagged_changes(
        &item,
        (&o.ifcond, &m.ifcond),
        (&o.features, &m.features),
        push,
    );
}

/// The `if` and feature changes of one item (`item` says which).
fn tagged_changes(
    item: &str,
    (old_if, new_if): (&Option<Value>, &Option<Value>),
    (old_f, new_f): (&[Feature], &[Feature]),
    push: &mut dyn FnMut(Section, String),
) {
    if old_if != new_if {
        push(
            Section::Conditions,
            format!("{item}: `if` {} → {}", cond_text(old_if), cond_text(new_if)),
        );
    }
    let (a, b) = (features(old_f), features(new_f));
    for f in b.difference(&a) {
        push(Section::Features, format!("{item}: now `{f}`"));
    }
    for f in a.difference(&b) {
        push(Section::Features, format!("{item}: no longer `{f}`"));
    }
}

/// The version a schema path names (`schema/10.0.2/qapi` gives
/// `10.0.2`), else the path itself: the label a diff of files shows.
pub fn label_of(path: &str) -> String {
    std::path::Path::new(path)
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .find(|c| crate::manifest::parse_version(c).is_some())
        .unwrap_or(path)
        .to_string()
}

/// Loads two schemas (a `qapi-schema.json`, or a folder with one, or
/// QEMU's tree; see [`crate::manifest::load_any`]) and compares them.
pub fn diff_paths(old: &str, new: &str) -> Result<Diff, String> {
    let load = |p: &str| crate::manifest::load_any(p).map_err(|e| e.to_string());
    let (a, b) = (load(old)?, load(new)?);
    Ok(diff(&a, &label_of(old), &b, &label_of(new)))
}
