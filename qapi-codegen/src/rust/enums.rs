//! Enums, with an `Unknown` fallback.

use super::*;

impl<'s> Gen<'_, 's> {
    pub(super) fn emit_enum(&self, id: EntityId) -> TokenStream {
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
            let vdoc_src = self
                .older_doc(&crate::schema::Key::value(&e.name, &m.name))
                .or(edoc);
            let mut vdoc = docs::member(vdoc_src, &m.name);
            if vdoc.is_empty() {
                vdoc.push(format!("`{wire}`"));
            }
            if let Some(c) = &m.ifcond {
                vdoc.push(String::new());
                vdoc.push(format!("Only if `{}`.", crate::schema::condition_text(c)));
            }
            let set = self
                .schema
                .versioning
                .as_ref()
                .map(|v| v.value(&e.name, &m.name));
            self.push_availability(&mut vdoc, set);
            let vdoc = self.doc_attrs(&vdoc);
            // Removed: a value the newest version's enum lacks.
            let removed = set.filter(|_| {
                self.entity_versions(id)
                    .zip(self.schema.versioning.as_ref())
                    .is_some_and(|(e, v)| e & v.all() & !(v.all() >> 1) != 0)
            });
            let vdep = self.deprecation(&m.features, vdoc_src, removed);
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
}
