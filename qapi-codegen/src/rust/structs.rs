//! Structs: fields, constructors, setters and their wire format.

use super::*;

/// An extra `#[serde(flatten)]` field: ident, type, initial value (`None`:
/// a parameter of `new`), doc.
pub(super) type Flatten = (TokenStream, TokenStream, Option<TokenStream>, Vec<String>);

/// A struct field, resolved.
pub(super) struct Field {
    pub(super) ident: String,
    pub(super) wire: String,
    pub(super) ty: TokenStream,
    pub(super) optional: bool,
    pub(super) boxed: bool,
    pub(super) doc: Vec<String>,
    /// `#[deprecated(..)]`, or nothing.
    pub(super) deprecated: TokenStream,
    /// Of a type that takes JSON `null` as a value (`any`, `null`, an
    /// alternate with a `null` branch).
    pub(super) any: bool,
}

impl Field {
    /// The member's type as stored (boxed where recursion or size asks),
    /// without the `Option` of an optional member.
    pub(super) fn value_type(&self) -> TokenStream {
        let ty = &self.ty;
        if self.boxed {
            quote!(::std::boxed::Box<#ty>)
        } else {
            ty.clone()
        }
    }
}

impl Plan<'_> {
    /// Whether member `m` is optional in Rust: optional in the schema, or
    /// under an `if` (QEMU built without it does not send it).
    pub(super) fn member_optional(m: &Member) -> bool {
        m.optional || m.ifcond.is_some()
    }
}

