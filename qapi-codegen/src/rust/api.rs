//! The public Rust API of generated code, read back from the generated
//! files ([`Api::of_files`]), and what changes between two such APIs
//! ([`Api::changes`]): added, deprecated, compatible or broken.
//!
//! It reads the files, not the generator's model, so that the committed
//! code (made by whatever generator was current then) and fresh code are
//! read by the same rules, and so that every item an emitter writes is
//! seen, including hand-spelled impls. The runtime's macros hide the
//! constructors and setters (`qapi_builder!`), the `Command` and
//! `Event` impls (`qapi_command!`, `qapi_event!`) and `AnyEvent`'s
//! variants (`qapi_any_event!`); their input is read here. One item is
//! one line: a key (`MigrateSetParameters::with_tls_creds`) and its
//! signature (`(StrOrNull)`).

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Fields, Item, Token, Visibility};

/// One public item: its signature and whether it is deprecated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiItem {
    /// What callers depend on: a field's type, a function's parameter
    /// types, a variant's payload, a command's wire name and reply.
    pub sig: String,
    /// Marked `#[deprecated]`.
    pub deprecated: bool,
}

/// The public API of a set of generated files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Api {
    /// Item key → item. Keys: `Type` (the type itself), `Type.field`,
    /// `Type::Variant`, `Type::function`, `Type derive Trait`,
    /// `impl Trait for Type`, `module::Name` (a re-export).
    pub items: BTreeMap<String, ApiItem>,
    /// Rust type name → the QAPI name it was generated from (its
    /// `#[doc(alias)]`), to name the schema change behind an API change.
    pub qapi_names: BTreeMap<String, String>,
}

/// How an item changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// A caller's code may stop compiling (an item removed, a type or
    /// signature changed).
    Broken,
    /// Now `#[deprecated]`: a caller gets a warning.
    Deprecated,
    /// The signature changed, but what it accepted it still accepts (a
    /// parameter's new type converts `From` the old one).
    Compatible,
    /// New.
    Added,
}

impl ChangeKind {
    /// The word a report uses.
    pub fn word(self) -> &'static str {
        match self {
            ChangeKind::Broken => "broken",
            ChangeKind::Deprecated => "deprecated",
            ChangeKind::Compatible => "compatible",
            ChangeKind::Added => "added",
        }
    }
}

/// One change between two APIs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiChange {
    /// How.
    pub kind: ChangeKind,
    /// The item's key (see [`Api::items`]).
    pub key: String,
    /// Its signature before, if it existed.
    pub old: Option<String>,
    /// Its signature after, if it exists.
    pub new: Option<String>,
}

impl ApiChange {
    /// The Rust type the item belongs to (the key's first word).
    pub fn type_name(&self) -> &str {
        let k = self.key.strip_prefix("impl ").unwrap_or(&self.key);
        let k = k.rsplit(" for ").next().unwrap_or(k);
        let end = k.find(['.', ':', ' ', '<']).unwrap_or(k.len());
        &k[..end]
    }

    /// One Markdown line: the key, and the signature change.
    pub fn to_markdown(&self) -> String {
        match (&self.old, &self.new) {
            (Some(o), Some(n)) if o != n => format!("`{}`: `{o}` → `{n}`", self.key),
            (Some(o), None) => format!("`{}` (`{o}`) removed", self.key),
            (_, Some(n)) if n.is_empty() => format!("`{}`", self.key),
            (_, Some(n)) => format!("`{}` `{n}`", self.key),
            _ => format!("`{}`", self.key),
        }
    }
}

impl Api {
    /// Adds the items of generated tokens (one or more items).
    pub(crate) fn read_tokens(&mut self, tokens: TokenStream) -> crate::Result<()> {
        let file: syn::File = syn::parse2(tokens)
            .map_err(|e| crate::Error::Generate(format!("generated tokens are not Rust: {e}")))?;
        self.read_items(&file.items, "");
        Ok(())
    }

    /// Adds `other`'s items.
    fn extend(&mut self, other: Api) {
        self.items.extend(other.items);
        self.qapi_names.extend(other.qapi_names);
    }

