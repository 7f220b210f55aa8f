//! Events and the enum over all of them.

use super::*;

impl<'s> Gen<'_, 's> {
    pub(super) fn emit_event(&self, id: EntityId) -> TokenStream {
        let e = &self.schema.entities[id];
        let EntityKind::Event(ev) = &e.kind else {
            return quote!();
        };
        let args = self.emit_args(id, ev.arg_type, false);
        let ty = ident(&self.names[&id]);
        let wire = &e.name;
        let versions = self.meta_versions(id);
        let flags = self.meta_flags(id);
        let boxed = if self.large_events.contains(&id) {
            quote!(boxed: true,)
        } else {
            quote!()
        };
        let rt = &self.rt;
        quote! {
            #args
            #rt::qapi_event!(#ty, #wire, { #versions #flags #boxed });
        }
    }

    pub(super) fn emit_any_event(&self) -> TokenStream {
        let pairs = self.schema.iter().filter_map(|(id, e)| {
            if !matches!(e.kind, EntityKind::Event(_)) {
                return None;
            }
            let v = self.type_ident(id);
            let wire = &e.name;
            if self.large_events.contains(&id) {
                Some(quote!((#v, #wire, true)))
            } else {
                Some(quote!((#v, #wire)))
            }
        });
        let rt = &self.rt;
        quote! {
            pub use #rt::{Event, EventMeta};
            #rt::qapi_any_event! { #(#pairs),* }
        }
    }
}
