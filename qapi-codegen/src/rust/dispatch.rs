//! Name-based dispatch (`dispatch.rs` of the output): `with_command` and
//! `with_event`, a tool's way from a wire name to the typed command or
//! event.

use super::*;

impl<'s> Gen<'_, 's> {
    /// `dispatch.rs`: `with_command` and `with_event`.
    pub(super) fn emit_dispatch(&self) -> TokenStream {
        let rt = &self.rt;
        let arms = |kind: &str| -> Vec<TokenStream> {
            self.schema
                .iter()
                .filter(|(_, e)| e.meta() == kind)
                .map(|(id, e)| {
                    let ty = self.type_ident(id);
                    let wire = &e.name;
                    quote!(#wire => ::std::option::Option::Some(v.visit::<#ty>()),)
                })
                .collect()
        };
        let (commands, events) = (arms("command"), arms("event"));
        let proto = match self.protocol {
            Protocol::Qmp => quote!(#rt::Qmp),
            Protocol::Qga => quote!(#rt::Qga),
        };
        quote! {
            #[allow(unused_imports, reason = "a schema without commands or events uses none")]
            use super::*;

            /// Calls `v` with the command type whose wire name is `name`
            /// (`None` for a name the bindings don't know): a tool's way from
            /// a name to the typed command, its arguments and its reply.
            pub fn with_command<__V: #rt::CommandVisitor<#proto>>(name: &str, v: __V) -> ::std::option::Option<__V::Output> {
                match name {
                    #(#commands)*
                    _ => {
                        let _ = v;
                        ::std::option::Option::None
                    }
                }
            }

            /// Calls `v` with the event type whose wire name is `name`
            /// (`None` for a name the bindings don't know).
            pub fn with_event<__V: #rt::EventVisitor>(name: &str, v: __V) -> ::std::option::Option<__V::Output> {
                match name {
                    #(#events)*
                    _ => {
                        let _ = v;
                        ::std::option::Option::None
                    }
                }
            }
        }
    }
}
