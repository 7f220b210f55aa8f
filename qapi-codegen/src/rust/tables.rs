//! The schema as data, for tools (completion, help, a bridge): each
//! command's arguments and documentation, and every type's shape
//! (`COMMAND_ARGS`, `COMMAND_DOCS`, `TYPES`).

use super::*;

impl<'s> Gen<'_, 's> {
    /// `MemberInfo`s of an object type's members (base first).
    fn member_infos(&self, owner: EntityId) -> Vec<TokenStream> {
        let rt = &self.rt;
        let Some(o) = self.schema.entities[owner].as_object() else {
            return Vec::new();
        };
        o.members
            .iter()
            .map(|&r| {
                let m = self.schema.member(r);
                let name = &m.name;
                let ty = &m.type_name;
                let optional = m.optional || m.ifcond.is_some();
                let doc = docs::member(self.member_owner_doc(owner, r), name).join("\n");
                quote!(#rt::MemberInfo { name: #name, type_name: #ty, optional: #optional, doc: #doc })
            })
            .collect()
    }

    /// The shape of a type, for `TYPES` (`None` for commands, events,
    /// includes and built-ins).
    fn type_info(
        &self,
        id: EntityId,
        consts: &HashMap<EntityId, proc_macro2::Ident>,
    ) -> Option<TokenStream> {
        let rt = &self.rt;
        Some(match &self.schema.entities[id].kind {
            EntityKind::Object(o) => {
                let members = consts.get(&id)?;
                let (tag, branches) = match &o.branches {
                    Some(b) => {
                        let tag = &b.tag_name;
                        let branches = b.variants.iter().map(|v| {
                            let (value, ty) = (&v.name, &v.type_name);
                            quote!((#value, #ty))
                        });
                        (
                            quote!(::std::option::Option::Some(#tag)),
                            quote!(&[#(#branches),*]),
                        )
                    }
                    None => (quote!(::std::option::Option::None), quote!(&[])),
                };
                quote!(#rt::TypeInfo::Object { members: #members, tag: #tag, branches: #branches })
            }
            EntityKind::Enum { members, .. } => {
                let values = members.iter().map(|m| &m.name);
                quote!(#rt::TypeInfo::Enum { values: &[#(#values),*] })
            }
            EntityKind::Alternate { variants } => {
                let types = variants.iter().map(|v| &v.type_name);
                quote!(#rt::TypeInfo::Alternate { branches: &[#(#types),*] })
            }
            EntityKind::Array { element_name, .. } => {
                quote!(#rt::TypeInfo::Array { element: #element_name })
            }
            _ => return None,
        })
    }

    /// The private consts holding each object type's `MemberInfo`s,
    /// which `TYPES` and `COMMAND_ARGS` share: named after the type
    /// (`BLOCKDEV_OPTIONS`, `Q_OBJ_DEVICE_DEL_ARG`), so an edit elsewhere
    /// in the schema renames none of them.
    fn member_consts(&self) -> Vec<(EntityId, proc_macro2::Ident)> {
        let mut scope = Scope::with_reserved(&[
            "COMMAND_ARGS",
            "COMMAND_DOCS",
            "TYPES",
            "PRESENCE",
            "OPEN_COMMANDS",
        ]);
        self.schema
            .iter()
            .filter(|(_, e)| e.as_object().is_some())
            .map(|(id, e)| (id, ident(&scope.unique(ident::constant(&e.name)))))
            .collect()
    }

    /// `tables.rs`: `COMMAND_ARGS`, `COMMAND_DOCS`, `TYPES` and `PRESENCE`.
    pub(super) fn emit_tables(&self) -> TokenStream {
        let rt = &self.rt;
        let consts = self.member_consts();
        let member_consts = consts.iter().map(|(id, name)| {
            let members = self.member_infos(*id);
            quote!(const #name: &[#rt::MemberInfo] = &[#(#members),*];)
        });
        let consts: HashMap<EntityId, proc_macro2::Ident> = consts.iter().cloned().collect();
        let commands = || {
            self.schema.iter().filter_map(|(id, e)| match &e.kind {
                EntityKind::Command(c) => Some((id, e, c)),
                _ => None,
            })
        };
        let args = commands().map(|(_, e, c)| {
            let wire = &e.name;
            match c.arg_type {
                Some(a) if consts.contains_key(&a) => {
                    let members = &consts[&a];
                    quote!((#wire, #members))
                }
                _ => quote!((#wire, &[])),
            }
        });
        let command_docs = commands().map(|(id, e, _)| {
            let wire = &e.name;
            let doc = self.definition_doc(id).join("\n");
            quote!((#wire, #doc))
        });
        let types = self.schema.iter().filter_map(|(id, e)| {
            let info = self.type_info(id, &consts)?;
            let name = &e.name;
            Some(quote!((#name, #info)))
        });
        let open = commands()
            .filter(|(_, _, c)| !c.generate)
            .map(|(_, e, _)| e.name.as_str());
        let presence = self
            .presence_entries()
            .into_iter()
            .map(|(key, versions)| quote!((#key, &[#(#versions),*])));
        quote! {
            #(#member_consts)*

            /// Each command's arguments (wire name, QAPI type, optional,
            /// description), in schema order: for completion and help in
            /// tools. A union's branch members are in [`TYPES`], under
            /// the argument type `CommandMeta::arg_type` names.
            pub static COMMAND_ARGS: &[(&str, &[#rt::MemberInfo])] = &[#(#args),*];

            /// Each command's documentation from the schema (Markdown, as on
            /// its type), in schema order: for `help` in tools.
            pub static COMMAND_DOCS: &[(&str, &str)] = &[#(#command_docs),*];

            /// Every type's shape by its QAPI name (`BlockdevOptions`,
            /// `MirrorSyncMode`, implicit `q_obj_device_del-arg`, arrays
            /// `strList`), as `MemberInfo::type_name` and
            /// `CommandMeta::arg_type` name them; built-ins (`str`, `int`)
            /// are not listed. For completion and help of nested
            /// arguments and values in tools.
            pub static TYPES: &[(&str, #rt::TypeInfo)] = &[#(#types),*];

            /// What only some of the QEMU versions covered have, sorted by
            /// key: a type, command or event (`name`), a member
            /// (`Type.member`), an enum value (`Enum=value`) or a branch
            /// (`Union|value`), by their newest names, and the versions
            /// that have it. Everything not listed is in every version
            /// that has its owner. For tools that check a message against
            /// one version's schema (`qmp_client::testing`).
            pub static PRESENCE: &[(&str, &[&str])] = &[#(#presence),*];

            /// Commands QEMU does not check against their schema
            /// (`'gen': false`, as `device_add`): beside their declared
            /// arguments they take any others (a device's properties).
            pub static OPEN_COMMANDS: &[&str] = &[#(#open),*];
        }
    }

    /// [`emit_tables`]'s `PRESENCE`: each key some versions lack, sorted,
    /// with the versions that have it.
    fn presence_entries(&self) -> Vec<(String, Vec<String>)> {
        let Some(v) = &self.schema.versioning else {
            return Vec::new();
        };
        let mut out: Vec<(String, Vec<String>)> = v
            .presence
            .iter()
            .filter(|(_, set)| **set & v.all() != v.all())
            .map(|(k, set)| {
                let names = v.names(*set).into_iter().map(str::to_string).collect();
                (k.to_string(), names)
            })
            .collect();
        out.sort();
        out
    }
}
