//! Stage 3: Rust code from a checked [`Schema`].
//!
//! [`generate`] returns one file per QAPI module (`block-core.json` →
//! `block_core.rs`) plus `mod.rs`, which re-exports them all and holds the
//! schema-wide items: the [`AnyEvent`-style] enum over all events, the
//! `Event` trait, the transaction-action trait and the list of commands.
//! Code is built with `quote` and formatted with `prettyplease`, so output
//! never depends on a local rustfmt. Modules are made on as many threads
//! as there are cores.
//!
//! Definitions (types, their members and variants, with their docs) are
//! spelled out; the repetitive impls are one call each of the runtime's
//! macros (`qapi_struct!`, `qapi_builder!`, `qapi_enum!`, `qapi_union!`,
//! `qapi_newtype!`, `qapi_command!`, `qapi_event!`), which expand to lean
//! hand-written-style impls. That keeps the output small, the generated
//! crate quick to compile and generation quick (syn and prettyplease take
//! a macro's body as plain tokens). Doc comments travel as placeholders
//! and are written in after formatting (`Gen::doc_attrs`).
//!
//! The shapes (see ARCHITECTURE.md for the reasoning):
//! - struct → `#[non_exhaustive]` struct with a `new(required..)`
//!   constructor and a `with_x` setter per optional member;
//! - enum → enum with an `Unknown(String)` fallback;
//! - union → struct of base members + a flattened `branch` enum (or just
//!   the enum when the base is only the discriminator); unknown branches
//!   keep their members;
//! - alternate → enum told apart by JSON type;
//! - command → a type implementing the runtime's `Command` trait;
//! - event → a data type implementing the runtime's `Event` trait.
//!
//! [`AnyEvent`-style]: generate

mod alternates;
pub mod api;
mod boxing;
mod commands;
mod dispatch;
mod docs;
mod enums;
mod events;
mod files;
mod format;
pub mod ident;
mod names;
mod shapes;
mod structs;
mod tables;
mod unions;

pub use shapes::Shapes;

use std::collections::{HashMap, HashSet};

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::schema::{EntityId, EntityKind, Member, ObjectType, Schema};
use format::*;
use ident::{Scope, camel, field, ident};

/// How to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Path of the runtime crate `qapi-rt` (the `Command` trait, the wire
    /// macros), as Rust source: `::qapi_rt` (the default), or a
    /// re-export of it. Generated code depends on nothing else.
    pub runtime: String,
    /// What the header of each file names as the schema it came from.
    pub schema_label: String,
    /// The command that regenerates the files, named in their headers.
    pub regen_command: String,
    /// Whose commands these are: QEMU's monitor or the guest agent (the
    /// generated commands' `Command::Protocol`).
    pub protocol: Protocol,
    /// Paragraphs added to a definition's doc, by its QAPI name (a
    /// command, event or type): what using it takes that its schema doc
    /// does not say (`MIGRATION` comes only with the `events` migration
    /// capability).
    pub notes: Vec<(String, String)>,
    /// Boxing decisions made before (the committed file `regen` keeps):
    /// a member, branch or event named here keeps its shape; others are
    /// decided by size ([`generate`] writes them all to [`SHAPES_FILE`]).
    pub shapes: Shapes,
}

/// The protocol a schema's commands belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// QEMU's monitor (`qapi/qapi-schema.json`): the runtime's `Qmp`.
    #[default]
    Qmp,
    /// The guest agent (`qga/qapi-schema.json`): the runtime's `Qga`.
    Qga,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            runtime: "::qapi_rt".into(),
            schema_label: "the QAPI schema".into(),
            regen_command: "qapi-gen generate".into(),
            protocol: Protocol::Qmp,
            notes: Vec::new(),
            shapes: Shapes::default(),
        }
    }
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the output directory (`mod.rs`, `block_core.rs`).
    pub path: String,
    /// Formatted Rust source.
    pub contents: String,
}

/// Generates Rust for `schema`: `mod.rs` and one file per module.
///
/// Beside the Rust files comes [`SHAPES_FILE`], the boxing decisions made
/// (those of [`Options::shapes`] for the members, branches and events it
/// names, the size rule's for the others): read it back into
/// [`Options::shapes`] at the next generation ([`Shapes::parse`]), so that
/// what exists keeps its shape.
pub fn generate(schema: &Schema, opts: &Options) -> crate::Result<Vec<GeneratedFile>> {
    let plan = Plan::with_options(schema, opts)?;
    let mut files = Gen::new(&plan).files(opts)?;
    files.push(GeneratedFile {
        path: SHAPES_FILE.into(),
        contents: plan.decided.to_text(),
    });
    Ok(files)
}

