//! Events and the enum over all of them.

use super::*;

impl<'s> Gen<'s> {
    pub(super) fn emit_event(&self, id: EntityId) -> TokenStream {
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
        let versions = self.versions_tokens(self.entity_versions(id));
        let rt = &self.rt;
        quote! {
            #args
            #rt::qapi_event!(#ty, #wire, {
                versions: #versions,
                deprecated: #dep,
                unstable: #unstable,
                since: #since,
                condition: #cond,
            });
        }
    }

    pub(super) fn emit_any_event(&self) -> TokenStream {
        let mut pairs = Vec::new();
        let mut arms = Vec::new();
        for (id, e) in self.schema.iter() {
            if !matches!(e.kind, EntityKind::Event(_)) {
                continue;
            }
            let v = self.type_ident(id);
            let wire = &e.name;
            pairs.push(quote!((#v, #wire)));
            arms.push(quote!(#wire => ::std::option::Option::Some(v.visit::<#v>()),));
        }
        let rt = &self.rt;
        quote! {
            pub use #rt::{Event, EventMeta};
            #rt::qapi_any_event! { #(#pairs),* }

            /// Calls `v` with the event type whose wire name is `name`
            /// (`None` for a name the bindings don't know).
            pub fn with_event<__V: #rt::EventVisitor>(name: &str, v: __V) -> ::std::option::Option<__V::Output> {
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
}