impl<'s> Gen<'_, 's> {
    /// Fields of object type `id` (base members first); `skip` leaves out
    /// the discriminator.
    pub(super) fn object_fields(&self, id: EntityId, skip: Option<&str>) -> Vec<Field> {
        self.object_fields_beside(id, skip, &[])
    }

    /// [`Gen::object_fields`] beside generated fields named `reserved`
    /// (a union's `branch`, a free-form command's `properties`): a member
    /// of the same name gets another.
    pub(super) fn object_fields_beside(
        &self,
        id: EntityId,
        skip: Option<&str>,
        reserved: &[&str],
    ) -> Vec<Field> {
        let Some(o) = self.schema.entities[id].as_object() else {
            return Vec::new();
        };
        // `extra` is the field that keeps members the type doesn't know.
        let mut reserved = reserved.to_vec();
        reserved.push("extra");
        let mut scope = Scope::with_reserved(&reserved);
        let mut out = Vec::new();
        for &r in &o.members {
            let m = self.schema.member(r);
            if Some(m.name.as_str()) == skip {
                continue;
            }
            let owner_doc = self.member_owner_doc(id, r);
            // Removed: a member the newest version's type lacks.
            let versions = self.schema.versioning.as_ref().and_then(|v| {
                let newest = v.all() & !(v.all() >> 1);
                (v.entity(&m.defined_in) & newest != 0).then(|| v.member(&m.defined_in, &m.name))
            });
            let deprecated = self.deprecation(&m.features, owner_doc, versions);
            let mut doc = self.member_doc(m, owner_doc);
            if doc.is_empty() {
                doc.push(format!("`{}`", m.name));
            }
            let optional = Plan::member_optional(m);
            out.push(Field {
                ident: scope.unique(field(&m.name)),
                wire: m.name.clone(),
                ty: self.rust_type(m.ty),
                optional,
                boxed: self.is_boxed(id, m.ty, optional),
                doc,
                deprecated,
                any: self.takes_null(m.ty),
            });
        }
        out
    }

    /// Whether type `id` reads JSON `null` as a value: `any`, `null`, or
    /// an alternate with a `null` branch.
    pub(super) fn takes_null(&self, id: EntityId) -> bool {
        let e = &self.schema.entities[id];
        match &e.kind {
            EntityKind::Builtin { .. } => matches!(e.name.as_str(), "any" | "null"),
            EntityKind::Alternate { variants } => variants
                .iter()
                .any(|v| self.schema.entities[v.ty].name == "null"),
            _ => false,
        }
    }

    /// The doc of the command, event or union that implicit type `id` was
    /// made for.
    pub(super) fn implicit_owner_doc(&self, id: EntityId) -> Option<&'s crate::doc::Doc> {
        let owner = crate::schema::implicit_owner(&self.schema.entities[id].name)?;
        self.schema.lookup(owner).and_then(|o| self.doc_of(o))
    }

    pub(super) fn field_tokens(&self, f: &Field) -> TokenStream {
        let doc = self.doc_attrs(&f.doc);
        let name = ident(&f.ident);
        let ty = f.value_type();
        let dep = &f.deprecated;
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
    pub(super) fn struct_serde(
        &self,
        name: &TokenStream,
        fields: &[Field],
        flat: Option<&TokenStream>,
        extra: Option<&TokenStream>,
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
        let extra = extra.map(|e| quote!(extra #e));
        // The required members, a bit per index: the decoder names the
        // first one missing.
        let required = fields
            .iter()
            .enumerate()
            .filter(|(i, f)| !f.optional && *i < 64)
            .fold(0u64, |mask, (i, _)| mask | 1 << i);
        let required = (required != 0).then(|| {
            let mask = proc_macro2::Literal::u64_unsuffixed(required);
            quote!(required #mask)
        });
        quote! {
            #rt::qapi_struct!(#name { #(#members)* } #flat #extra #required);
        }
    }

    /// `new(required..)` and `with_x(optional)` for a struct: one
    /// `qapi_builder!` call. `extra_init` holds `field = value` pairs,
    /// `extra_params` more parameters of `new` (`field: Type`).
    pub(super) fn constructors(
        &self,
        name: &TokenStream,
        fields: &[Field],
        extra_init: &[TokenStream],
        extra_params: &[TokenStream],
    ) -> TokenStream {
        let rt = &self.rt;
        // An integer member takes its type itself, so that a literal
        // (`with_speed(1 << 20)`) gets that type instead of `i32`.
        let wrap = |f: &Field| match f.ty.to_string().as_str() {
            _ if f.boxed => quote!(boxed),
            "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" => quote!(plain),
            _ => quote!(into),
        };
        let mut params = Vec::new();
        let mut setters = Vec::new();
        for f in fields {
            let id = ident(&f.ident);
            let ty = &f.ty;
            let w = wrap(f);
            if f.optional {
                let bare = f.ident.trim_start_matches("r#");
                let setter = format_ident!("with_{}", bare);
                let maybe = format_ident!("maybe_{}", bare);
                let wire = &f.wire;
                let dep = &f.deprecated;
                setters.push(quote!(#dep #setter #maybe #id #wire: #ty => #w,));
            } else {
                params.push(quote!(#id: #ty => #w,));
            }
        }
        let extra_params = extra_params.iter().map(|p| quote!(#p => into,));
        quote! {
            #rt::qapi_builder!(#name
                new { #(#params)* #(#extra_params)* }
                init { #(#extra_init,)* }
                set { #(#setters)* }
            );
        }
    }

    /// A struct with its wire format, constructor and setters. `flatten`
    /// adds one more (flattened) field: (ident, type, init expression).
    pub(super) fn emit_struct(
        &self,
        name: &str,
        doc: &[String],
        fields: &[Field],
        flatten: Option<Flatten>,
    ) -> TokenStream {
        let doc = self.doc_attrs(doc);
        let eq_hash = self.eq_hash();
        let ty = ident(name);
        let field_tokens: Vec<TokenStream> = fields.iter().map(|f| self.field_tokens(f)).collect();
        let mut extra_init = Vec::new();
        let mut extra_params = Vec::new();
        let mut flat_ident = None;
        let rt = &self.rt;
        let mut extra_ident = None;
        let flat = match flatten {
            None => {
                extra_init.push(quote!(extra = ::std::default::Default::default()));
                extra_ident = Some(quote!(extra));
                let doc = self.doc_attrs(&[
                    "Members QEMU sent that these bindings don't know (a newer QEMU's), and".into(),
                    "values a member's type cannot hold: kept, and encoded again with the rest."
                        .into(),
                ]);
                quote! {
                    #doc
                    pub extra: #rt::Extra,
                }
            }
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
        };
        let default = if fields.iter().all(|f| f.optional) && extra_params.is_empty() {
            quote!(Default,)
        } else {
            quote!()
        };
        let name_tokens = quote!(#ty);
        let serde = self.struct_serde(
            &name_tokens,
            fields,
            flat_ident.as_ref(),
            extra_ident.as_ref(),
        );
        let ctor = self.constructors(&name_tokens, fields, &extra_init, &extra_params);
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, #eq_hash #default)]
            #[non_exhaustive]
            pub struct #ty {
                #(#field_tokens)*
                #flat
            }
            #serde
            #ctor
        }
    }

    pub(super) fn emit_struct_type(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let mut doc = self.definition_doc(id);
        if doc.is_empty() {
            doc.push(format!("The QAPI struct `{}`.", e.name));
        }
        // A command whose argument type has its name is that type: the
        // command's own doc (and deprecation) goes with it.
        let command = self.schema.iter().find_map(|(cid, c)| match &c.kind {
            EntityKind::Command(cmd)
                if cmd.arg_type == Some(id) && self.names.get(&cid) == self.names.get(&id) =>
            {
                Some(cid)
            }
            _ => None,
        });
        let mut dep = self.deprecated_attr(id);
        if let Some(cid) = command {
            let cdoc = self.definition_doc(cid);
            if !cdoc.is_empty() {
                doc.push(String::new());
                doc.push(format!(
                    "# The command `{}`",
                    self.schema.entities[cid].name
                ));
                doc.push(String::new());
                doc.extend(cdoc);
            }
            if dep.is_empty() {
                dep = self.deprecated_attr(cid);
            }
        }
        doc.extend(self.shared_branch_note(id));
        let fields = self.object_fields(id, None);
        let st = self.emit_struct(&self.names[&id], &doc, &fields, None);
        let named = match command {
            Some(_) => self.named_args(&self.names[&id], &fields),
            None => quote!(),
        };
        quote!(#dep #st #named)
    }
}
