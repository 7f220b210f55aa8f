//! Alternates: an enum told apart by JSON type.

use super::*;

impl<'s> Gen<'_, 's> {
    pub(super) fn emit_alternate(&self, id: EntityId) -> TokenStream {
        let (serde, serde_json) = self.serde_paths();
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
        let mut froms: Vec<TokenStream> = Vec::new();
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
                    quote!(#serde_json::Value::Null => ::std::result::Result::Ok(Self::#v),),
                ));
                continue;
            }
            let mut ty = self.rust_type(m.ty);
            if self.boxed.contains(&(id, m.ty)) {
                ty = quote!(::std::boxed::Box<#ty>);
            }
            vs.push(quote!(#vdoc #v(#ty),));
            ser.push(quote!(Self::#v(x) => #serde::Serialize::serialize(x, s),));
            froms.extend(self.alternate_froms(id, &v, m.ty));
            let conv = quote!(#serde_json::from_value(v).map(Self::#v));
            let arm = match (json, t.name.as_str()) {
                ("string", _) => (1, quote!(v @ #serde_json::Value::String(_) => #conv,)),
                ("boolean", _) => (2, quote!(v @ #serde_json::Value::Bool(_) => #conv,)),
                ("number", "number") => (4, quote!(v @ #serde_json::Value::Number(_) => #conv,)),
                ("number", _) | ("int", _) => (
                    3,
                    quote!(v @ #serde_json::Value::Number(_) if v.is_i64() || v.is_u64() => #conv,),
                ),
                ("array", _) => (5, quote!(v @ #serde_json::Value::Array(_) => #conv,)),
                ("object", _) => (6, quote!(v @ #serde_json::Value::Object(_) => #conv,)),
                _ => (7, quote!(v => #conv,)),
            };
            arms.push(arm);
        }
        arms.sort_by_key(|(k, _)| *k);
        let arms: Vec<TokenStream> = arms.into_iter().map(|(_, t)| t).collect();
        let expected = format!("a value of alternate {}", e.name);
        let eq_hash = self.eq_hash();
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, #eq_hash)]
            pub enum #name {
                #(#vs)*
            }
            #(#froms)*
            impl #serde::Serialize for #name {
                fn serialize<__S: #serde::Serializer>(&self, s: __S) -> ::std::result::Result<__S::Ok, __S::Error> {
                    match self {
                        #(#ser)*
                    }
                }
            }
            impl<'de> #serde::Deserialize<'de> for #name {
                fn deserialize<__D: #serde::Deserializer<'de>>(d: __D) -> ::std::result::Result<Self, __D::Error> {
                    let v = <#serde_json::Value as #serde::Deserialize>::deserialize(d)?;
                    let r: ::std::result::Result<Self, #serde_json::Error> = match v {
                        #(#arms)*
                        #[allow(unreachable_patterns, reason = "not every alternate covers every JSON type")]
                        other => ::std::result::Result::Err(#rt::__private::unexpected_alternate(&other, #expected)),
                    };
                    r.map_err(<__D::Error as #serde::de::Error>::custom)
                }
            }
        }
    }

    /// `From` impls of alternate `id` for its branch `v` of type `t`: the
    /// branch's type (a string also from `&str`, a number also from
    /// `f64`), and, for a union that
    /// converts from its branches' structs, each of those.
    fn alternate_froms(
        &self,
        id: EntityId,
        v: &proc_macro2::Ident,
        t: EntityId,
    ) -> Vec<TokenStream> {
        let name = self.type_ident(id);
        let boxed = self.boxed.contains(&(id, t));
        let wrap = |x: TokenStream| {
            if boxed {
                quote!(::std::boxed::Box::new(#x))
            } else {
                x
            }
        };
        let ty = self.rust_type(t);
        let direct = wrap(quote!(x));
        let mut out = vec![quote! {
            impl ::std::convert::From<#ty> for #name {
                fn from(x: #ty) -> Self {
                    Self::#v(#direct)
                }
            }
        }];
        let e = &self.schema.entities[t];
        if matches!(
            e.kind,
            EntityKind::Builtin {
                json_type: "string"
            }
        ) {
            let conv = wrap(quote!(::std::string::ToString::to_string(x)));
            out.push(quote! {
                impl ::std::convert::From<&str> for #name {
                    fn from(x: &str) -> Self {
                        Self::#v(#conv)
                    }
                }
            });
        }
        if matches!(
            e.kind,
            EntityKind::Builtin {
                json_type: "number"
            }
        ) {
            // A `number` is `rt::Number`; callers have an `f64`.
            let conv = wrap(quote!(#ty::from(x)));
            out.push(quote! {
                impl ::std::convert::From<f64> for #name {
                    fn from(x: f64) -> Self {
                        Self::#v(#conv)
                    }
                }
            });
        }
        if self.names.contains_key(&t) && self.union_converts_from_branches(t) {
            for b in self.unique_branch_types(t) {
                let bty = self.rust_type(b);
                let conv = wrap(quote!(#ty::from(x)));
                out.push(quote! {
                    impl ::std::convert::From<#bty> for #name {
                        fn from(x: #bty) -> Self {
                            Self::#v(#conv)
                        }
                    }
                });
            }
        }
        out
    }
}