/// The file [`generate`] writes its boxing decisions to, beside the Rust
/// files.
pub const SHAPES_FILE: &str = "shapes.txt";

/// The public API that [`generate`] would write for `schema`, read from
/// the items' tokens without formatting them (as [`api::Api::of_files`]
/// reads it from the files, `tables.rs` aside): for the API check, which
/// needs the API of several schemas quickly.
pub fn generate_api(schema: &Schema, opts: &Options) -> crate::Result<api::Api> {
    let plan = Plan::with_options(schema, opts)?;
    let modules = Gen::new(&plan).module_file_names();
    api::Api::read_in_parallel(|t, threads, api| {
        let g = Gen::new(&plan);
        for &(i, _) in modules.iter().skip(t).step_by(threads) {
            for &id in &plan.schema.modules[i].entities {
                let item = g.emit_entity(id);
                if !item.is_empty() {
                    api.read_tokens(item)?;
                }
            }
            g.docs.take();
        }
        if t == 0 {
            let names: Vec<String> = modules.iter().map(|(_, n)| n.clone()).collect();
            let paths = g.emit_kind_paths(&names);
            let events = g.emit_any_event();
            let transactions = g.emit_transactions();
            let commands = g.emit_command_list();
            let versions = g.emit_versions();
            let dispatch = g.emit_dispatch();
            api.read_tokens(quote!(#paths #events #transactions #commands #versions #dispatch))?;
        }
        Ok(())
    })
}

/// The Rust module (and file) name the generator gives a schema file
/// with this stem (`type` → `type_`): a plain identifier in every
/// edition, and a plain file name.
pub fn module_name(stem: &str) -> String {
    ident::module(stem)
}

/// An argument-less `query-*` command: (wire name, Rust type name).
pub fn argless_queries(schema: &Schema) -> Vec<(String, String)> {
    let Ok(plan) = Plan::new(schema, "crate::rt", Protocol::Qmp, Shapes::default()) else {
        return Vec::new();
    };
    let g = Gen::new(&plan);
    let mut out = Vec::new();
    for (id, e) in schema.iter() {
        if let EntityKind::Command(c) = &e.kind
            && e.name.starts_with("query-")
            && c.success_response
            && c.ret_type.is_some()
            && c.arg_type
                .is_none_or(|a| g.object_fields(a, None).iter().all(|f| f.optional))
        {
            out.push((e.name.clone(), g.names[&id].clone()));
        }
    }
    out
}

/// The analysis of a schema, made once and shared (by reference) by every
/// file's emitter, on any thread: the Rust name of each item, the boxed
/// edges, the branch enums' names, the deprecated aliases.
struct Plan<'s> {
    schema: &'s Schema,
    /// The runtime's path, as Rust source (checked to parse).
    runtime: String,
    /// Deprecated aliases of renamed types: schema name, Rust name,
    /// target, deprecation note.
    aliases: Vec<(String, String, EntityId, String)>,
    /// Rust type name of each emitted type, command and event.
    names: HashMap<EntityId, String>,
    /// Name of the branch enum of unions that have base members.
    branch_names: HashMap<EntityId, String>,
    /// Member and branch edges (owner, target) boxed because they are on
    /// a cycle of by-value types.
    boxed: HashSet<(EntityId, EntityId)>,
    /// Edges (owner, target) whose optional members and branches are
    /// boxed because the target is large (`boxing.rs`); required members
    /// of that type stay inline. Ask [`Plan::is_boxed`].
    large: HashSet<(EntityId, EntityId)>,
    /// Events that `AnyEvent` holds boxed: those whose data is large.
    large_events: HashSet<EntityId>,
    /// Boxing decisions made before ([`Options::shapes`]).
    frozen: Shapes,
    /// Every boxing decision made for size: `frozen`'s, and the new ones.
    decided: Shapes,
    /// Whose commands these are.
    protocol: Protocol,
    /// [`Options::notes`], by QAPI name.
    notes: HashMap<String, String>,
}

impl<'s> Plan<'s> {
    /// Analyses `schema`; `runtime` is the runtime's path (see
    /// [`Options::runtime`]).
    fn with_options(schema: &'s Schema, opts: &Options) -> crate::Result<Plan<'s>> {
        let mut plan = Plan::new(schema, &opts.runtime, opts.protocol, opts.shapes.clone())?;
        plan.notes = opts.notes.iter().cloned().collect();
        Ok(plan)
    }

    fn new(
        schema: &'s Schema,
        runtime: &str,
        protocol: Protocol,
        frozen: Shapes,
    ) -> crate::Result<Plan<'s>> {
        syn::parse_str::<syn::Path>(runtime).map_err(|e| {
            crate::Error::Option(format!("runtime path '{runtime}' is not a Rust path: {e}"))
        })?;
        let mut p = Plan {
            schema,
            runtime: runtime.to_string(),
            aliases: Vec::new(),
            names: HashMap::new(),
            branch_names: HashMap::new(),
            boxed: HashSet::new(),
            large: HashSet::new(),
            large_events: HashSet::new(),
            frozen,
            decided: Shapes::default(),
            protocol,
            notes: HashMap::new(),
        };
        p.assign_names();
        p.find_recursion();
        p.find_large();
        Ok(p)
    }

    fn emitted_type(&self, id: EntityId) -> bool {
        let e = &self.schema.entities[id];
        match &e.kind {
            EntityKind::Enum { .. } => true,
            EntityKind::Object(_) => !e.is_implicit(),
            EntityKind::Alternate { .. } => true,
            _ => false,
        }
    }

    /// Whether union `id` is emitted as just its branch enum.
    fn union_is_enum(&self, id: EntityId) -> bool {
        let Some(o) = self.schema.entities[id].as_object() else {
            return false;
        };
        let Some(b) = &o.branches else { return false };
        o.members.len() == 1 && self.schema.member(o.members[0]).name == b.tag_name
    }

    /// The runtime's path as tokens.
    fn rt(&self) -> TokenStream {
        // Checked to parse in `Plan::new`.
        self.runtime.parse().unwrap_or_default()
    }
}

/// The emitter of one file: the shared [`Plan`], the runtime path as
/// tokens, and the file's doc comments collected while its tokens are
/// made (see [`Gen::doc_attrs`]).
struct Gen<'p, 's> {
    plan: &'p Plan<'s>,
    rt: TokenStream,
    /// Doc comments of the file being made, by placeholder number.
    docs: std::cell::RefCell<Vec<String>>,
}

impl<'s> std::ops::Deref for Gen<'_, 's> {
    type Target = Plan<'s>;

    fn deref(&self) -> &Plan<'s> {
        self.plan
    }
}