    /// Reads an API on as many threads as there are cores (at most 8):
    /// `part(t, threads, api)` adds the items of share `t` of `threads`
    /// to `api`; the shares are merged.
    pub(crate) fn read_in_parallel(
        part: impl Fn(usize, usize, &mut Api) -> crate::Result<()> + Sync,
    ) -> crate::Result<Api> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let part = &part;
        let parts: Vec<crate::Result<Api>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        let mut api = Api::default();
                        part(t, threads, &mut api)?;
                        Ok(api)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(crate::Error::Generate(
                            "an API reader thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        let mut api = Api::default();
        for p in parts {
            api.extend(p?);
        }
        Ok(api)
    }

    /// Reads the public API of generated files (path, contents): every
    /// `pub` item, field, variant and function, the `qapi_builder!`,
    /// `qapi_command!` and `qapi_event!` inputs, trait impls and
    /// re-exports. A file that is not Rust is an error naming it.
    pub fn of_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> crate::Result<Api> {
        // `tables.rs` is the schema as data: a few statics of the
        // runtime's types, and most of the text.
        let files: Vec<(&str, &str)> = files
            .into_iter()
            .filter(|(p, _)| p.ends_with(".rs") && !p.ends_with("tables.rs"))
            .collect();
        Api::read_in_parallel(|t, threads, api| {
            for (path, text) in files.iter().skip(t).step_by(threads) {
                let file = syn::parse_file(text)
                    .map_err(|e| crate::Error::Generate(format!("{path}: not Rust: {e}")))?;
                api.read_items(&file.items, "");
            }
            Ok(())
        })
    }

    fn put(&mut self, key: String, sig: String, deprecated: bool) {
        self.items.insert(key, ApiItem { sig, deprecated });
    }

    fn read_items(&mut self, items: &[Item], prefix: &str) {
        for item in items {
            match item {
                Item::Struct(s) if is_pub(&s.vis) => {
                    let name = format!("{prefix}{}", s.ident);
                    let dep = deprecated(&s.attrs);
                    self.alias(&name, &s.attrs);
                    self.derives(&name, &s.attrs);
                    let shape = match &s.fields {
                        Fields::Named(f) => {
                            for x in &f.named {
                                if let (Some(id), true) = (&x.ident, is_pub(&x.vis)) {
                                    self.put(
                                        format!("{name}.{id}"),
                                        ty(&x.ty),
                                        dep || deprecated(&x.attrs),
                                    );
                                }
                            }
                            "struct".to_string()
                        }
                        Fields::Unnamed(f) => {
                            let tys: Vec<String> = f.unnamed.iter().map(|x| ty(&x.ty)).collect();
                            format!("struct({})", tys.join(", "))
                        }
                        Fields::Unit => "struct;".to_string(),
                    };
                    let shape = if non_exhaustive(&s.attrs) {
                        format!("#[non_exhaustive] {shape}")
                    } else {
                        shape
                    };
                    self.put(name, shape, dep);
                }
                Item::Enum(e) if is_pub(&e.vis) => {
                    let name = format!("{prefix}{}", e.ident);
                    let dep = deprecated(&e.attrs);
                    self.alias(&name, &e.attrs);
                    self.derives(&name, &e.attrs);
                    for v in &e.variants {
                        let payload = match &v.fields {
                            Fields::Named(f) => format!(
                                "{{ {} }}",
                                f.named
                                    .iter()
                                    .map(|x| format!(
                                        "{}: {}",
                                        x.ident
                                            .as_ref()
                                            .map(ToString::to_string)
                                            .unwrap_or_default(),
                                        ty(&x.ty)
                                    ))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            Fields::Unnamed(f) => format!(
                                "({})",
                                f.unnamed
                                    .iter()
                                    .map(|x| ty(&x.ty))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            Fields::Unit => String::new(),
                        };
                        self.put(
                            format!("{name}::{}", v.ident),
                            payload,
                            dep || deprecated(&v.attrs),
                        );
                    }
                    let shape = if non_exhaustive(&e.attrs) {
                        "#[non_exhaustive] enum"
                    } else {
                        "enum"
                    };
                    self.put(name, shape.to_string(), dep);
                }
                Item::Type(t) if is_pub(&t.vis) => {
                    let name = format!("{prefix}{}", t.ident);
                    self.put(name, format!("type = {}", ty(&t.ty)), deprecated(&t.attrs));
                }
                Item::Trait(t) if is_pub(&t.vis) => {
                    let name = format!("{prefix}{}", t.ident);
                    self.put(name, "trait".into(), deprecated(&t.attrs));
                }
                Item::Static(s) if is_pub(&s.vis) => {
                    let name = format!("{prefix}{}", s.ident);
                    self.put(name, format!("static: {}", ty(&s.ty)), false);
                }
                Item::Fn(f) if is_pub(&f.vis) => {
                    let name = format!("{prefix}{}", f.sig.ident);
                    self.put(name, signature(&f.sig), deprecated(&f.attrs));
                }
                Item::Impl(i) => self.read_impl(i, prefix),
                Item::Macro(m) => self.read_macro(m),
                Item::Mod(m) if is_pub(&m.vis) => {
                    if let Some((_, inner)) = &m.content {
                        let p = format!("{prefix}{}::", m.ident);
                        self.read_items(inner, &p);
                    }
                }
                Item::Use(u) if is_pub(&u.vis) && !prefix.is_empty() => {
                    let mut out = Vec::new();
                    use_names(&u.tree, &mut out);
                    for (alias, target) in out {
                        self.put(format!("{prefix}{alias}"), format!("use {target}"), false);
                    }
                }
                _ => {}
            }
        }
    }

    /// Records `#[doc(alias = "wire-name")]` as the QAPI name.
    fn alias(&mut self, name: &str, attrs: &[Attribute]) {
        for a in attrs {
            if a.path().is_ident("doc")
                && let syn::Meta::List(l) = &a.meta
            {
                let t = l.tokens.to_string();
                if let Some(rest) = t.strip_prefix("alias = \"")
                    && let Some(wire) = rest.strip_suffix('"')
                {
                    self.qapi_names.insert(name.to_string(), wire.to_string());
                }
            }
        }
    }

    /// Records each derived trait (losing `Default` or `Eq` breaks
    /// callers too).
    fn derives(&mut self, name: &str, attrs: &[Attribute]) {
        for a in attrs {
            if a.path().is_ident("derive")
                && let syn::Meta::List(l) = &a.meta
            {
                for t in l.tokens.to_string().split(',') {
                    let t = t.trim();
                    if !t.is_empty() {
                        self.put(format!("{name} derive {t}"), String::new(), false);
                    }
                }
            }
        }
    }

    fn read_impl(&mut self, i: &syn::ItemImpl, prefix: &str) {
        let self_ty = ty(&i.self_ty);
        let dep = deprecated(&i.attrs);
        match &i.trait_ {
            Some((_, path, _)) => {
                let t = ty_tokens(quote::ToTokens::to_token_stream(path));
                self.put(
                    format!("impl {t} for {prefix}{self_ty}"),
                    String::new(),
                    dep,
                );
            }
            None => {
                for it in &i.items {
                    if let syn::ImplItem::Fn(f) = it
                        && is_pub(&f.vis)
                    {
                        self.put(
                            format!("{prefix}{self_ty}::{}", f.sig.ident),
                            signature(&f.sig),
                            dep || deprecated(&f.attrs),
                        );
                    }
                }
            }
        }
    }

    /// The input of the runtime's macros that make public API.
    fn read_macro(&mut self, m: &syn::ItemMacro) {
        let Some(last) = m.mac.path.segments.last() else {
            return;
        };
        let tokens = m.mac.tokens.clone();
        match last.ident.to_string().as_str() {
            "qapi_builder" => {
                if let Ok((name, new, setters)) = (|s: ParseStream| parse_builder(s)).parse2(tokens)
                {
                    let dep = self.items.get(&name).is_some_and(|i| i.deprecated);
                    self.put(format!("{name}::new"), format!("({})", new.join(", ")), dep);
                    for (setter, t, d) in setters {
                        self.put(format!("{name}::{setter}"), format!("({t})"), dep || d);
                    }
                }
            }
            "qapi_command" | "qapi_event" => {
                let what = if last.ident == "qapi_command" {
                    "Command"
                } else {
                    "Event"
                };
                if let Ok((name, wire, reply)) = (|s: ParseStream| parse_command(s)).parse2(tokens)
                {
                    let sig = match reply {
                        Some(r) => format!("\"{wire}\" -> {r}"),
                        None => format!("\"{wire}\""),
                    };
                    let dep = self.items.get(&name).is_some_and(|i| i.deprecated);
                    self.put(format!("impl {what} for {name}"), sig, dep);
                }
            }
            "qapi_any_event" => {
                if let Ok(events) = (|s: ParseStream| parse_any_event(s)).parse2(tokens) {
                    // The variants are never `#[deprecated]` (a
                    // deprecated event still arrives); its type is.
                    for (name, boxed) in events {
                        let sig = if boxed {
                            format!("(Box<{name}>)")
                        } else {
                            format!("({name})")
                        };
                        self.put(format!("AnyEvent::{name}"), sig, false);
                    }
                }
            }
            _ => {}
        }
    }

    /// What changed from `old` to `new`, broken first. A parameter whose
    /// type changed is compatible when the new type converts `From` the
    /// old one (`impl From<String> for StrOrNull`): a value that was
    /// accepted still is. A type renamed with a deprecated alias
    /// (`pub type Old = New`) is the same type: its items are looked up
    /// under the new name, and signatures compare with aliases resolved.
    pub fn changes(old: &Api, new: &Api) -> Vec<ApiChange> {
        let aliases = new.aliases();
        let canon = |s: &str| resolve(s, &aliases);
        let mut out = Vec::new();
        for (key, o) in &old.items {
            let found = new.items.get(key).or_else(|| {
                let k = canon(key);
                (k != *key).then(|| new.items.get(&k)).flatten()
            });
            let change = |kind, n: Option<&ApiItem>| ApiChange {
                kind,
                key: key.clone(),
                old: Some(o.sig.clone()),
                new: n.map(|n| n.sig.clone()),
            };
            match found {
                None => out.push(change(ChangeKind::Broken, None)),
                Some(n) if canon(&n.sig) != canon(&o.sig) => {
                    let renamed = n.sig.starts_with("type = ")
                        && aliases.contains_key(key.as_str())
                        && !o.sig.starts_with("type = ");
                    let kind = if renamed {
                        ChangeKind::Deprecated
                    } else if new.accepts(key, &canon(&o.sig), &canon(&n.sig)) {
                        ChangeKind::Compatible
                    } else {
                        ChangeKind::Broken
                    };
                    out.push(change(kind, Some(n)));
                }
                Some(n) if n.deprecated && !o.deprecated => {
                    out.push(change(ChangeKind::Deprecated, Some(n)));
                }
                Some(_) => {}
            }
        }
        for (key, n) in &new.items {
            if !old.items.contains_key(key) {
                out.push(ApiChange {
                    kind: ChangeKind::Added,
                    key: key.clone(),
                    old: None,
                    new: Some(n.sig.clone()),
                });
            }
        }
        out.sort();
        out
    }

    /// Deprecated type aliases: old name → the type it names.
    fn aliases(&self) -> BTreeMap<&str, &str> {
        self.items
            .iter()
            .filter(|(k, i)| i.deprecated && !k.contains([':', '.', ' ']))
            .filter_map(|(k, i)| Some((k.as_str(), i.sig.strip_prefix("type = ")?)))
            .collect()
    }

    /// Whether function `key`'s new parameter list accepts what the old
    /// one did: same arity, each type the same or converting from the
    /// old (parameters are `impl Into<T>`).
    fn accepts(&self, key: &str, old: &str, new: &str) -> bool {
        let is_fn = key.contains("::") && !key.starts_with("impl ");
        if !is_fn || !old.starts_with('(') || !new.starts_with('(') {
            return false;
        }
        let (o, n) = (params(old), params(new));
        o.len() == n.len()
            && o.iter()
                .zip(&n)
                .all(|(a, b)| a == b || self.items.contains_key(&format!("impl From<{a}> for {b}")))
    }
}

/// `s` with every identifier that is an alias replaced by its target.
fn resolve(s: &str, aliases: &BTreeMap<&str, &str>) -> String {
    if aliases.is_empty() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(aliases.get(word.as_str()).copied().unwrap_or(word));
        word.clear();
    };
    for c in s.chars() {
        if c.is_alphanumeric() || c == '_' || c == '#' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The top-level parameter types of `(A, B<C, D>, E) -> R`.
fn params(sig: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut cur) = (0i32, String::new());
    for c in sig.strip_prefix('(').unwrap_or(sig).chars() {
        match c {
            ')' if depth == 0 => break,
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn is_pub(v: &Visibility) -> bool {
    matches!(v, Visibility::Public(_))
}

fn deprecated(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("deprecated"))
}

fn non_exhaustive(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("non_exhaustive"))
}

/// A type as one canonical string: no spaces, standard paths and the
/// runtime's path shortened (`Option<Vec<String>>`), so that the same
/// type read from tokens or from text compares equal.
fn ty(t: &syn::Type) -> String {
    ty_tokens(quote::ToTokens::to_token_stream(t))
}

fn ty_tokens(t: TokenStream) -> String {
    // No spaces but between two words (`impl Into`); no trailing commas
    // (a formatter adds them where it breaks a line).
    let text = t.to_string();
    let mut s = String::with_capacity(text.len());
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut pending = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending = true;
            continue;
        }
        if pending && s.ends_with(word) && word(c) {
            s.push(' ');
        }
        if matches!(c, '>' | ')' | ']' | '}') && s.ends_with(',') {
            s.pop();
        }
        pending = false;
        s.push(c);
    }
    for p in [
        "::std::option::",
        "::std::vec::",
        "::std::string::",
        "::std::boxed::",
        "::std::convert::",
        "::std::collections::",
        "::qapi_rt::__private::",
        "::qapi_rt::",
        "crate::rt::",
    ] {
        // After a word (`impl::std::convert::Into`), a space stays.
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(i) = rest.find(p) {
            out.push_str(&rest[..i]);
            if rest[..i].ends_with(word) {
                out.push(' ');
            }
            rest = &rest[i + p.len()..];
        }
        out.push_str(rest);
        s = out;
    }
    s.replace(',', ", ")
}

/// A function's parameter types (not names: callers pass by position)
/// and its return type.
fn signature(sig: &syn::Signature) -> String {
    let params: Vec<String> = sig
        .inputs
        .iter()
        .map(|a| match a {
            syn::FnArg::Receiver(r) => ty(&r.ty).replace("Self", "self"),
            syn::FnArg::Typed(p) => ty(&p.ty),
        })
        .collect();
    match &sig.output {
        syn::ReturnType::Default => format!("({})", params.join(", ")),
        syn::ReturnType::Type(_, t) => format!("({}) -> {}", params.join(", "), ty(t)),
    }
}

/// `pub use a::B as C;` and groups: (name seen, target).
fn use_names(tree: &syn::UseTree, out: &mut Vec<(String, String)>) {
    match tree {
        syn::UseTree::Path(p) => use_names(&p.tree, out),
        syn::UseTree::Name(n) => out.push((n.ident.to_string(), n.ident.to_string())),
        syn::UseTree::Rename(r) => out.push((r.rename.to_string(), r.ident.to_string())),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| use_names(t, out)),
        syn::UseTree::Glob(_) => {}
    }
}

/// A `qapi_builder!` input: the type, `new`'s parameter types, and each
/// setter (name, type, deprecated).
type Builder = (String, Vec<String>, Vec<(String, String, bool)>);

/// `Name new { id: Ty => w, .. } init { .. } set { #[..]? setter maybe id "wire": Ty => w, .. }`
/// (`maybe`, the setter that takes an `Option`, since it was added).
fn parse_builder(input: ParseStream<'_>) -> syn::Result<Builder> {
    let name: syn::Ident = input.parse()?;
    let _new: syn::Ident = input.parse()?;
    let body;
    syn::braced!(body in input);
    let mut new = Vec::new();
    while !body.is_empty() {
        let _id: syn::Ident = body.parse()?;
        body.parse::<Token![:]>()?;
        let t: syn::Type = body.parse()?;
        body.parse::<Token![=>]>()?;
        let _w: syn::Ident = body.parse()?;
        if body.peek(Token![,]) {
            body.parse::<Token![,]>()?;
        }
        new.push(ty(&t));
    }
    let _init: syn::Ident = input.parse()?;
    let init;
    syn::braced!(init in input);
    let _: TokenStream = init.parse()?;
    let _set: syn::Ident = input.parse()?;
    let set;
    syn::braced!(set in input);
    let mut setters = Vec::new();
    while !set.is_empty() {
        let attrs = set.call(Attribute::parse_outer)?;
        let setter: syn::Ident = set.parse()?;
        let mut idents = vec![set.parse::<syn::Ident>()?];
        while set.peek(syn::Ident) {
            idents.push(set.parse()?);
        }
        let _wire: syn::LitStr = set.parse()?;
        set.parse::<Token![:]>()?;
        let t: syn::Type = set.parse()?;
        set.parse::<Token![=>]>()?;
        let _w: syn::Ident = set.parse()?;
        if set.peek(Token![,]) {
            set.parse::<Token![,]>()?;
        }
        let d = deprecated(&attrs);
        // `maybe_x` takes what `with_x` takes, in an `Option`: the same
        // signature for what is compatible.
        if let [maybe, _id] = idents.as_slice() {
            setters.push((maybe.to_string(), ty(&t), d));
        }
        setters.push((setter.to_string(), ty(&t), d));
    }
    Ok((name.to_string(), new, setters))
}

/// `Ty, "wire", Reply, ...` (a command) or `Ty, "wire", ...` (an event).
fn parse_command(input: ParseStream<'_>) -> syn::Result<(String, String, Option<String>)> {
    let name: syn::Ident = input.parse()?;
    input.parse::<Token![,]>()?;
    let wire: syn::LitStr = input.parse()?;
    input.parse::<Token![,]>()?;
    let reply = if input.peek(syn::token::Brace) {
        None
    } else {
        Some(ty(&input.parse::<syn::Type>()?))
    };
    let _: TokenStream = input.parse()?;
    Ok((name.to_string(), wire.value(), reply))
}

/// `(Ty, "WIRE"), (Big, "BIG", true), ...`: each event's type, and
/// whether `AnyEvent` holds it boxed.
fn parse_any_event(input: ParseStream<'_>) -> syn::Result<Vec<(String, bool)>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let entry;
        syn::parenthesized!(entry in input);
        let name: syn::Ident = entry.parse()?;
        entry.parse::<Token![,]>()?;
        let _: syn::LitStr = entry.parse()?;
        let boxed =
            entry.parse::<Option<Token![,]>>()?.is_some() && entry.parse::<syn::LitBool>()?.value;
        out.push((name.to_string(), boxed));
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(src: &str) -> Api {
        Api::of_files([("x.rs", src)]).expect("parses")
    }

    #[test]
    fn params_split_at_top_level_commas() {
        assert_eq!(
            params("(u64, Option<Vec<String>>, A)"),
            ["u64", "Option<Vec<String>>", "A"]
        );
        assert!(params("()").is_empty());
    }

    #[test]
    fn widened_setter_is_compatible_and_field_is_broken() {
        let old = api(
            "pub struct S { pub a: ::std::option::Option<::std::string::String> }
             ::qapi_rt::qapi_builder!(S new {} init {} set { with_a a \"a\": ::std::string::String => into, });",
        );
        let new = api(
            "pub struct S { pub a: ::std::option::Option<StrOrNull> }
             impl ::std::convert::From<::std::string::String> for StrOrNull { fn from(s: String) -> Self { todo!() } }
             ::qapi_rt::qapi_builder!(S new {} init {} set { with_a a \"a\": StrOrNull => into, });",
        );
        let ch = Api::changes(&old, &new);
        let kind = |k: &str| ch.iter().find(|c| c.key == k).map(|c| c.kind);
        assert_eq!(kind("S::with_a"), Some(ChangeKind::Compatible));
        assert_eq!(kind("S.a"), Some(ChangeKind::Broken));
        assert_eq!(
            kind("impl From<String> for StrOrNull"),
            Some(ChangeKind::Added)
        );
    }

    #[test]
    fn removed_items_break_and_new_deprecations_are_reported() {
        let old = api("pub enum E { A, B }
             pub struct C { }
             ::qapi_rt::qapi_command!(C, \"c\", (), { since: \"1.0\", });");
        let new = api("pub enum E { A, #[deprecated(note = \"x\")] B, C }
             pub struct C(pub D);");
        let ch = Api::changes(&old, &new);
        let kind = |k: &str| ch.iter().find(|c| c.key == k).map(|c| c.kind);
        assert_eq!(kind("E::B"), Some(ChangeKind::Deprecated));
        assert_eq!(kind("E::C"), Some(ChangeKind::Added));
        assert_eq!(kind("C"), Some(ChangeKind::Broken));
        assert_eq!(kind("impl Command for C"), Some(ChangeKind::Broken));
    }

    #[test]
    fn an_event_boxed_in_any_event_is_a_break() {
        let old = api("::qapi_rt::qapi_any_event! { (Small, \"SMALL\"), (Big, \"BIG\") }");
        let new = api(
            "::qapi_rt::qapi_any_event! { (Small, \"SMALL\"), (Big, \"BIG\", true), (New, \"NEW\"), }",
        );
        assert_eq!(new.items["AnyEvent::Big"].sig, "(Box<Big>)");
        let ch = Api::changes(&old, &new);
        let kind = |k: &str| ch.iter().find(|c| c.key == k).map(|c| c.kind);
        assert_eq!(kind("AnyEvent::Big"), Some(ChangeKind::Broken));
        assert_eq!(kind("AnyEvent::New"), Some(ChangeKind::Added));
        assert_eq!(kind("AnyEvent::Small"), None);
    }
}
