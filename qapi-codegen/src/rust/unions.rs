//! Unions: the branch enum and, with base members, the struct around it.

use super::*;

impl<'s> Gen<'s> {
    /// The branch enum of a union, with its serde impls.
    pub(super) fn emit_branch_enum(
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
        let eq_hash = self.eq_hash(id);
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, #eq_hash)]
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
            #rt::qapi_union!(#name, #tag, data { #(#data)* } unit { #(#unit)* } #untagged_clause);
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
            !self.floaty.contains(&id),
        );
        let en = self.emit_branch_enum(
            id,
            bname,
            vec![format!("The branches of [`{name}`], by `{}`.", b.tag_name)],
            o,
        );
        quote!(#st #en)
    }
}
