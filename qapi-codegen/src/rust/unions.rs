//! Unions: the branch enum and, with base members, the struct around it.

use super::*;

impl<'s> Gen<'_, 's> {
    /// The branch enum of a union, with its serde impls.
    pub(super) fn emit_branch_enum(
        &self,
        id: EntityId,
        enum_name: &str,
        doc: Vec<String>,
        o: &ObjectType,
    ) -> TokenStream {
        let rt = &self.rt;
        let (_, serde_json) = self.serde_paths();
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
        let mut froms: Vec<(proc_macro2::Ident, EntityId, bool, String)> = Vec::new();
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
                vdoc.push(format!("Only if `{}`.", crate::schema::condition_text(c)));
            }
            let vdoc = self.doc_attrs(&vdoc);
            let has_data = branch.is_some_and(|m| self.branch_has_data(m.ty));
            match branch {
                Some(m) if has_data => {
                    let mut ty = self.rust_type(m.ty);
                    let boxed = self.is_boxed(id, m.ty, true);
                    if boxed {
                        ty = quote!(::std::boxed::Box<#ty>);
                    }
                    variants.push(quote!(#vdoc #v(#ty),));
                    data.push(quote!(#v = #value,));
                    froms.push((v.clone(), m.ty, boxed, value.clone()));
                }
                _ => {
                    variants.push(quote!(#vdoc #v,));
                    unit.push(quote!(#v = #value,));
                }
            }
        }
        // What older QEMU sends without the discriminator.
        let untagged = self.schema.versioning.as_ref().and_then(|v| {
            let (case, set) = v.untagged.get(&self.schema.entities[id].name)?;
            let m = b.variants.iter().find(|m| m.name == *case)?;
            Some((case.clone(), m.ty, v.names(*set).join(", ")))
        });
        let mut untagged_clause = quote!();
        if let Some((case, ty, versions)) = untagged {
            let v = ident(&scope.unique("Untagged".into()));
            let t = self.rust_type(ty);
            let vdoc = self.doc_attrs(&[format!(
                "What QEMU {versions} send: the members of branch `{case}`, without `{tag}` (re-encoded without it too)."
            )]);
            variants.push(quote!(#vdoc #v(#t),));
            untagged_clause = quote!(untagged #v = #case);
        }
        // A branch's struct converts into the enum (boxed where it is), when
        // no other branch has the same type.
        let from_impls: Vec<TokenStream> = froms
            .iter()
            .filter(|(_, t, _, _)| froms.iter().filter(|(_, u, _, _)| u == t).count() == 1)
            .map(|(v, t, boxed, _)| {
                let ty = self.rust_type(*t);
                let wrap = if *boxed {
                    quote!(::std::boxed::Box::new(x))
                } else {
                    quote!(x)
                };
                quote! {
                    impl ::std::convert::From<#ty> for #name {
                        fn from(x: #ty) -> Self {
                            Self::#v(#wrap)
                        }
                    }
                }
            })
            .collect();
        // And one constructor per branch, named after its case, for
        // branches that share a type too (boxing never shows).
        let ctors: Vec<TokenStream> = self
            .branch_constructors(&froms)
            .into_iter()
            .map(|(f, v, t, boxed, case)| {
                let ty = self.rust_type(t);
                let wrap = if boxed {
                    quote!(::std::boxed::Box::new(x.into()))
                } else {
                    quote!(x.into())
                };
                let doc = format!(" The branch `{tag}` = `{case}`.");
                quote! {
                    #[doc = #doc]
                    pub fn #f(x: impl ::std::convert::Into<#ty>) -> Self {
                        Self::#v(#wrap)
                    }
                }
            })
            .collect();
        let from_impls = quote! {
            #(#from_impls)*
            #[allow(deprecated, reason = "deprecated branches can be built too")]
            impl #name {
                #(#ctors)*
            }
        };
        let eq_hash = self.eq_hash();
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, #eq_hash)]
            #[non_exhaustive]
            pub enum #name {
                #(#variants)*
                /// A branch this version of the bindings doesn't know (sent by
                /// a newer QEMU), or one without members that came with some:
                /// the discriminator's value and the other members.
                Unknown {
                    /// The discriminator's value.
                    tag: ::std::string::String,
                    /// The branch's members (and any unknown base members).
                    members: #serde_json::Map<::std::string::String, #serde_json::Value>,
                },
            }
            #rt::qapi_union!(#name, #tag, data { #(#data)* } unit { #(#unit)* } #untagged_clause);
            #from_impls
        }
    }

    pub(super) fn emit_union(&self, id: EntityId) -> TokenStream {
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
        // When the branch is all `new` takes, the union converts from it
        // and from each branch's struct.
        let froms = if self.union_converts_from_branches(id) {
            let union = ident(name);
            let types = self.unique_branch_types(id);
            let by_type = types.iter().map(|t| {
                let ty = self.rust_type(*t);
                quote! {
                    impl ::std::convert::From<#ty> for #union {
                        fn from(x: #ty) -> Self {
                            Self::new(#bty::from(x))
                        }
                    }
                }
            });
            let ctors = self.union_branch_constructors(id, &bty);
            quote! {
                impl ::std::convert::From<#bty> for #union {
                    fn from(branch: #bty) -> Self {
                        Self::new(branch)
                    }
                }
                #(#by_type)*
                #[allow(deprecated, reason = "deprecated branches can be built too")]
                impl #union {
                    #ctors
                }
            }
        } else {
            quote!()
        };
        let en = self.emit_branch_enum(
            id,
            bname,
            vec![format!("The branches of [`{name}`], by `{}`.", b.tag_name)],
            o,
        );
        quote!(#st #en #froms)
    }

    /// Constructor names for branch-enum variants: (method, variant, type,
    /// boxed, case), the method the case's name in snake case.
    fn branch_constructors(
        &self,
        data: &[(proc_macro2::Ident, EntityId, bool, String)],
    ) -> Vec<(
        proc_macro2::Ident,
        proc_macro2::Ident,
        EntityId,
        bool,
        String,
    )> {
        // Named in case order, so that the union's constructors (made
        // from its branches, in another order) get the same names.
        let mut sorted: Vec<&(proc_macro2::Ident, EntityId, bool, String)> = data.iter().collect();
        sorted.sort_by(|a, b| a.3.cmp(&b.3));
        let mut scope = Scope::with_reserved(&["tag", "new", "from", "into", "clone"]);
        sorted
            .into_iter()
            .map(|(v, t, boxed, case)| {
                let f = ident(&scope.unique(field(case)));
                (f, v.clone(), *t, *boxed, case.clone())
            })
            .collect()
    }

    /// The union's own constructors per branch (`BlockdevOptions::file(..)`)
    /// when `new` takes only the branch: each builds the branch enum's.
    fn union_branch_constructors(&self, id: EntityId, bty: &proc_macro2::Ident) -> TokenStream {
        let Some(b) = self.schema.entities[id]
            .as_object()
            .and_then(|o| o.branches.as_ref())
        else {
            return quote!();
        };
        let with_data = self.data_branches(b);
        let ctors = self
            .branch_constructors(&with_data)
            .into_iter()
            .map(|(f, _, t, _, case)| {
                let ty = self.rust_type(t);
                let doc = format!(" With the branch `{}` = `{case}`.", b.tag_name);
                quote! {
                    #[doc = #doc]
                    pub fn #f(x: impl ::std::convert::Into<#ty>) -> Self {
                        Self::new(#bty::#f(x))
                    }
                }
            });
        quote!(#(#ctors)*)
    }

    /// The branches of `b` that hold members, as [`Self::branch_constructors`]
    /// takes them (variant unused, not boxed, case).
    fn data_branches(
        &self,
        b: &crate::schema::Branches,
    ) -> Vec<(proc_macro2::Ident, EntityId, bool, String)> {
        b.variants
            .iter()
            .filter(|m| self.branch_has_data(m.ty))
            .map(|m| (ident("unused"), m.ty, false, m.name.clone()))
            .collect()
    }

    /// Whether a branch of type `t` holds members (else it is a unit
    /// variant).
    fn branch_has_data(&self, t: EntityId) -> bool {
        let e = &self.schema.entities[t];
        !(e.name == "q_empty"
            || e.as_object()
                .is_some_and(|o| o.members.is_empty() && o.branches.is_none() && e.is_implicit()))
    }

    /// The types of union `id`'s branches that hold members, each used by
    /// one branch only (the branch enum converts from each of them).
    pub(super) fn unique_branch_types(&self, id: EntityId) -> Vec<EntityId> {
        let Some(b) = self.schema.entities[id]
            .as_object()
            .and_then(|o| o.branches.as_ref())
        else {
            return Vec::new();
        };
        let with_data: Vec<EntityId> = b
            .variants
            .iter()
            .map(|m| m.ty)
            .filter(|&t| self.branch_has_data(t))
            .collect();
        with_data
            .iter()
            .copied()
            .filter(|t| with_data.iter().filter(|u| *u == t).count() == 1)
            .collect()
    }

    /// Doc lines for struct `id` where several branches of one union share
    /// it, so that no `From` converts it into that union: which branches,
    /// and the constructor that builds each (`BlockdevOptions::file(..)`).
    pub(super) fn shared_branch_note(&self, id: EntityId) -> Vec<String> {
        let mut doc = Vec::new();
        for (uid, u) in self.schema.iter() {
            let Some(b) = u.as_object().and_then(|o| o.branches.as_ref()) else {
                continue;
            };
            if !self.names.contains_key(&uid)
                || b.variants.iter().filter(|m| m.ty == id).count() < 2
            {
                continue;
            }
            let with_data = self.data_branches(b);
            let owner = if self.union_is_enum(uid) || !self.union_converts_from_branches(uid) {
                self.branch_names.get(&uid).unwrap_or(&self.names[&uid])
            } else {
                &self.names[&uid]
            };
            let ctors: Vec<String> = self
                .branch_constructors(&with_data)
                .into_iter()
                .filter(|(_, _, t, _, _)| *t == id)
                .map(|(f, _, _, _, case)| format!("`{owner}::{f}(..)` (`{case}`)"))
                .collect();
            doc.push(String::new());
            doc.push(format!(
                "Several branches of [`{}`] take this type, so it does not convert `From` into it \
                 (nor into what takes one, such as an alternate): pick the branch with {}.",
                self.names[&uid],
                ctors.join(", ")
            ));
        }
        doc
    }

    /// Whether a value of union `id` can be made `From` a struct of one of
    /// its branches: the union is the branch enum, or `new` takes only the
    /// branch.
    pub(super) fn union_converts_from_branches(&self, id: EntityId) -> bool {
        let Some(o) = self.schema.entities[id].as_object() else {
            return false;
        };
        let Some(b) = &o.branches else {
            return false;
        };
        self.union_is_enum(id)
            || o.members
                .iter()
                .map(|&r| self.schema.member(r))
                .filter(|m| m.name != b.tag_name)
                .all(Plan::member_optional)
    }
}
