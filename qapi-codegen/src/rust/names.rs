//! Rust names for every emitted item, and Rust types for schema types.

use super::*;

impl<'s> Plan<'s> {
    pub(super) fn assign_names(&mut self) {
        let mut scope = Scope::with_reserved(&[
            "AnyEvent",
            "Event",
            "EventMeta",
            // `AnyEvent`'s own variants: an event's type is a variant too.
            "Unknown",
            "Malformed",
            "IntoTransactionAction",
            "COMMANDS",
            "COMMAND_ARGS",
            "COMMAND_DOCS",
            "TYPES",
            "EVENTS",
            "VERSIONS",
            "Command",
            "CommandMeta",
            "Timestamp",
            "rt",
        ]);
        for (id, e) in self.schema.iter() {
            if self.emitted_type(id) {
                let n = scope.unique(ident::type_name(&e.name));
                self.names.insert(id, n);
            }
        }
        for (id, e) in self.schema.iter() {
            if e.as_object().is_some_and(|o| o.branches.is_some())
                && self.names.contains_key(&id)
                && !self.union_is_enum(id)
            {
                let n = scope.unique(format!("{}Branch", self.names[&id]));
                self.branch_names.insert(id, n);
            }
        }
        let type_ids: HashMap<String, EntityId> =
            self.names.iter().map(|(id, n)| (n.clone(), *id)).collect();
        // Commands first, so that on a clash (`stop` and `STOP`) the
        // command keeps the plain name and the event gets `Event`.
        let commands = self
            .schema
            .iter()
            .filter(|(_, e)| matches!(e.kind, EntityKind::Command(_)));
        let events = self
            .schema
            .iter()
            .filter(|(_, e)| matches!(e.kind, EntityKind::Event(_)));
        let ordered: Vec<(EntityId, &crate::schema::Entity)> = commands.chain(events).collect();
        for (id, e) in ordered {
            let (arg, suffix) = match &e.kind {
                EntityKind::Command(c) => (c.arg_type, "Command"),
                EntityKind::Event(ev) => (ev.arg_type, "Event"),
                _ => continue,
            };
            let want = ident::type_name(&e.name);
            // A command whose (named) argument type has its own name is
            // that type: `block-dirty-bitmap-add` takes
            // `BlockDirtyBitmapAdd`.
            if suffix == "Command"
                && let (Some(&t), Some(a)) = (type_ids.get(&want), arg)
                && t == a
                && !self.is_command_type_taken(a)
            {
                self.names.insert(id, want);
                continue;
            }
            let n = scope.unique(want.clone());
            let n = if n == want {
                n
            } else {
                scope.unique(format!("{want}{suffix}"))
            };
            self.names.insert(id, n);
        }
        // Older names of renamed types, where the name is free.
        if let Some(v) = &self.schema.versioning {
            for a in &v.aliases {
                let Some(target) = self.schema.lookup(&a.new) else {
                    continue;
                };
                if !self.names.contains_key(&target) || self.aliases.iter().any(|x| x.0 == a.old) {
                    continue;
                }
                let want = ident::type_name(&a.old);
                if scope.unique(want.clone()) == want {
                    let set = v
                        .aliases
                        .iter()
                        .filter(|b| b.old == a.old)
                        .fold(0, |acc, b| acc | b.versions);
                    let note = format!(
                        "called `{}` in QEMU {}; renamed `{}`",
                        a.old,
                        v.names(set).join(", "),
                        a.new
                    );
                    self.aliases.push((a.old.clone(), want, target, note));
                }
            }
        }
    }

    /// Whether type `a` is already the type of another command.
    pub(super) fn is_command_type_taken(&self, a: EntityId) -> bool {
        let name = &self.names[&a];
        self.schema.iter().any(|(id, e)| {
            matches!(e.kind, EntityKind::Command(_)) && self.names.get(&id) == Some(name)
        })
    }

    pub(super) fn type_ident(&self, id: EntityId) -> TokenStream {
        let i = ident(&self.names[&id]);
        quote!(#i)
    }
}

impl<'s> Gen<'_, 's> {
    /// The Rust type of a reference to type `id`.
    pub(super) fn rust_type(&self, id: EntityId) -> TokenStream {
        let (_, serde_json) = self.serde_paths();
        let e = &self.schema.entities[id];
        match &e.kind {
            EntityKind::Builtin { .. } => match e.name.as_str() {
                "str" => quote!(::std::string::String),
                "int" | "int64" => quote!(i64),
                "int8" => quote!(i8),
                "int16" => quote!(i16),
                "int32" => quote!(i32),
                "uint8" => quote!(u8),
                "uint16" => quote!(u16),
                "uint32" => quote!(u32),
                "uint64" | "size" => quote!(u64),
                "number" => {
                    let rt = self.rt();
                    quote!(#rt::Number)
                }
                "bool" => quote!(bool),
                "null" => quote!(()),
                _ => quote!(#serde_json::Value),
            },
            EntityKind::Array { element, .. } => {
                let t = self.rust_type(*element);
                quote!(::std::vec::Vec<#t>)
            }
            _ if self.names.contains_key(&id) => self.type_ident(id),
            // An implicit object type used as a value (never in QEMU's
            // schemas): treat it as free-form.
            _ => quote!(#serde_json::Map<::std::string::String, #serde_json::Value>),
        }
    }
}
