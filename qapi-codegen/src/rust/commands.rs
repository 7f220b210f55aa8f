//! Commands, their metadata, the command list and the transaction actions.

use super::structs::Field;
use super::*;

impl<'s> Gen<'s> {
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
                let eq_hash = self.eq_hash(a);
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
                        quote!(::serde_json::Map<::std::string::String, ::serde_json::Value>),
                        Some(quote!(::serde_json::Map::new())),
                        vec![
                            "Further (free-form) arguments, such as a device's properties."
                                .to_string(),
                        ],
                    )
                });
                let st = self.emit_struct(name, &doc, &fields, flatten, true);
                let named = if matches!(self.schema.entities[id].kind, EntityKind::Command(_)) {
                    self.named_args(name, &fields)
                } else {
                    quote!()
                };
                quote!(#dep #st #named)
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
        let (oob, pre, ok) = (c.allow_oob, c.allow_preconfig, c.success_response);
        let dep = Self::features_deprecated(&e.features);
        let unstable = e.features.iter().any(|f| f.name == "unstable");
        let since = Self::since_tokens(docs::since(self.doc_of(id)));
        let cond = self.cond_tokens(id);
        let feats: Vec<&str> = e.features.iter().map(|f| f.name.as_str()).collect();
        let versions = self.versions_tokens(self.entity_versions(id));
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
                    partial.push(quote!((#wire, &[#(#names),*])));
                }
            }
        }
        let arg_type = match c.arg_type {
            Some(a) => {
                let n = &self.schema.entities[a].name;
                quote!(::std::option::Option::Some(#n))
            }
            None => quote!(::std::option::Option::None),
        };
        quote! {
            arg_type: #arg_type,
            allow_oob: #oob,
            allow_preconfig: #pre,
            success_response: #ok,
            deprecated: #dep,
            unstable: #unstable,
            since: #since,
            condition: #cond,
            features: &[#(#feats),*],
            versions: #versions,
            partial_args: &[#(#partial),*],
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
        // Name-based dispatch: a tool goes from a wire name to the type.
        let arms: Vec<TokenStream> = self
            .schema
            .iter()
            .filter(|(_, e)| matches!(e.kind, EntityKind::Command(_)))
            .map(|(id, e)| {
                let ty = self.type_ident(id);
                let wire = &e.name;
                quote!(#wire => ::std::option::Option::Some(v.visit::<#ty>()),)
            })
            .collect();
        let proto = match self.protocol {
            Protocol::Qmp => quote!(#rt::Qmp),
            Protocol::Qga => quote!(#rt::Qga),
        };
        let tables = self.emit_tables();
        quote! {
            /// Every command of the schema, in schema order.
            pub static COMMANDS: &[#rt::CommandMeta] = &[#(#metas),*];

            #tables

            /// Calls `v` with the command type whose wire name is `name`
            /// (`None` for a name the bindings don't know): a tool's way from
            /// a name to the typed command, its arguments and its reply.
            pub fn with_command<__V: #rt::CommandVisitor<#proto>>(name: &str, v: __V) -> ::std::option::Option<__V::Output> {
                match name {
                    #(#arms)*
                    _ => {
                        let _ = v;
                        ::std::option::Option::None
                    }
                }
            }
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
