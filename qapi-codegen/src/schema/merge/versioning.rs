//! Which versions have what in a merged model ([`Versioning`]), keyed by
//! [`Key`], and what the merge met on the way ([`MergeNote`]).

use std::collections::HashMap;

use crate::schema::{Entity, EntityKind, Schema};

/// A set of versions: bit `i` is the `i`th of [`Versioning::labels`].
pub type VersionSet = u64;

/// What a versioning record is about: an entity, or one member, enum
/// value or branch of one, by the merged model's names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Key {
    /// A command, event or type.
    Entity(String),
    /// A member of an object type (one of its own, not of its base).
    Member {
        /// The type.
        owner: String,
        /// The member.
        name: String,
    },
    /// A value of an enum.
    Value {
        /// The enum.
        owner: String,
        /// The value.
        name: String,
    },
    /// A branch of a union or an alternate.
    Branch {
        /// The union or alternate.
        owner: String,
        /// The branch.
        name: String,
    },
}

impl Key {
    /// Entity `name`.
    pub fn entity(name: &str) -> Key {
        Key::Entity(name.to_string())
    }

    /// Member `name` of object type `owner`.
    pub fn member(owner: &str, name: &str) -> Key {
        Key::Member {
            owner: owner.to_string(),
            name: name.to_string(),
        }
    }

    /// Value `name` of enum `owner`.
    pub fn value(owner: &str, name: &str) -> Key {
        Key::Value {
            owner: owner.to_string(),
            name: name.to_string(),
        }
    }

    /// Branch `name` of union or alternate `owner`.
    pub fn branch(owner: &str, name: &str) -> Key {
        Key::Branch {
            owner: owner.to_string(),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for Key {
    /// `T`, `T.member`, `T=value`, `T|branch`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Entity(n) => f.write_str(n),
            Key::Member { owner, name } => write!(f, "{owner}.{name}"),
            Key::Value { owner, name } => write!(f, "{owner}={name}"),
            Key::Branch { owner, name } => write!(f, "{owner}|{name}"),
        }
    }
}

/// Which versions have what, in a merged model. Names are the merged
/// model's (the newest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Versioning {
    /// The versions merged, oldest first (`7.2.0`, `10.0.2`, ..).
    pub labels: Vec<String>,
    /// Which versions have each entity, member, enum value and branch.
    /// Missing: every version that has its owner (or, for an entity,
    /// every version).
    pub presence: HashMap<Key, VersionSet>,
    /// `if` conditions per version: the versions with each condition and
    /// its text. Missing for a version: unconditional there.
    pub conditions: HashMap<Key, Vec<(VersionSet, String)>>,
    /// Members and branches whose merged type is wider than the type some
    /// versions give them (it reads every version's form): those
    /// versions.
    pub widened: HashMap<Key, VersionSet>,
    /// Unions that older versions sent as a plain struct, without the
    /// discriminator: the branch whose members those versions send, and
    /// the versions. Such a reply decodes into that branch, untagged.
    pub untagged: HashMap<String, (String, VersionSet)>,
    /// Members and enum values only older versions have: the doc comment
    /// (index into the model's docs) of the older definition that
    /// describes them.
    pub docs: HashMap<Key, usize>,
    /// Types known by an older name in older versions.
    pub aliases: Vec<Alias>,
    /// Commands whose arguments an older version gave another type: the
    /// names of those types there (an implicit `q_obj_..-arg` included).
    /// The generator keeps the shape such a command had.
    pub older_args: HashMap<String, Vec<String>>,
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
        self.presence
            .get(&Key::entity(name))
            .copied()
            .unwrap_or(self.all())
    }

    /// The versions that have member `member` of type `owner`.
    pub fn member(&self, owner: &str, member: &str) -> VersionSet {
        self.part(Key::member(owner, member), owner)
    }

    /// The versions that have value `value` of enum `owner`.
    pub fn value(&self, owner: &str, value: &str) -> VersionSet {
        self.part(Key::value(owner, value), owner)
    }

    /// The versions that have branch `branch` of union or alternate
    /// `owner`.
    pub fn variant(&self, owner: &str, branch: &str) -> VersionSet {
        self.part(Key::branch(owner, branch), owner)
    }

    /// The versions that have `key`, a part of entity `owner`.
    fn part(&self, key: Key, owner: &str) -> VersionSet {
        self.presence
            .get(&key)
            .copied()
            .unwrap_or_else(|| self.entity(owner))
    }

    /// Records that `bit`'s version has `key`.
    pub(super) fn mark(&mut self, key: Key, bit: VersionSet) {
        *self.presence.entry(key).or_default() |= bit;
    }

    /// The `if` condition of `key` in the version of bit `bit`, if any.
    pub fn condition(&self, key: &Key, bit: VersionSet) -> Option<&str> {
        self.conditions
            .get(key)?
            .iter()
            .find(|(set, _)| set & bit != 0)
            .map(|(_, c)| c.as_str())
    }

    /// Whether `key` is conditional in any version.
    pub fn ever_conditional(&self, key: &Key) -> bool {
        self.conditions.contains_key(key)
    }

    fn add_condition(&mut self, key: Key, bit: VersionSet, cond: &Option<crate::value::Value>) {
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
    pub(super) fn record_conditions(
        &mut self,
        o: &Schema,
        map: &dyn Fn(&str) -> String,
        bit: VersionSet,
    ) {
        for e in &o.entities {
            let name = map(&e.name);
            self.add_condition(Key::entity(&name), bit, &e.ifcond);
            match &e.kind {
                EntityKind::Enum { members, .. } => {
                    for x in members {
                        self.add_condition(Key::value(&name, &x.name), bit, &x.ifcond);
                    }
                }
                EntityKind::Object(ob) => {
                    for x in &ob.local_members {
                        self.add_condition(Key::member(&name, &x.name), bit, &x.ifcond);
                    }
                    for x in ob.branches.iter().flat_map(|b| &b.variants) {
                        self.add_condition(Key::branch(&name, &x.name), bit, &x.ifcond);
                    }
                }
                EntityKind::Alternate { variants } => {
                    for x in variants {
                        self.add_condition(Key::branch(&name, &x.name), bit, &x.ifcond);
                    }
                }
                _ => {}
            }
        }
    }

    /// Records that entity `e`, its members, values and branches exist in
    /// `bit`.
    pub(super) fn record_entity(&mut self, e: &Entity, bit: VersionSet) {
        let name = &e.name;
        match &e.kind {
            EntityKind::Include { .. } => return,
            EntityKind::Enum { members, .. } => {
                for x in members {
                    self.mark(Key::value(name, &x.name), bit);
                }
            }
            EntityKind::Object(o) => {
                for x in &o.local_members {
                    self.mark(Key::member(name, &x.name), bit);
                }
                for x in o.branches.iter().flat_map(|b| &b.variants) {
                    self.mark(Key::branch(name, &x.name), bit);
                }
            }
            EntityKind::Alternate { variants } => {
                for x in variants {
                    self.mark(Key::branch(name, &x.name), bit);
                }
            }
            _ => {}
        }
        self.mark(Key::entity(name), bit);
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
