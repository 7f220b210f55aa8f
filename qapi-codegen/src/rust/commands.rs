//! Commands, their metadata, the command list and the transaction actions.

use super::structs::Field;
use super::*;

impl<'s> Gen<'_, 's> {
    /// The argument type of a command or the data type of an event:
    /// either a struct made here from an implicit type's members or a
    /// newtype around a named type.
    pub(super) fn emit_args(
        &self,
        id: EntityId,
        arg: Option<EntityId>,
        free_form: bool,
    ) -> TokenStream {
        let name = &self.names[&id];
        let (_, serde_json) = self.serde_paths();
        let e = &self.schema.entities[id];
        let mut doc = self.definition_doc(id);
        if doc.is_empty() {
            doc.push(format!("The QAPI {} `{}`.", e.meta(), e.name));
        }
        let dep = self.deprecated_attr(id);
        let kept = self.kept_struct(id);
        match arg {
            Some(a) if self.names.get(&a) == Some(name) => quote!(),
            Some(a) if !self.schema.entities[a].is_implicit() && kept.is_none() => {
                let inner = self.type_ident(a);
                let ty = ident(name);
                let doc = self.doc_attrs(&doc);
                let rt = &self.rt;
                let eq_hash = self.eq_hash();
                quote! {
                    #doc
                    #dep
                    #[derive(Debug, Clone, PartialEq, #eq_hash)]
                    pub struct #ty(pub #inner);
                    #rt::qapi_newtype!(#ty);
                    impl ::std::convert::From<#inner> for #ty {
                        fn from(v: #inner) -> Self {
                            Self(v)
                        }
                    }
                    impl #ty {
                        /// The command, from its argument (or anything that
                        /// converts into it).
                        pub fn new(arg: impl ::std::convert::Into<#inner>) -> Self {
                            Self(arg.into())
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
                        quote!(#serde_json::Map<::std::string::String, #serde_json::Value>),
                        Some(quote!(#serde_json::Map::new())),
                        vec![
                            "Further (free-form) arguments, such as a device's properties."
                                .to_string(),
                        ],
                    )
                });
                let st = self.emit_struct(name, &doc, &fields, flatten);
                let rt = &self.rt;
                let ty = ident(name);
                let st = if free_form {
                    quote!(#st #rt::qapi_properties!(#ty, properties);)
                } else {
                    st
                };
                let named = if matches!(self.schema.entities[id].kind, EntityKind::Command(_)) {
                    self.named_args(name, &fields)
                } else {
                    quote!()
                };
                let conversions = match kept {
                    Some(a) => self.struct_conversions(name, a, &fields),
                    None => quote!(),
                };
                quote!(#dep #st #named #conversions)
            }
        }
    }

    /// A command that an older QEMU gave arguments of its own (implicit,
    /// or a type named after the command) and a newer one gives another
    /// named type (`migrate-set-parameters` taking `MigrationParameters`)
    /// keeps its shape, a struct with fields, `new` and setters (the
    /// stability rules in ARCHITECTURE.md): the argument type, if so. A
    /// union or free-form argument type stays a newtype.
    pub(super) fn kept_struct(&self, id: EntityId) -> Option<EntityId> {
        let e = &self.schema.entities[id];
        let EntityKind::Command(c) = &e.kind else {
            return None;
        };
        let a = c.arg_type?;
        let o = self.schema.entities[a].as_object()?;
        if !c.generate
            || o.branches.is_some()
            || self.schema.entities[a].is_implicit()
            || self.names.get(&a) == self.names.get(&id)
        {
            return None;
        }
        let older = self.schema.versioning.as_ref()?.older_args.get(&e.name)?;
        let own = ident::type_name(&e.name);
        older
            .iter()
            .any(|t| t.starts_with("q_obj_") || ident::type_name(t) == own)
            .then_some(a)
    }

    /// `From` both ways between a kept command struct and its argument
    /// type (the same fields).
    fn struct_conversions(&self, name: &str, arg: EntityId, fields: &[Field]) -> TokenStream {
        let ty = ident(name);
        let arg_ty = self.type_ident(arg);
        let ids: Vec<proc_macro2::Ident> = fields.iter().map(|f| ident(&f.ident)).collect();
        quote! {
            #[allow(deprecated, reason = "every member is carried over")]
            impl ::std::convert::From<#arg_ty> for #ty {
                fn from(a: #arg_ty) -> Self {
                    Self { #(#ids: a.#ids,)* extra: a.extra }
                }
            }
            #[allow(deprecated, reason = "every member is carried over")]
            impl ::std::convert::From<#ty> for #arg_ty {
                fn from(c: #ty) -> Self {
                    Self { #(#ids: c.#ids,)* extra: c.extra }
                }
            }
        }
    }

    /// For a command whose `new` takes several arguments of one type
    /// (`BlockdevBackup::new(device, sync, target)`, easy to misorder):
    /// `{Name}Args`, its required arguments by name (a plain struct, built
    /// with a struct literal), which converts into the command.
    pub(super) fn named_args(&self, name: &str, fields: &[Field]) -> TokenStream {
        let required: Vec<&Field> = fields.iter().filter(|f| !f.optional).collect();
        let types: Vec<String> = required.iter().map(|f| f.ty.to_string()).collect();
        let repeated = types
            .iter()
            .enumerate()
            .any(|(i, t)| types[..i].contains(t));
        if !repeated {
            return quote!();
        }
        let mut args = format!("{name}Args");
        while self.names.values().any(|n| *n == args) {
            args.push('_');
        }
        let args = ident(&args);
        let ty = ident(name);
        let idents: Vec<proc_macro2::Ident> = required.iter().map(|f| ident(&f.ident)).collect();
        let field_defs = required.iter().map(|f| {
            let id = ident(&f.ident);
            let t = &f.ty;
            let doc = format!(" `{}`.", f.wire);
            quote!(#[doc = #doc] pub #id: #t,)
        });
        let doc = format!(
            " The required arguments of [`{name}`] by name, for a struct literal: `{name}::from({name}Args {{ .. }})`."
        );
        quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, PartialEq)]
            pub struct #args {
                #(#field_defs)*
            }
            #[allow(deprecated, reason = "deprecated members can be set too")]
            impl ::std::convert::From<#args> for #ty {
                fn from(a: #args) -> Self {
                    Self::new(#(a.#idents),*)
                }
            }
        }
    }

    pub(super) fn emit_command(&self, id: EntityId) -> TokenStream {
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
    pub(super) fn command_meta(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let EntityKind::Command(c) = &e.kind else {
            return quote!();
        };
        let mut meta = TokenStream::new();
        if let Some(a) = c.arg_type {
            let n = &self.schema.entities[a].name;
            meta.extend(quote!(arg_type: #n,));
        }
        if let Some(r) = c.ret_type {
            let n = &self.schema.entities[r].name;
            // `any` says nothing a reply could be checked or filled by.
            if n != "any" {
                meta.extend(quote!(ret_type: #n,));
            }
        }
        if c.allow_oob {
            meta.extend(quote!(allow_oob: true,));
        }
        if c.allow_preconfig {
            meta.extend(quote!(allow_preconfig: true,));
        }
        if !c.success_response {
            meta.extend(quote!(success_response: false,));
        }
        meta.extend(self.meta_flags(id));
        let feats: Vec<&str> = e.features.iter().map(|f| f.name.as_str()).collect();
        if !feats.is_empty() {
            meta.extend(quote!(features: [#(#feats),*],));
        }
        meta.extend(self.meta_versions(id));
        // Arguments that not every version having the command has.
        let mut partial = Vec::new();
        if let (Some(v), Some(arg)) = (&self.schema.versioning, c.arg_type)
            && let Some(o) = self.schema.entities[arg].as_object()
        {
            let all = v.entity(&e.name);
            for &r in &o.members {
                let m = self.schema.member(r);
                let set = v.member(&m.defined_in, &m.name) & all;
                if set != all {
                    let wire = &m.name;
                    let names = v.names(set);
                    partial.push(quote!((#wire, [#(#names),*])));
                }
            }
        }
        if !partial.is_empty() {
            meta.extend(quote!(partial_args: [#(#partial),*],));
        }
        meta
    }

    /// `deprecated`, `unstable`, `since` and `condition` of a command's or
    /// event's metadata, each only where it is not the default.
    pub(super) fn meta_flags(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let mut out = TokenStream::new();
        if Self::features_deprecated(&e.features) {
            out.extend(quote!(deprecated: true,));
        }
        if e.features.iter().any(|f| f.name == "unstable") {
            out.extend(quote!(unstable: true,));
        }
        if let Some(since) = docs::since(self.doc_of(id)) {
            out.extend(quote!(since: #since,));
        }
        if let Some(c) = &e.ifcond {
            let c = crate::schema::condition_text(c);
            out.extend(quote!(condition: #c,));
        }
        out
    }

    /// `versions: [..]` of a command's or event's metadata (none when the
    /// model is one schema).
    pub(super) fn meta_versions(&self, id: EntityId) -> TokenStream {
        match (&self.schema.versioning, self.entity_versions(id)) {
            (Some(v), Some(set)) => {
                let names = v.names(set);
                quote!(versions: [#(#names),*],)
            }
            _ => TokenStream::new(),
        }
    }

    pub(super) fn emit_command_list(&self) -> TokenStream {
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

    /// `IntoTransactionAction` and its impls, when the schema has QEMU's
    /// `TransactionAction` union.
    pub(super) fn emit_transactions(&self) -> TokenStream {
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
            let boxed = self.is_boxed(ta, v.ty, true);
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
                Some(c) if self.kept_struct(c).is_some() => {
                    let data = self.type_ident(data_ty);
                    (self.type_ident(c), wrap(quote!(#data::from(self))))
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