impl<'p, 's> Gen<'p, 's> {
    /// An emitter for one file.
    fn new(plan: &'p Plan<'s>) -> Gen<'p, 's> {
        Gen {
            plan,
            rt: plan.rt(),
            docs: std::cell::RefCell::default(),
        }
    }

    /// `serde` and `serde_json` as generated code reaches them: through
    /// the runtime, so a crate of generated code depends on it alone.
    fn serde_paths(&self) -> (TokenStream, TokenStream) {
        let rt = &self.rt;
        (
            quote!(#rt::__private::serde),
            quote!(#rt::__private::serde_json),
        )
    }

    /// A doc comment. The tokens carry only a placeholder (`#[doc =
    /// "\u{E000}N"]`); [`Gen::format`] writes the text in as `///` lines
    /// after formatting, which spares escaping it, syn unescaping it and
    /// prettyplease copying it (most of the output is doc text).
    fn doc_attrs(&self, lines: &[String]) -> TokenStream {
        if lines.is_empty() {
            return TokenStream::new();
        }
        let linked;
        let lines = if lines.iter().any(|l| l.contains(docs::QAPI_LINK)) {
            linked = lines
                .iter()
                .map(|l| self.resolve_links(l))
                .collect::<Vec<_>>();
            &linked[..]
        } else {
            lines
        };
        let mut docs = self.docs.borrow_mut();
        let key = format!("{DOC_MARK}{}", docs.len());
        if lines.iter().any(|l| l.contains(['\r', DOC_MARK])) {
            // A bare carriage return is an error in a doc comment, and the
            // placeholder mark must not appear in the text.
            let clean: Vec<String> = lines
                .iter()
                .map(|l| l.replace('\r', " ").replace(DOC_MARK, "\u{FFFD}"))
                .collect();
            docs.push(doc_text(&clean));
        } else {
            docs.push(doc_text(lines));
        }
        quote!(#[doc = #key])
    }

    /// Formats a file's tokens and fills in its doc comments.
    fn format(&self, tokens: TokenStream, what: &str) -> crate::Result<String> {
        let out = format_file(tokens, what)?;
        let docs = self.docs.take();
        Ok(fill_docs(&out, &docs))
    }

    fn features_deprecated(features: &[crate::schema::Feature]) -> bool {
        features.iter().any(|f| f.name == "deprecated")
    }

    /// The doc that describes member `r` of `id`: the type that declares
    /// the member (or, for an implicit type, the definition that made it),
    /// or an older version's where the member's doc was dropped.
    fn member_owner_doc(&self, id: EntityId, r: (EntityId, usize)) -> Option<&'s crate::doc::Doc> {
        let m = self.schema.member(r);
        let doc = self
            .schema
            .lookup(&m.defined_in)
            .and_then(|d| self.doc_of(d))
            .or_else(|| self.doc_of(id));
        self.older_doc(&crate::schema::Key::member(&m.defined_in, &m.name))
            .or_else(|| doc.or_else(|| self.implicit_owner_doc(r.0)))
    }

    fn member_doc(&self, m: &Member, doc: Option<&crate::doc::Doc>) -> Vec<String> {
        let mut out = docs::member(doc, &m.name);
        let cond = m
            .ifcond
            .as_ref()
            .map(|c| format!("Only if `{}`.", crate::schema::condition_text(c)));
        append_notes(&mut out, cond, &m.features, doc);
        let versions = self
            .schema
            .versioning
            .as_ref()
            .map(|v| v.member(&m.defined_in, &m.name));
        self.push_availability(&mut out, versions);
        out
    }

    /// Adds "Only in QEMU .." to a doc when `set` is not every version.
    fn push_availability(&self, out: &mut Vec<String>, set: Option<crate::schema::VersionSet>) {
        let (Some(v), Some(set)) = (&self.schema.versioning, set) else {
            return;
        };
        if set & v.all() == v.all() {
            return;
        }
        if !out.is_empty() {
            out.push(String::new());
        }
        out.push(format!(
            "Only in QEMU {} of the supported {}.",
            v.names(set).join(", "),
            v.labels.join(", ")
        ));
    }

    /// The versions that have entity `id`.
    fn entity_versions(&self, id: EntityId) -> Option<crate::schema::VersionSet> {
        let v = self.schema.versioning.as_ref()?;
        Some(v.entity(&self.schema.entities[id].name))
    }

    /// Turns the `:qapi:KIND:` role targets `docs::inline` marked into
    /// links to the generated items (from a module file, `super::Name`
    /// is the re-export in `mod.rs`), or code where there is none.
    fn resolve_links(&self, line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(i) = rest.find(docs::QAPI_LINK) {
            out.push_str(&rest[..i]);
            let after = &rest[i + docs::QAPI_LINK.len_utf8()..];
            let Some(end) = after.find(docs::QAPI_LINK_END) else {
                out.push_str(after);
                return out;
            };
            let name = &after[..end];
            match self.schema.lookup(name).and_then(|id| self.names.get(&id)) {
                Some(rust) => out.push_str(&format!("[`{name}`](super::{rust})")),
                None => out.push_str(&format!("`{name}`")),
            }
            rest = &after[end + docs::QAPI_LINK_END.len_utf8()..];
        }
        out.push_str(rest);
        out
    }

    /// The older doc comment describing a member or enum value only
    /// older versions have (`key` as in `Versioning::docs`).
    fn older_doc(&self, key: &crate::schema::Key) -> Option<&'s crate::doc::Doc> {
        let d = *self.schema.versioning.as_ref()?.docs.get(key)?;
        self.schema.docs.get(d)
    }

    /// The doc comment of the definition owning member doc sections: for
    /// an implicit type, the command's or event's.
    fn doc_of(&self, id: EntityId) -> Option<&'s crate::doc::Doc> {
        self.schema.entities[id].doc.map(|d| &self.schema.docs[d])
    }

