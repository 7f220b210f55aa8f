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
//! and are written in after formatting ([`Gen::doc_attrs`]).
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
//! - event → a data type implementing the generated `Event` trait.
//!
//! [`AnyEvent`-style]: generate

mod docs;
pub mod ident;

use std::collections::{HashMap, HashSet};

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::schema::{EntityId, EntityKind, Member, ObjectType, Schema};
use ident::{Scope, camel, field, ident};

/// How to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Path of the runtime module (the `Command` trait, helpers), as Rust
    /// source: `crate::rt` inside `qmp-types`, `::qmp_types::rt` from
    /// another crate.
    pub runtime: String,
    /// What the header of each file names as the schema it came from.
    pub schema_label: String,
    /// The command that regenerates the files, named in their headers.
    pub regen_command: String,
    /// Whose commands these are: QEMU's monitor or the guest agent (the
    /// generated commands' `Command::Protocol`).
    pub protocol: Protocol,
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
            runtime: "::qmp_types::rt".into(),
            schema_label: "the QAPI schema".into(),
            regen_command: "qapi-codegen generate".into(),
            protocol: Protocol::Qmp,
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
pub fn generate(schema: &Schema, opts: &Options) -> crate::Result<Vec<GeneratedFile>> {
    let runtime: syn::Path = syn::parse_str(&opts.runtime)
        .map_err(|e| crate::Error::Generate(format!("bad runtime path '{}': {e}", opts.runtime)))?;
    let mut g = Gen::new(schema, quote!(#runtime));
    g.protocol = opts.protocol;
    g.files(opts)
}

/// The Rust module (and file) name the generator gives a schema file
/// with this stem (`type` → `type_`): a plain identifier in every
/// edition, and a plain file name.
pub fn module_name(stem: &str) -> String {
    ident::module(stem)
}

/// An argument-less `query-*` command: (wire name, Rust type name).
pub fn argless_queries(schema: &Schema) -> Vec<(String, String)> {
    let g = Gen::new(schema, quote!(crate::rt));
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

/// An extra `#[serde(flatten)]` field: ident, type, initial value (`None`:
/// a parameter of `new`), doc.
type Flatten = (TokenStream, TokenStream, Option<TokenStream>, Vec<String>);

/// A struct field, resolved.
struct Field {
    ident: String,
    wire: String,
    ty: TokenStream,
    optional: bool,
    boxed: bool,
    doc: Vec<String>,
    deprecated: bool,
    /// Of type `any` (where JSON `null` is a value).
    any: bool,
}

impl Field {
    /// The member's type as stored (boxed where recursion needs it),
    /// without the `Option` of an optional member.
    fn value_type(&self) -> TokenStream {
        let ty = &self.ty;
        if self.boxed {
            quote!(::std::boxed::Box<#ty>)
        } else {
            ty.clone()
        }
    }
}

struct Gen<'s> {
    schema: &'s Schema,
    rt: TokenStream,
    /// Rust type name of each emitted type, command and event.
    names: HashMap<EntityId, String>,
    /// Name of the branch enum of unions that have base members.
    branch_names: HashMap<EntityId, String>,
    /// Member edges (owner, target) that must be boxed (recursion).
    boxed: HashSet<(EntityId, EntityId)>,
    /// Doc comments of the file being made, by placeholder number (see
    /// [`Gen::doc_attrs`]).
    docs: std::cell::RefCell<Vec<String>>,
    /// Whose commands these are.
    protocol: Protocol,
}

/// One `#[doc]` attribute holding a whole doc comment; prettyplease prints
/// it as a `/** */` block, which [`line_docs`] turns back into `///`
/// lines. (The generator uses placeholders, see [`Gen::doc_attrs`]; the
/// tests use this to check [`line_docs`].)
#[cfg(test)]
fn doc_attr(lines: &[String]) -> TokenStream {
    if lines.is_empty() {
        return TokenStream::new();
    }
    let mut text = doc_text(lines);
    if lines.len() == 1 {
        text.pop();
    }
    quote!(#[doc = #text])
}

/// A doc comment's text: each line after a space (as `/// line` has it),
/// empty lines empty, every line ending in a newline.
fn doc_text(lines: &[String]) -> String {
    let mut text = String::new();
    for l in lines {
        if !l.is_empty() {
            text.push(' ');
            text.push_str(l);
        }
        text.push('\n');
    }
    text
}

impl<'s> Gen<'s> {
    fn new(schema: &'s Schema, rt: TokenStream) -> Gen<'s> {
        let mut g = Gen {
            schema,
            rt,
            names: HashMap::new(),
            branch_names: HashMap::new(),
            boxed: HashSet::new(),
            docs: std::cell::RefCell::default(),
            protocol: Protocol::Qmp,
        };
        g.assign_names();
        g.find_recursion();
        g
    }

    /// A doc comment. The tokens carry only a placeholder (`#[doc =
    /// "\u{E000}N"]`); [`Gen::format`] writes the text in as `///` lines
    /// after formatting, which spares escaping it, syn unescaping it and
    /// prettyplease copying it (most of the output is doc text).
    fn doc_attrs(&self, lines: &[String]) -> TokenStream {
        if lines.is_empty() {
            return TokenStream::new();
        }
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

    fn assign_names(&mut self) {
        let mut scope = Scope::with_reserved(&[
            "AnyEvent",
            "Event",
            "EventMeta",
            // `AnyEvent`'s own variants: an event's type is a variant too.
            "Unknown",
            "Malformed",
            "IntoTransactionAction",
            "COMMANDS",
            "EVENTS",
            "Command",
            "CommandMeta",
            "Timestamp",
            "rt",
        ]);
        for (id, e) in self.schema.iter() {
            if self.emitted_type(id) {
                let n = scope.unique(ident::type_name(&e.name));
                self.names.insert(id, n);
            }
        }
        for (id, e) in self.schema.iter() {
            if e.as_object().is_some_and(|o| o.branches.is_some())
                && self.names.contains_key(&id)
                && !self.union_is_enum(id)
            {
                let n = scope.unique(format!("{}Branch", self.names[&id]));
                self.branch_names.insert(id, n);
            }
        }
        let type_ids: HashMap<String, EntityId> =
            self.names.iter().map(|(id, n)| (n.clone(), *id)).collect();
        // Commands first, so that on a clash (`stop` and `STOP`) the
        // command keeps the plain name and the event gets `Event`.
        let commands = self
            .schema
            .iter()
            .filter(|(_, e)| matches!(e.kind, EntityKind::Command(_)));
        let events = self
            .schema
            .iter()
            .filter(|(_, e)| matches!(e.kind, EntityKind::Event(_)));
        let ordered: Vec<(EntityId, &crate::schema::Entity)> = commands.chain(events).collect();
        for (id, e) in ordered {
            let (arg, suffix) = match &e.kind {
                EntityKind::Command(c) => (c.arg_type, "Command"),
                EntityKind::Event(ev) => (ev.arg_type, "Event"),
                _ => continue,
            };
            let want = ident::type_name(&e.name);
            // A command whose (named) argument type has its own name is
            // that type: `block-dirty-bitmap-add` takes
            // `BlockDirtyBitmapAdd`.
            if suffix == "Command"
                && let (Some(&t), Some(a)) = (type_ids.get(&want), arg)
                && t == a
                && !self.is_command_type_taken(a)
            {
                self.names.insert(id, want);
                continue;
            }
            let n = scope.unique(want.clone());
            let n = if n == want {
                n
            } else {
                scope.unique(format!("{want}{suffix}"))
            };
            self.names.insert(id, n);
        }
    }

    /// Whether type `a` is already the type of another command.
    fn is_command_type_taken(&self, a: EntityId) -> bool {
        let name = &self.names[&a];
        self.schema.iter().any(|(id, e)| {
            matches!(e.kind, EntityKind::Command(_)) && self.names.get(&id) == Some(name)
        })
    }

    /// Object-ish types a type holds by value (arrays excluded: `Vec`
    /// breaks the size cycle).
    fn value_edges(&self, id: EntityId) -> Vec<EntityId> {
        let mut out = Vec::new();
        let mut push = |t: EntityId| {
            if matches!(
                self.schema.entities.get(t).map(|e| &e.kind),
                Some(EntityKind::Object(_) | EntityKind::Alternate { .. })
            ) {
                out.push(t);
            }
        };
        match &self.schema.entities[id].kind {
            EntityKind::Object(o) => {
                for &m in &o.members {
                    push(self.schema.member(m).ty);
                }
                if let Some(b) = &o.branches {
                    for v in &b.variants {
                        push(v.ty);
                    }
                }
            }
            EntityKind::Alternate { variants } => {
                for v in variants {
                    push(v.ty);
                }
            }
            _ => {}
        }
        out
    }

    fn find_recursion(&mut self) {
        let n = self.schema.entities.len();
        let edges: Vec<Vec<EntityId>> = (0..n).map(|id| self.value_edges(id)).collect();
        let mut reach_cache: HashMap<EntityId, HashSet<EntityId>> = HashMap::new();
        for a in 0..n {
            for &b in &edges[a] {
                let reach = reach_cache.entry(b).or_insert_with(|| {
                    let mut seen = HashSet::new();
                    let mut stack = vec![b];
                    while let Some(x) = stack.pop() {
                        for &y in &edges[x] {
                            if seen.insert(y) {
                                stack.push(y);
                            }
                        }
                    }
                    seen
                });
                if a == b || reach.contains(&a) {
                    self.boxed.insert((a, b));
                }
            }
        }
    }

    fn type_ident(&self, id: EntityId) -> TokenStream {
        let i = ident(&self.names[&id]);
        quote!(#i)
    }

    /// The Rust type of a reference to type `id`.
    fn rust_type(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        match &e.kind {
            EntityKind::Builtin { .. } => match e.name.as_str() {
                "str" => quote!(::std::string::String),
                "int" | "int64" => quote!(i64),
                "int8" => quote!(i8),
                "int16" => quote!(i16),
                "int32" => quote!(i32),
                "uint8" => quote!(u8),
                "uint16" => quote!(u16),
                "uint32" => quote!(u32),
                "uint64" | "size" => quote!(u64),
                "number" => quote!(f64),
                "bool" => quote!(bool),
                "null" => quote!(()),
                _ => quote!(::serde_json::Value),
            },
            EntityKind::Array { element, .. } => {
                let t = self.rust_type(*element);
                quote!(::std::vec::Vec<#t>)
            }
            _ if self.names.contains_key(&id) => self.type_ident(id),
            // An implicit object type used as a value (never in QEMU's
            // schemas): treat it as free-form.
            _ => quote!(::serde_json::Map<::std::string::String, ::serde_json::Value>),
        }
    }

    fn features_deprecated(features: &[crate::schema::Feature]) -> bool {
        features.iter().any(|f| f.name == "deprecated")
    }

    fn member_doc(&self, m: &Member, doc: Option<&crate::doc::Doc>) -> Vec<String> {
        let mut out = docs::member(doc, &m.name);
        let cond = m
            .ifcond
            .as_ref()
            .map(|c| format!("Only if `{}`.", docs::condition(c)));
        append_notes(&mut out, cond, &m.features, doc);
        out
    }

    /// The doc comment of the definition owning member doc sections: for
    /// an implicit type, the command's or event's.
    fn doc_of(&self, id: EntityId) -> Option<&'s crate::doc::Doc> {
        self.schema.entities[id].doc.map(|d| &self.schema.docs[d])
    }

    /// Fields of object type `id` (base members first); `skip` leaves out
    /// the discriminator.
    fn object_fields(&self, id: EntityId, skip: Option<&str>) -> Vec<Field> {
        self.object_fields_beside(id, skip, &[])
    }

    /// [`Gen::object_fields`] beside generated fields named `reserved`
    /// (a union's `branch`, a free-form command's `properties`): a member
    /// of the same name gets another.
    fn object_fields_beside(
        &self,
        id: EntityId,
        skip: Option<&str>,
        reserved: &[&str],
    ) -> Vec<Field> {
        let Some(o) = self.schema.entities[id].as_object() else {
            return Vec::new();
        };
        let mut scope = Scope::with_reserved(reserved);
        let mut out = Vec::new();
        for &r in &o.members {
            let m = self.schema.member(r);
            if Some(m.name.as_str()) == skip {
                continue;
            }
            // Docs live with the type that declares the member (or, for an
            // implicit type, with the definition that made it).
            let doc = self
                .schema
                .lookup(&m.defined_in)
                .and_then(|d| self.doc_of(d))
                .or_else(|| self.doc_of(id));
            let mut doc = self.member_doc(m, doc.or_else(|| self.implicit_owner_doc(r.0)));
            if doc.is_empty() {
                doc.push(format!("`{}`", m.name));
            }
            let boxed = self.boxed.contains(&(id, m.ty));
            out.push(Field {
                ident: scope.unique(field(&m.name)),
                wire: m.name.clone(),
                ty: self.rust_type(m.ty),
                optional: m.optional,
                boxed,
                doc,
                deprecated: Self::features_deprecated(&m.features),
                any: self.schema.entities[m.ty].name == "any",
            });
        }
        out
    }

    /// The doc of the command, event or union that implicit type `id` was
    /// made for.
    fn implicit_owner_doc(&self, id: EntityId) -> Option<&'s crate::doc::Doc> {
        let name = &self.schema.entities[id].name;
        let owner = name.strip_prefix("q_obj_")?;
        let owner = owner
            .strip_suffix("-arg")
            .or_else(|| owner.strip_suffix("-base"))
            .unwrap_or(owner);
        self.schema.lookup(owner).and_then(|o| self.doc_of(o))
    }

    fn field_tokens(&self, f: &Field) -> TokenStream {
        let doc = self.doc_attrs(&f.doc);
        let name = ident(&f.ident);
        let ty = f.value_type();
        let dep = if f.deprecated {
            quote!(#[deprecated])
        } else {
            quote!()
        };
        if f.optional {
            quote! {
                #doc
                #dep
                pub #name: ::std::option::Option<#ty>,
            }
        } else {
            quote! {
                #doc
                #dep
                pub #name: #ty,
            }
        }
    }

    /// The struct's wire format: one `qapi_struct!` call.
    fn struct_serde(
        &self,
        name: &TokenStream,
        fields: &[Field],
        flat: Option<&TokenStream>,
    ) -> TokenStream {
        let rt = &self.rt;
        let members = fields.iter().enumerate().map(|(i, f)| {
            let idx = proc_macro2::Literal::usize_unsuffixed(i);
            let kind = match (f.optional, f.any) {
                (false, _) => quote!(req),
                (true, false) => quote!(opt),
                (true, true) => quote!(anyopt),
            };
            let field = ident(&f.ident);
            let wire = &f.wire;
            quote!(#idx #kind #field #wire,)
        });
        let flat = flat.map(|f| quote!(flatten #f));
        quote! {
            #rt::qapi_struct!(#name { #(#members)* } #flat);
        }
    }

    /// `new(required..)` and `with_x(optional)` for a struct: one
    /// `qapi_builder!` call. `extra_init` holds `field = value` pairs,
    /// `extra_params` more parameters of `new` (`field: Type`).
    fn constructors(
        &self,
        name: &TokenStream,
        fields: &[Field],
        extra_init: &[TokenStream],
        extra_params: &[TokenStream],
    ) -> TokenStream {
        let rt = &self.rt;
        let wrap = |f: &Field| if f.boxed { quote!(boxed) } else { quote!(into) };
        let mut params = Vec::new();
        let mut setters = Vec::new();
        for f in fields {
            let id = ident(&f.ident);
            let ty = &f.ty;
            let w = wrap(f);
            if f.optional {
                let setter = format_ident!("with_{}", f.ident.trim_start_matches("r#"));
                let wire = &f.wire;
                setters.push(quote!(#setter #id #wire: #ty => #w,));
            } else {
                params.push(quote!(#id: #ty => #w,));
            }
        }
        let new_doc = if params.is_empty() && extra_params.is_empty() {
            " Builds it with every optional member absent."
        } else {
            " Builds it from its required members; optional ones are absent."
        };
        let extra_params = extra_params.iter().map(|p| quote!(#p => into,));
        quote! {
            #rt::qapi_builder!(#name
                new(#new_doc) { #(#params)* #(#extra_params)* }
                init { #(#extra_init,)* }
                set { #(#setters)* }
            );
        }
    }

    /// A struct with its wire format, constructor and setters. `flatten`
    /// adds one more (flattened) field: (ident, type, init expression).
    fn emit_struct(
        &self,
        name: &str,
        doc: &[String],
        fields: &[Field],
        flatten: Option<Flatten>,
    ) -> TokenStream {
        let doc = self.doc_attrs(doc);
        let ty = ident(name);
        let field_tokens: Vec<TokenStream> = fields.iter().map(|f| self.field_tokens(f)).collect();
        let mut extra_init = Vec::new();
        let mut extra_params = Vec::new();
        let mut flat_ident = None;
        let flat = match flatten {
            Some((fid, fty, init, fdoc)) => {
                let fdoc = self.doc_attrs(&fdoc);
                match init {
                    Some(init) => extra_init.push(quote!(#fid = #init)),
                    None => extra_params.push(quote!(#fid: #fty)),
                }
                let out = quote! {
                    #fdoc
                    pub #fid: #fty,
                };
                flat_ident = Some(fid);
                out
            }
            None => quote!(),
        };
        let default = if fields.iter().all(|f| f.optional) && extra_params.is_empty() {
            quote!(Default,)
        } else {
            quote!()
        };
        let name_tokens = quote!(#ty);
        let serde = self.struct_serde(&name_tokens, fields, flat_ident.as_ref());
        let ctor = self.constructors(&name_tokens, fields, &extra_init, &extra_params);
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, #default)]
            #[non_exhaustive]
            pub struct #ty {
                #(#field_tokens)*
                #flat
            }
            #serde
            #ctor
        }
    }

    fn definition_doc(&self, id: EntityId) -> Vec<String> {
        let e = &self.schema.entities[id];
        let mut out = docs::definition(self.doc_of(id));
        let cond = e
            .ifcond
            .as_ref()
            .map(|c| format!("Only available if `{}`.", docs::condition(c)));
        append_notes(&mut out, cond, &e.features, self.doc_of(id));
        out
    }

    fn deprecated_attr(&self, id: EntityId) -> TokenStream {
        if Self::features_deprecated(&self.schema.entities[id].features) {
            quote!(#[deprecated])
        } else {
            quote!()
        }
    }

    fn emit_enum(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let EntityKind::Enum { members, .. } = &e.kind else {
            return quote!();
        };
        let rt = &self.rt;
        let name = self.type_ident(id);
        let mut doc = self.definition_doc(id);
        if doc.is_empty() {
            doc.push(format!("The QAPI enum `{}`.", e.name));
        }
        let doc = self.doc_attrs(&doc);
        let dep = self.deprecated_attr(id);
        let mut scope = Scope::with_reserved(&["Unknown"]);
        let edoc = self.doc_of(id);
        let mut variants = Vec::new();
        let mut to_str = Vec::new();
        for m in members {
            let v = ident(&scope.unique(camel(&m.name)));
            let wire = &m.name;
            let mut vdoc = docs::member(edoc, &m.name);
            if vdoc.is_empty() {
                vdoc.push(format!("`{wire}`"));
            }
            if let Some(c) = &m.ifcond {
                vdoc.push(String::new());
                vdoc.push(format!("Only if `{}`.", docs::condition(c)));
            }
            let vdoc = self.doc_attrs(&vdoc);
            let vdep = if Self::features_deprecated(&m.features) {
                quote!(#[deprecated])
            } else {
                quote!()
            };
            variants.push(quote!(#vdoc #vdep #v,));
            to_str.push(quote!(#v = #wire,));
        }
        quote! {
            #doc
            #dep
            #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
            #[non_exhaustive]
            pub enum #name {
                #(#variants)*
                /// A value this version of the bindings doesn't know (sent by
                /// a newer QEMU), as it was on the wire.
                Unknown(::std::string::String),
            }
            #rt::qapi_enum!(#name { #(#to_str)* });
        }
    }

    /// The branch enum of a union, with its serde impls.
    fn emit_branch_enum(
        &self,
        id: EntityId,
        enum_name: &str,
        doc: Vec<String>,
        o: &ObjectType,
    ) -> TokenStream {
        let rt = &self.rt;
        let Some(b) = &o.branches else {
            return quote!();
        };
        let name = ident(enum_name);
        let tag = &b.tag_name;
        let doc = self.doc_attrs(&doc);
        // Values of the discriminator enum, each with its branch (if any).
        let tag_values: Vec<(String, Option<&Value>)> = match b
            .tag_member
            .map(|t| &self.schema.entities[self.schema.member(t).ty].kind)
        {
            Some(EntityKind::Enum { members, .. }) => members
                .iter()
                .map(|m| (m.name.clone(), m.ifcond.as_ref()))
                .collect(),
            _ => Vec::new(),
        };
        let mut scope = Scope::with_reserved(&["Unknown"]);
        let mut variants = Vec::new();
        let mut data = Vec::new();
        let mut unit = Vec::new();
        let udoc = self.doc_of(id);
        for (value, cond) in &tag_values {
            let v = ident(&scope.unique(camel(value)));
            let branch = b.variants.iter().find(|m| m.name == *value);
            let mut vdoc = vec![format!("`{tag}` = `{value}`.")];
            let mdoc = docs::member(udoc, value);
            if !mdoc.is_empty() {
                vdoc.push(String::new());
                vdoc.extend(mdoc);
            }
            if let Some(c) = cond {
                vdoc.push(String::new());
                vdoc.push(format!("Only if `{}`.", docs::condition(c)));
            }
            let vdoc = self.doc_attrs(&vdoc);
            let has_data = branch.is_some_and(|m| {
                let t = &self.schema.entities[m.ty];
                !(t.name == "q_empty"
                    || t.as_object().is_some_and(|o| {
                        o.members.is_empty() && o.branches.is_none() && t.is_implicit()
                    }))
            });
            match branch {
                Some(m) if has_data => {
                    let mut ty = self.rust_type(m.ty);
                    let boxed = self.boxed.contains(&(id, m.ty));
                    if boxed {
                        ty = quote!(::std::boxed::Box<#ty>);
                    }
                    variants.push(quote!(#vdoc #v(#ty),));
                    data.push(quote!(#v = #value,));
                }
                _ => {
                    variants.push(quote!(#vdoc #v,));
                    unit.push(quote!(#v = #value,));
                }
            }
        }
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq)]
            #[non_exhaustive]
            pub enum #name {
                #(#variants)*
                /// A branch this version of the bindings doesn't know (sent by
                /// a newer QEMU): the discriminator's value and the other members.
                Unknown {
                    /// The discriminator's value.
                    tag: ::std::string::String,
                    /// The branch's members (and any unknown base members).
                    members: ::serde_json::Map<::std::string::String, ::serde_json::Value>,
                },
            }
            #rt::qapi_union!(#name, #tag, data { #(#data)* } unit { #(#unit)* });
        }
    }

    fn emit_union(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let Some(o) = e.as_object() else {
            return quote!();
        };
        let Some(b) = &o.branches else {
            return quote!();
        };
        let mut doc = self.definition_doc(id);
        if doc.is_empty() {
            doc.push(format!("The QAPI union `{}`.", e.name));
        }
        let name = &self.names[&id];
        if self.union_is_enum(id) {
            return self.emit_branch_enum(id, name, doc, o);
        }
        let bname = &self.branch_names[&id];
        let fields = self.object_fields_beside(id, Some(&b.tag_name), &["branch"]);
        let bty = ident(bname);
        let branch_doc = vec![format!("The branch, chosen by `{}`.", b.tag_name)];
        let st = self.emit_struct(
            name,
            &doc,
            &fields,
            Some((quote!(branch), quote!(#bty), None, branch_doc)),
        );
        let en = self.emit_branch_enum(
            id,
            bname,
            vec![format!("The branches of [`{name}`], by `{}`.", b.tag_name)],
            o,
        );
        quote!(#st #en)
    }

    fn emit_alternate(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let EntityKind::Alternate { variants } = &e.kind else {
            return quote!();
        };
        let rt = &self.rt;
        let name = self.type_ident(id);
        let mut doc = self.definition_doc(id);
        if doc.is_empty() {
            doc.push(format!("The QAPI alternate `{}`.", e.name));
        }
        let doc = self.doc_attrs(&doc);
        let adoc = self.doc_of(id);
        let mut scope = Scope::default();
        let mut vs = Vec::new();
        let mut ser = Vec::new();
        let mut arms: Vec<(u8, TokenStream)> = Vec::new();
        for m in variants {
            let v = ident(&scope.unique(camel(&m.name)));
            let t = &self.schema.entities[m.ty];
            let mut vdoc = docs::member(adoc, &m.name);
            if vdoc.is_empty() {
                vdoc.push(format!("`{}`", m.name));
            }
            let vdoc = self.doc_attrs(&vdoc);
            let json = match &t.kind {
                EntityKind::Builtin { json_type } => *json_type,
                EntityKind::Enum { .. } => "string",
                EntityKind::Array { .. } => "array",
                EntityKind::Object(_) => "object",
                _ => "value",
            };
            if json == "null" {
                vs.push(quote!(#vdoc #v,));
                ser.push(quote!(Self::#v => s.serialize_unit(),));
                arms.push((
                    0,
                    quote!(::serde_json::Value::Null => ::std::result::Result::Ok(Self::#v),),
                ));
                continue;
            }
            let mut ty = self.rust_type(m.ty);
            if self.boxed.contains(&(id, m.ty)) {
                ty = quote!(::std::boxed::Box<#ty>);
            }
            vs.push(quote!(#vdoc #v(#ty),));
            ser.push(quote!(Self::#v(x) => ::serde::Serialize::serialize(x, s),));
            let conv = quote!(::serde_json::from_value(v).map(Self::#v));
            let arm = match (json, t.name.as_str()) {
                ("string", _) => (1, quote!(v @ ::serde_json::Value::String(_) => #conv,)),
                ("boolean", _) => (2, quote!(v @ ::serde_json::Value::Bool(_) => #conv,)),
                ("number", "number") => (4, quote!(v @ ::serde_json::Value::Number(_) => #conv,)),
                ("number", _) | ("int", _) => (
                    3,
                    quote!(v @ ::serde_json::Value::Number(_) if v.is_i64() || v.is_u64() => #conv,),
                ),
                ("array", _) => (5, quote!(v @ ::serde_json::Value::Array(_) => #conv,)),
                ("object", _) => (6, quote!(v @ ::serde_json::Value::Object(_) => #conv,)),
                _ => (7, quote!(v => #conv,)),
            };
            arms.push(arm);
        }
        arms.sort_by_key(|(k, _)| *k);
        let arms: Vec<TokenStream> = arms.into_iter().map(|(_, t)| t).collect();
        let expected = format!("a value of alternate {}", e.name);
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq)]
            pub enum #name {
                #(#vs)*
            }
            impl ::serde::Serialize for #name {
                fn serialize<__S: ::serde::Serializer>(&self, s: __S) -> ::std::result::Result<__S::Ok, __S::Error> {
                    match self {
                        #(#ser)*
                    }
                }
            }
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<__D: ::serde::Deserializer<'de>>(d: __D) -> ::std::result::Result<Self, __D::Error> {
                    let v = <::serde_json::Value as ::serde::Deserialize>::deserialize(d)?;
                    let r: ::std::result::Result<Self, ::serde_json::Error> = match v {
                        #(#arms)*
                        #[allow(unreachable_patterns, reason = "not every alternate covers every JSON type")]
                        other => ::std::result::Result::Err(#rt::unexpected_alternate(&other, #expected)),
                    };
                    r.map_err(<__D::Error as ::serde::de::Error>::custom)
                }
            }
        }
    }

    fn emit_struct_type(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let mut doc = self.definition_doc(id);
        if doc.is_empty() {
            doc.push(format!("The QAPI struct `{}`.", e.name));
        }
        let fields = self.object_fields(id, None);
        let st = self.emit_struct(&self.names[&id], &doc, &fields, None);
        let dep = self.deprecated_attr(id);
        quote!(#dep #st)
    }

    fn since_tokens(since: Option<String>) -> TokenStream {
        match since {
            Some(s) => quote!(::std::option::Option::Some(#s)),
            None => quote!(::std::option::Option::None),
        }
    }

    fn cond_tokens(&self, id: EntityId) -> TokenStream {
        match &self.schema.entities[id].ifcond {
            Some(c) => {
                let c = docs::condition(c);
                quote!(::std::option::Option::Some(#c))
            }
            None => quote!(::std::option::Option::None),
        }
    }

    /// The argument type of a command or the data type of an event:
    /// either a struct made here from an implicit type's members or a
    /// newtype around a named type.
    fn emit_args(&self, id: EntityId, arg: Option<EntityId>, free_form: bool) -> TokenStream {
        let name = &self.names[&id];
        let e = &self.schema.entities[id];
        let mut doc = self.definition_doc(id);
        if doc.is_empty() {
            doc.push(format!("The QAPI {} `{}`.", e.meta(), e.name));
        }
        let dep = self.deprecated_attr(id);
        match arg {
            Some(a) if self.names.get(&a) == Some(name) => quote!(),
            Some(a) if !self.schema.entities[a].is_implicit() => {
                let inner = self.type_ident(a);
                let ty = ident(name);
                let doc = self.doc_attrs(&doc);
                let rt = &self.rt;
                quote! {
                    #doc
                    #dep
                    #[derive(Debug, Clone, PartialEq)]
                    pub struct #ty(pub #inner);
                    #rt::qapi_newtype!(#ty);
                    impl ::std::convert::From<#inner> for #ty {
                        fn from(v: #inner) -> Self {
                            Self(v)
                        }
                    }
                }
            }
            _ => {
                let fields = match arg {
                    Some(a) if free_form => self.object_fields_beside(a, None, &["properties"]),
                    Some(a) => self.object_fields(a, None),
                    None => Vec::new(),
                };
                let flatten = free_form.then(|| {
                    (
                        quote!(properties),
                        quote!(::serde_json::Map<::std::string::String, ::serde_json::Value>),
                        Some(quote!(::serde_json::Map::new())),
                        vec![
                            "Further (free-form) arguments, such as a device's properties."
                                .to_string(),
                        ],
                    )
                });
                let st = self.emit_struct(name, &doc, &fields, flatten);
                quote!(#dep #st)
            }
        }
    }

    fn emit_command(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let EntityKind::Command(c) = &e.kind else {
            return quote!();
        };
        let rt = &self.rt;
        let args = self.emit_args(id, c.arg_type, !c.generate);
        let ty = ident(&self.names[&id]);
        let wire = &e.name;
        let returns = match c.ret_type {
            Some(r) => self.rust_type(r),
            None => quote!(()),
        };
        let meta = self.command_meta(id);
        match self.protocol {
            Protocol::Qmp => quote! {
                #args
                #rt::qapi_command!(#ty, #wire, #returns, { #meta });
            },
            Protocol::Qga => quote! {
                #args
                #rt::qapi_command!(#ty, #wire, #returns, #rt::Qga, { #meta });
            },
        }
    }

    /// The fields of a command's `CommandMeta` but its name.
    fn command_meta(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let EntityKind::Command(c) = &e.kind else {
            return quote!();
        };
        let (oob, pre, ok) = (c.allow_oob, c.allow_preconfig, c.success_response);
        let dep = Self::features_deprecated(&e.features);
        let unstable = e.features.iter().any(|f| f.name == "unstable");
        let since = Self::since_tokens(docs::since(self.doc_of(id)));
        let cond = self.cond_tokens(id);
        let feats: Vec<&str> = e.features.iter().map(|f| f.name.as_str()).collect();
        quote! {
            allow_oob: #oob,
            allow_preconfig: #pre,
            success_response: #ok,
            deprecated: #dep,
            unstable: #unstable,
            since: #since,
            condition: #cond,
            features: &[#(#feats),*],
        }
    }

    fn emit_event(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let EntityKind::Event(ev) = &e.kind else {
            return quote!();
        };
        let args = self.emit_args(id, ev.arg_type, false);
        let ty = ident(&self.names[&id]);
        let wire = &e.name;
        let dep = Self::features_deprecated(&e.features);
        let unstable = e.features.iter().any(|f| f.name == "unstable");
        let since = Self::since_tokens(docs::since(self.doc_of(id)));
        let cond = self.cond_tokens(id);
        let rt = &self.rt;
        quote! {
            #args
            #rt::qapi_event!(#ty, #wire, {
                deprecated: #dep,
                unstable: #unstable,
                since: #since,
                condition: #cond,
            });
        }
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

    fn module_file_names(&self) -> Vec<(usize, String)> {
        let mut scope = Scope::with_reserved(&["mod", "rt"]);
        let mut out = Vec::new();
        for (i, m) in self.schema.modules.iter().enumerate() {
            let stem = m.name.rsplit('/').next().unwrap_or(&m.name);
            let stem = stem.strip_suffix(".json").unwrap_or(stem);
            let stem = if m.name == "./builtin" {
                "builtin"
            } else {
                stem
            };
            out.push((i, scope.unique(ident::module(stem))));
        }
        out
    }

    /// The start of module `i`'s file: its header and imports.
    fn module_head(&self, i: usize, file: &str, opts: &Options) -> crate::Result<String> {
        let m = &self.schema.modules[i];
        let header = format!(
            " Generated by `{}` from {} (module `{}`), do not edit by hand.",
            opts.regen_command, opts.schema_label, m.name
        );
        let head = quote! {
            #![doc = #header]
            #[allow(unused_imports, reason = "items refer to each other across modules")]
            use super::*;
        };
        format_file(head, file)
    }

    /// The items of module `i`'s entities `range`, formatted, docs filled
    /// in; `None` when they define nothing. One item at a time: its
    /// tokens, its syntax tree and its text live only while it is
    /// formatted, so memory and time grow with the schema linearly,
    /// however large one module is.
    fn module_chunk(
        &self,
        i: usize,
        range: std::ops::Range<usize>,
        file: &str,
    ) -> crate::Result<Option<String>> {
        let m = &self.schema.modules[i];
        let mut out = String::new();
        let mut any = false;
        for &id in &m.entities[range] {
            let item = self.emit_entity(id);
            if item.is_empty() {
                continue;
            }
            any = true;
            out.push_str(&format_file(item, file)?);
        }
        let docs = self.docs.take();
        Ok(any.then(|| fill_docs(&out, &docs)))
    }

    /// The rest of `mod.rs` after its module declarations: `AnyEvent`,
    /// transactions, the command list.
    fn mod_tail(&self) -> crate::Result<String> {
        let events = self.emit_any_event();
        let transactions = self.emit_transactions();
        let commands = self.emit_command_list();
        self.format(quote!(#events #transactions #commands), "mod")
    }

    /// Every module's file, built on as many threads as the machine has
    /// cores (each thread makes its own tokens: they are not `Send`), in
    /// units of a few entities so that one large module is shared; and,
    /// made on this thread meanwhile, the rest of `mod.rs`.
    fn module_files(&self, opts: &Options) -> crate::Result<(Vec<GeneratedFile>, String)> {
        let modules = self.module_file_names();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .max(1);
        let entity_weight = |id: EntityId| match self.schema.entities[id].as_object() {
            Some(o) => 4 + o.local_members.len(),
            None => 4,
        };
        let total: usize = self
            .schema
            .modules
            .iter()
            .flat_map(|m| m.entities.iter())
            .map(|&id| entity_weight(id))
            .sum();
        // Work units: runs of one module's entities, small enough that a
        // module much larger than the others is shared between threads.
        let unit_max = (total / (threads * 4)).max(64);
        let mut units: Vec<(usize, std::ops::Range<usize>, usize)> = Vec::new();
        for (k, &(i, _)) in modules.iter().enumerate() {
            let ents = &self.schema.modules[i].entities;
            let (mut start, mut w) = (0, 0);
            for (j, &id) in ents.iter().enumerate() {
                w += entity_weight(id);
                if w >= unit_max {
                    units.push((k, start..j + 1, w));
                    start = j + 1;
                    w = 0;
                }
            }
            if start < ents.len() || ents.is_empty() {
                units.push((k, start..ents.len(), w));
            }
        }
        // Largest units first, each to the least loaded thread.
        let mut order: Vec<usize> = (0..units.len()).collect();
        order.sort_by_key(|&u| std::cmp::Reverse(units[u].2));
        let threads = threads.min(units.len()).max(1);
        let mut load = vec![0usize; threads];
        let mut work: Vec<Vec<usize>> = vec![Vec::new(); threads];
        for u in order {
            let t = (0..threads).min_by_key(|&t| load[t]).unwrap_or(0);
            load[t] += units[u].2;
            work[t].push(u);
        }
        let units = &units;
        let (schema, names, branch_names, boxed) =
            (self.schema, &self.names, &self.branch_names, &self.boxed);
        let rt = self.rt.to_string();
        let modules = &modules;
        let mut tail = Ok(String::new());
        let mut done: Vec<(usize, crate::Result<Option<String>>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = work
                .into_iter()
                .map(|ks| {
                    let rt = rt.clone();
                    scope.spawn(move || {
                        let rt = match rt.parse::<TokenStream>() {
                            Ok(rt) => rt,
                            Err(e) => {
                                let msg = format!("runtime path doesn't parse: {e}");
                                return ks
                                    .iter()
                                    .map(|&k| (k, Err(crate::Error::Generate(msg.clone()))))
                                    .collect();
                            }
                        };
                        let g = Gen {
                            schema,
                            rt,
                            names: names.clone(),
                            branch_names: branch_names.clone(),
                            boxed: boxed.clone(),
                            docs: std::cell::RefCell::default(),
                            protocol: opts.protocol,
                        };
                        ks.into_iter()
                            .map(|u| {
                                let (k, range, _) = &units[u];
                                let (i, file) = &modules[*k];
                                (u, g.module_chunk(*i, range.clone(), file))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            tail = self.mod_tail();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join().unwrap_or_else(|_| {
                        vec![(
                            usize::MAX,
                            Err(crate::Error::Generate("a generator thread panicked".into())),
                        )]
                    })
                })
                .collect()
        });
        // Units are in module order, and in entity order within one.
        done.sort_by_key(|(u, _)| *u);
        let mut bodies: Vec<Option<String>> = vec![None; modules.len()];
        for (u, chunk) in done {
            let Some((k, _, _)) = units.get(u) else {
                return Err(chunk.err().unwrap_or_else(|| {
                    crate::Error::Generate("a generator thread panicked".into())
                }));
            };
            if let Some(text) = chunk? {
                bodies[*k].get_or_insert_with(String::new).push_str(&text);
            }
        }
        let mut files = Vec::new();
        for (k, body) in bodies.into_iter().enumerate() {
            let Some(body) = body else { continue };
            let (i, file) = &modules[k];
            let mut contents = self.module_head(*i, file, opts)?;
            contents.push_str(&body);
            files.push(GeneratedFile {
                path: format!("{file}.rs"),
                contents,
            });
        }
        Ok((files, tail?))
    }

    fn files(&self, opts: &Options) -> crate::Result<Vec<GeneratedFile>> {
        let (mut files, tail) = self.module_files(opts)?;
        let mods: Vec<String> = files
            .iter()
            .map(|f| f.path.trim_end_matches(".rs").to_string())
            .collect();
        let header = format!(
            " Generated by `{}` from {}, do not edit by hand.",
            opts.regen_command, opts.schema_label
        );
        let mod_idents: Vec<_> = mods.iter().map(|m| ident(m)).collect();
        let rt = &self.rt;
        let tokens = quote! {
            #![doc = #header]
            #![allow(deprecated, reason = "the schema's deprecated items are generated too")]
            #![allow(non_snake_case, non_camel_case_types, non_upper_case_globals, reason = "names follow the schema")]
            #![allow(clippy::all, clippy::pedantic, reason = "generated code: names and shapes follow the schema")]
            #![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags, rustdoc::bare_urls, reason = "doc text comes from the schema")]
            #[allow(unused_imports, reason = "the runtime is there for every schema")]
            use #rt::{Command, CommandMeta};
            #(mod #mod_idents;)*
            #(pub use self::#mod_idents::*;)*
        };
        let mut contents = self.format(tokens, "mod")?;
        contents.push_str(&tail);
        files.insert(
            0,
            GeneratedFile {
                path: "mod.rs".into(),
                contents,
            },
        );
        Ok(files)
    }

    fn emit_command_list(&self) -> TokenStream {
        let rt = &self.rt;
        let metas: Vec<TokenStream> = self
            .schema
            .iter()
            .filter(|(_, e)| matches!(e.kind, EntityKind::Command(_)))
            .map(|(id, _)| {
                let ty = self.type_ident(id);
                quote!(<#ty as #rt::Command>::META)
            })
            .collect();
        quote! {
            /// Every command of the schema, in schema order.
            pub static COMMANDS: &[#rt::CommandMeta] = &[#(#metas),*];
        }
    }

    fn emit_any_event(&self) -> TokenStream {
        let mut variants = Vec::new();
        let mut names = Vec::new();
        let mut de = Vec::new();
        let mut ser = Vec::new();
        let mut metas = Vec::new();
        for (id, e) in self.schema.iter() {
            if !matches!(e.kind, EntityKind::Event(_)) {
                continue;
            }
            let v = self.type_ident(id);
            let wire = &e.name;
            let doc = format!(" `{wire}`");
            variants.push(quote!(#[doc = #doc] #v(#v),));
            names.push(quote!(Self::#v(_) => #wire,));
            de.push(quote!(#wire => Self::#v(::serde::Deserialize::deserialize(data)?),));
            ser.push(quote!(Self::#v(x) => ::serde::Serialize::serialize(x, s),));
            metas.push(quote!(<#v as Event>::META));
        }
        quote! {
            /// Metadata of an event.
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            #[non_exhaustive]
            pub struct EventMeta {
                /// The name on the wire.
                pub name: &'static str,
                /// Marked `deprecated` in the schema.
                pub deprecated: bool,
                /// Marked `unstable` in the schema.
                pub unstable: bool,
                /// The schema's `Since:`.
                pub since: ::std::option::Option<&'static str>,
                /// The schema's `if` condition (QEMU sends the event only
                /// when built with it).
                pub condition: ::std::option::Option<&'static str>,
            }

            /// An event's data type.
            pub trait Event: ::std::marker::Sized + ::serde::de::DeserializeOwned {
                /// The event's name on the wire.
                const NAME: &'static str;
                /// Its metadata.
                const META: EventMeta;
                /// This event, if `event` is one.
                fn from_any(event: AnyEvent) -> ::std::option::Option<Self>;
                /// This event, if `event` is one, by reference.
                fn from_any_ref(event: &AnyEvent) -> ::std::option::Option<&Self>;
            }

            /// Any event of the schema, or one it doesn't know.
            #[derive(Debug, Clone, PartialEq)]
            #[non_exhaustive]
            pub enum AnyEvent {
                #(#variants)*
                /// An event whose name this version of the bindings doesn't
                /// know.
                Unknown {
                    /// Its name.
                    name: ::std::string::String,
                    /// Its data (`{}` if it had none).
                    data: ::serde_json::Value,
                },
                /// An event whose name the bindings know, with data that
                /// does not fit its type (a QEMU outside the schema's
                /// range, or a bug): kept with the decoder's message, so
                /// that nothing is lost in silence. Readers of typed
                /// events are told of it as an error.
                Malformed {
                    /// Its name.
                    name: ::std::string::String,
                    /// Its data as received.
                    data: ::serde_json::Value,
                    /// Why it does not decode (with the bad member's path).
                    error: ::std::string::String,
                },
            }

            impl AnyEvent {
                /// The event's name on the wire.
                pub fn name(&self) -> &str {
                    match self {
                        #(#names)*
                        Self::Unknown { name, .. } | Self::Malformed { name, .. } => name,
                    }
                }

                /// Decodes the `data` of event `name`. An unknown name gives
                /// [`AnyEvent::Unknown`]; a known one with bad data, the
                /// decoder's error (a reader that keeps such an event makes
                /// it [`AnyEvent::Malformed`]).
                pub fn deserialize_data<'de, __D: ::serde::Deserializer<'de>>(
                    name: &str,
                    data: __D,
                ) -> ::std::result::Result<Self, __D::Error> {
                    ::std::result::Result::Ok(match name {
                        #(#de)*
                        _ => Self::Unknown {
                            name: ::std::string::ToString::to_string(name),
                            data: ::serde::Deserialize::deserialize(data)?,
                        },
                    })
                }

                /// Encodes the event's data.
                pub fn serialize_data<__S: ::serde::Serializer>(&self, s: __S) -> ::std::result::Result<__S::Ok, __S::Error> {
                    match self {
                        #(#ser)*
                        Self::Unknown { data, .. } | Self::Malformed { data, .. } => ::serde::Serialize::serialize(data, s),
                    }
                }
            }

            /// Metadata of every event of the schema, in schema order.
            pub static EVENTS: &[EventMeta] = &[#(#metas),*];
        }
    }

    /// `IntoTransactionAction` and its impls, when the schema has QEMU's
    /// `TransactionAction` union.
    fn emit_transactions(&self) -> TokenStream {
        let Some(ta) = self.schema.lookup("TransactionAction") else {
            return quote!();
        };
        let Some(o) = self.schema.entities[ta].as_object() else {
            return quote!();
        };
        let Some(b) = &o.branches else {
            return quote!();
        };
        if !self.union_is_enum(ta) {
            return quote!();
        }
        let ta_ty = self.type_ident(ta);
        let mut impls = Vec::new();
        let mut scope = Scope::with_reserved(&["Unknown"]);
        // Variant names as emit_branch_enum assigned them.
        let variant_of: HashMap<String, String> = match b
            .tag_member
            .map(|t| &self.schema.entities[self.schema.member(t).ty].kind)
        {
            Some(EntityKind::Enum { members, .. }) => members
                .iter()
                .map(|m| (m.name.clone(), scope.unique(camel(&m.name))))
                .collect(),
            _ => HashMap::new(),
        };
        for v in &b.variants {
            // The wrapper: a struct whose one member `data` is the action's
            // argument type.
            let Some(w) = self.schema.entities[v.ty].as_object() else {
                continue;
            };
            let [data] = w.members.as_slice() else {
                continue;
            };
            let data_m = self.schema.member(*data);
            let data_ty = data_m.ty;
            let wrapper = self.type_ident(v.ty);
            let data_field = ident(&field(&data_m.name));
            let variant = ident(&variant_of[&v.name]);
            let boxed = self.boxed.contains(&(ta, v.ty));
            let wrap = |inner: TokenStream| {
                let w = quote!(#wrapper::new(#inner));
                let w = if boxed {
                    quote!(::std::boxed::Box::new(#w))
                } else {
                    w
                };
                quote!(#ta_ty::#variant(#w))
            };
            let _ = &data_field;
            // The command of the same name, if it takes the same type.
            let cmd = self.schema.lookup(&v.name).filter(|&c| {
                matches!(&self.schema.entities[c].kind, EntityKind::Command(cm) if cm.arg_type == Some(data_ty))
            });
            let (target, expr) = match cmd {
                Some(c) if self.names[&c] == self.names[&data_ty] => {
                    (self.type_ident(c), wrap(quote!(self)))
                }
                Some(c) => (self.type_ident(c), wrap(quote!(self.0))),
                None => (self.type_ident(data_ty), wrap(quote!(self))),
            };
            let wire = &v.name;
            let doc = format!(" The `{wire}` action.");
            impls.push(quote! {
                #[doc = #doc]
                impl IntoTransactionAction for #target {
                    fn into_action(self) -> #ta_ty {
                        #expr
                    }
                }
            });
        }
        let names: Vec<&str> = b.variants.iter().map(|v| v.name.as_str()).collect();
        let note = format!("`transaction` accepts: {}", names.join(", "));
        quote! {
            /// Implemented only by the argument types of actions that the
            /// `transaction` command accepts, so that putting any other
            /// command into a transaction doesn't compile.
            #[diagnostic::on_unimplemented(
                message = "`{Self}` is not a transaction action",
                label = "not an action of `transaction`",
                note = #note
            )]
            pub trait IntoTransactionAction {
                /// The action.
                fn into_action(self) -> #ta_ty;
            }
            impl IntoTransactionAction for #ta_ty {
                fn into_action(self) -> #ta_ty {
                    self
                }
            }
            #(#impls)*
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

fn format_file(tokens: TokenStream, what: &str) -> crate::Result<String> {
    let file: syn::File = syn::parse2(tokens).map_err(|e| {
        crate::Error::Generate(format!("generated module '{what}' does not parse: {e}"))
    })?;
    Ok(line_docs(&prettyplease::unparse(&file)))
}

/// Starts the placeholder of a doc comment (a private-use character, then
/// the comment's number); see [`Gen::doc_attrs`].
const DOC_MARK: char = '\u{E000}';

/// Replaces each `///` placeholder line that [`Gen::doc_attrs`] made with
/// its doc comment's lines, at the same indentation.
fn fill_docs(src: &str, docs: &[String]) -> String {
    let mut out =
        String::with_capacity(src.len() + docs.iter().map(|d| d.len() + 16).sum::<usize>());
    for line in src.split_inclusive('\n') {
        let body = line.trim_start_matches(' ');
        let indent = &line[..line.len() - body.len()];
        let doc = body
            .strip_prefix("///")
            .and_then(|b| b.strip_prefix(DOC_MARK))
            .and_then(|n| n.trim_end().parse::<usize>().ok())
            .and_then(|n| docs.get(n));
        match doc {
            Some(doc) => {
                for text in doc.lines() {
                    out.push_str(indent);
                    out.push_str("///");
                    out.push_str(text.trim_end());
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Rewrites the `/** .. */` blocks prettyplease prints for multi-line doc
/// attributes as indented `///` lines. A block starts with `/**` after
/// indentation; its text lines each start with a space or are empty (as
/// [`doc_attr`] writes them), and it ends with a line `*/`. Anything
/// else is left alone.
fn line_docs(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + src.len() / 8);
    let mut lines = src.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let body = line.trim_start_matches(' ');
        let indent = &line[..line.len() - body.len()];
        let Some(first) = body.strip_prefix("/**").filter(|r| !r.starts_with('*')) else {
            out.push_str(line);
            continue;
        };
        let mut block = vec![first.trim_end_matches('\n')];
        let mut closed = false;
        for next in lines.by_ref() {
            let text = next.trim_end_matches('\n');
            if text == "*/" {
                closed = true;
                break;
            }
            block.push(text);
        }
        if !closed {
            // Not a block we wrote: keep it as it was.
            out.push_str(line);
            for text in &block[1..] {
                out.push_str(text);
                out.push('\n');
            }
            continue;
        }
        for text in block {
            out.push_str(indent);
            out.push_str("///");
            out.push_str(text.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(tokens: TokenStream) -> String {
        format_file(tokens, "test").expect("formats")
    }

    #[test]
    fn multi_line_docs_print_as_line_comments() {
        let doc = doc_attr(&["First.".into(), String::new(), "  Indented.".into()]);
        let out = format(quote! {
            #doc
            pub struct A {
                #doc
                pub x: u8,
            }
        });
        assert_eq!(
            out,
            "/// First.\n///\n///   Indented.\npub struct A {\n    /// First.\n    ///\n    ///   Indented.\n    pub x: u8,\n}\n"
        );
    }

    #[test]
    fn doc_placeholders_are_filled_in_at_their_indentation() {
        let docs = vec![" One.\n\n Two.\n".to_string(), " Field.\n".to_string()];
        let src =
            format!("///{DOC_MARK}0\npub struct A {{\n    ///{DOC_MARK}1\n    pub x: u8,\n}}\n");
        assert_eq!(
            fill_docs(&src, &docs),
            "/// One.\n///\n/// Two.\npub struct A {\n    /// Field.\n    pub x: u8,\n}\n"
        );
        // A number with no comment, or other text, is left as it is.
        let odd = format!("///{DOC_MARK}7\n/// plain\n");
        assert_eq!(fill_docs(&odd, &docs), odd);
    }

    #[test]
    fn single_line_docs_and_other_text_stay() {
        let doc = doc_attr(&["Only line.".into()]);
        assert_eq!(
            format(quote!(#doc pub struct B;)),
            "/// Only line.\npub struct B;\n"
        );
        // Text that can't be a block comment stays an attribute.
        let doc = doc_attr(&["a */ b".into(), "c".into()]);
        let out = format(quote!(#doc pub struct C;));
        assert!(out.starts_with("#[doc = "), "{out}");
        // A block without its closing line is not touched.
        assert_eq!(line_docs("/** x\n y\n"), "/** x\n y\n");
    }
}