    fn definition_doc(&self, id: EntityId) -> Vec<String> {
        let e = &self.schema.entities[id];
        let mut out = docs::definition(self.doc_of(id));
        let cond = e
            .ifcond
            .as_ref()
            .map(|c| format!("Only available if `{}`.", crate::schema::condition_text(c)));
        append_notes(&mut out, cond, &e.features, self.doc_of(id));
        if let Some(note) = self.notes.get(&e.name) {
            out.push(String::new());
            out.push(note.clone());
        }
        self.push_availability(&mut out, self.entity_versions(id));
        out
    }

    /// `#[deprecated]` for a definition: deprecated in the schema, or
    /// (a command or event) removed from the newest QEMU.
    fn deprecated_attr(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let doc = self.doc_of(id).or_else(|| self.implicit_owner_doc(id));
        let set = match e.kind {
            EntityKind::Command(_) | EntityKind::Event(_) => self.entity_versions(id),
            _ => None,
        };
        self.deprecation(&e.features, doc, set)
    }

    /// `#[deprecated(note = "..")]` when `features` has `deprecated` (the
    /// note is what the doc comment's `@deprecated:` feature says: why,
    /// and what to use instead), or when `set`, the versions that have
    /// the item, lacks the newest (the note says which QEMU removed it),
    /// else nothing.
    fn deprecation(
        &self,
        features: &[crate::schema::Feature],
        doc: Option<&crate::doc::Doc>,
        set: Option<crate::schema::VersionSet>,
    ) -> TokenStream {
        let mut notes = Vec::new();
        if Self::features_deprecated(features) {
            let text = docs::feature(doc, "deprecated").join(" ");
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            notes.push(if text.is_empty() {
                "deprecated in QEMU's schema".to_string()
            } else {
                text
            });
        }
        if let Some(note) = self.removed_note(set) {
            notes.push(note);
        }
        if notes.is_empty() {
            return quote!();
        }
        let note = notes.join("; ");
        quote!(#[deprecated(note = #note)])
    }

    /// "removed in QEMU X" when `set` (the versions that have an item)
    /// lacks the newest version: X follows the last version with it.
    fn removed_note(&self, set: Option<crate::schema::VersionSet>) -> Option<String> {
        let v = self.schema.versioning.as_ref()?;
        let set = set?;
        let n = v.labels.len();
        if n < 2 || set == 0 || set & (1 << (n - 1)) != 0 {
            return None;
        }
        let last = 63 - set.leading_zeros() as usize;
        let gone = v.labels.get(last + 1)?;
        Some(format!(
            "removed in QEMU {gone} (last in {}): a client refuses it for QEMU {gone} and later",
            v.labels[last]
        ))
    }

    fn emit_entity(&self, id: EntityId) -> TokenStream {
        let item = self.emit_entity_item(id);
        // rustdoc search finds the type by its wire name (`device_del`,
        // `BLOCK_JOB_COMPLETED`); an alias equal to the name is an error.
        let wire = &self.schema.entities[id].name;
        match self.names.get(&id) {
            Some(rust) if !item.is_empty() && rust.trim_start_matches("r#") != wire => {
                quote!(#[doc(alias = #wire)] #item)
            }
            _ => item,
        }
    }

    fn emit_entity_item(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        match &e.kind {
            EntityKind::Enum { .. } => self.emit_enum(id),
            EntityKind::Object(o) if !e.is_implicit() => {
                if o.branches.is_some() {
                    self.emit_union(id)
                } else {
                    self.emit_struct_type(id)
                }
            }
            EntityKind::Alternate { .. } => self.emit_alternate(id),
            EntityKind::Command(_) => self.emit_command(id),
            EntityKind::Event(_) => self.emit_event(id),
            _ => quote!(),
        }
    }
}

use crate::value::Value;

/// Appends the `if` condition and one line per feature to a doc.
fn append_notes(
    out: &mut Vec<String>,
    cond: Option<String>,
    features: &[crate::schema::Feature],
    doc: Option<&crate::doc::Doc>,
) {
    let mut notes: Vec<String> = cond.into_iter().collect();
    for f in features {
        let text = docs::feature(doc, &f.name).join(" ");
        let what = match f.name.as_str() {
            "deprecated" => "**Deprecated**".to_string(),
            "unstable" => "**Unstable**".to_string(),
            other => format!("Feature `{other}`"),
        };
        notes.push(if text.is_empty() {
            format!("{what}.")
        } else {
            format!("{what}: {text}")
        });
    }
    if !notes.is_empty() {
        if !out.is_empty() {
            out.push(String::new());
        }
        out.extend(notes);
    }
}
