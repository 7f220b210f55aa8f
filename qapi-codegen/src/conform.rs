//! Live conformance: a running QEMU's `query-qmp-schema` against a model
//! (the bindings' merged schemas), both ways ([`conform`]).
//!
//! QEMU masks the names of its types in `query-qmp-schema` (`"42"`), so
//! types are matched by position: from each command (arguments, reply)
//! and event (data) both have, members by name, branches by case, array
//! elements and alternate branches, recursively.
//!
//! A difference is *explained* when the model says why: the item is
//! guarded by an `if` (QEMU built without it leaves it out), or it is not
//! in the connected QEMU's version, or (with a `scope`, such as
//! `qemu-storage-daemon`'s own schema) the program does not include it.
//! Everything else is unexplained: the server has something the bindings
//! lack, or lacks something they say it has.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::Value;

use crate::schema::{EntityId, EntityKind, Key, Schema, VersionSet};

/// Which side has what the other lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Side {
    /// The server has it, the bindings do not.
    ServerOnly,
    /// The bindings have it, the server does not.
    BindingsOnly,
    /// Both have it, in different forms (a member's JSON type, optional
    /// in one and required in the other).
    Differs,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Difference {
    /// Which side has it.
    pub side: Side,
    /// What (`command `blockdev-add` arguments: member `x``).
    pub what: String,
    /// Why it differs, when the model says (`if CONFIG_X`, `not in
    /// QEMU 7.2`, `not part of the scope`).
    pub explained: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::ServerOnly => "only the server has",
            Side::BindingsOnly => "only the bindings have",
            Side::Differs => "differs:",
        };
        write!(f, "{side} {}", self.what)?;
        if let Some(e) = &self.explained {
            write!(f, " (explained: {e})")?;
        }
        Ok(())
    }
}

/// What [`conform`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Commands both have.
    pub commands_matched: usize,
    /// Events both have.
    pub events_matched: usize,
    /// Type pairs compared.
    pub types_compared: usize,
    /// Every difference, sorted.
    pub differences: Vec<Difference>,
}

impl Report {
    /// The differences the model does not explain.
    pub fn unexplained(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|d| d.explained.is_none())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unexplained = self.unexplained().count();
        writeln!(
            f,
            "{} commands and {} events matched, {} type pairs compared; {} differences, {} unexplained",
            self.commands_matched,
            self.events_matched,
            self.types_compared,
            self.differences.len(),
            unexplained
        )?;
        for d in &self.differences {
            writeln!(f, "- {d}")?;
        }
        Ok(())
    }
}

/// How to compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// The connected QEMU's version label in the model (`7.2.0`): what the
    /// model has only in other versions is left out. `None`: all.
    pub version: Option<&'a str>,
    /// The program's own schema, when it has less than the model
    /// (`qemu-storage-daemon`): what the model has beyond it is explained.
    pub scope: Option<&'a Schema>,
}

/// Why the bindings have more than the server inside a widened type.
const WIDE: &str = "the bindings' type here is wider, to read what every covered version sends (see the versions page)";

struct Intro<'v> {
    by_name: HashMap<&'v str, &'v Value>,
}

impl<'v> Intro<'v> {
    fn get(&self, name: &str) -> Option<&'v Value> {
        self.by_name.get(name).copied()
    }
}

fn s<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn list<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

struct Cmp<'a, 'v> {
    m: &'a Schema,
    intro: Intro<'v>,
    opts: Options<'a>,
    bit: Option<VersionSet>,
    seen: HashSet<(String, EntityId)>,
    report: Report,
}

/// Compares `query-qmp-schema`'s `return` (`introspection`) with `model`.
/// Errors only when `introspection` is not a list of schema entries.
pub fn conform(model: &Schema, introspection: &Value, opts: Options<'_>) -> Result<Report, String> {
    let entries = introspection
        .as_array()
        .ok_or("query-qmp-schema's return is not a list")?;
    let mut by_name = HashMap::new();
    for e in entries {
        let name = s(e, "name").ok_or("a query-qmp-schema entry has no name")?;
        by_name.insert(name, e);
    }
    let bit = match (opts.version, &model.versioning) {
        (Some(label), Some(v)) => v.labels.iter().position(|l| l == label).map(|i| 1 << i),
        _ => None,
    };
    let mut c = Cmp {
        m: model,
        intro: Intro { by_name },
        opts,
        bit,
        seen: HashSet::new(),
        report: Report::default(),
    };
    c.run(entries);
    c.report.differences.sort();
    c.report.differences.dedup();
    Ok(c.report)
}

impl<'a, 'v> Cmp<'a, 'v> {
    fn push(&mut self, side: Side, what: String, explained: Option<String>) {
        self.report.differences.push(Difference {
            side,
            what,
            explained,
        });
    }

    /// Whether the model has it in the compared version.
    fn in_version(&self, set: VersionSet) -> bool {
        self.bit.is_none_or(|b| set & b != 0)
    }

    fn entity_set(&self, name: &str) -> VersionSet {
        self.m
            .versioning
            .as_ref()
            .map_or(VersionSet::MAX, |v| v.entity(name))
    }

    /// Whether the merge widened the type at `key` for the compared
    /// version (or, comparing all, for any).
    fn is_wide(&self, key: &Key) -> bool {
        let Some(v) = &self.m.versioning else {
            return false;
        };
        v.widened
            .get(key)
            .is_some_and(|set| self.bit.is_none_or(|b| set & b != 0))
    }

    /// The `if` of `key` in the compared version (the model's own
    /// `cond` when no version is compared), as an explanation.
    fn cond(&self, key: &Key, cond: Option<&crate::value::Value>) -> Option<String> {
        let text = match (self.bit, &self.m.versioning) {
            (Some(bit), Some(v)) => v.condition(key, bit).map(String::from),
            _ => cond.map(crate::schema::condition_text),
        };
        text.map(|t| format!("`if` {t}"))
    }

    /// Why the model's top-level `name` may be absent from the server.
    fn why_absent(&self, id: EntityId) -> Option<String> {
        let e = &self.m.entities[id];
        if let Some(c) = self.cond(&Key::entity(&e.name), e.ifcond.as_ref()) {
            return Some(c);
        }
        if let Some(scope) = self.opts.scope
            && scope.lookup(&e.name).is_none()
        {
            return Some("not part of this program's schema".into());
        }
        None
    }

    fn run(&mut self, entries: &'v [Value]) {
        // Server → bindings.
        for e in entries {
            let (Some(name), Some(meta)) = (s(e, "name"), s(e, "meta-type")) else {
                continue;
            };
            if meta != "command" && meta != "event" {
                continue;
            }
            let found = self
                .m
                .lookup(name)
                .filter(|_| self.in_version(self.entity_set(name)))
                .filter(|&id| self.m.entities[id].meta() == meta);
            let Some(id) = found else {
                self.push(Side::ServerOnly, format!("{meta} `{name}`"), None);
                continue;
            };
            match &self.m.entities[id].kind {
                EntityKind::Command(cmd) => {
                    self.report.commands_matched += 1;
                    let who = format!("command `{name}` arguments");
                    self.pair_opt(s(e, "arg-type"), cmd.arg_type, &who);
                    let who = format!("command `{name}` reply");
                    self.pair_opt(s(e, "ret-type"), cmd.ret_type, &who);
                }
                EntityKind::Event(ev) => {
                    self.report.events_matched += 1;
                    let who = format!("event `{name}` data");
                    self.pair_opt(s(e, "arg-type"), ev.arg_type, &who);
                }
                _ => {}
            }
        }
        // Bindings → server.
        for (id, e) in self.m.iter() {
            let meta = e.meta();
            if meta != "command" && meta != "event" {
                continue;
            }
            if !self.in_version(self.entity_set(&e.name)) {
                continue;
            }
            let has = self
                .intro
                .get(&e.name)
                .is_some_and(|x| s(x, "meta-type") == Some(meta));
            if !has {
                let why = self.why_absent(id);
                self.push(Side::BindingsOnly, format!("{meta} `{}`", e.name), why);
            }
        }
    }

    /// Pairs an optional introspected type with an optional model type:
    /// QEMU gives argument-less commands an empty object type.
    fn pair_opt(&mut self, intro: Option<&str>, model: Option<EntityId>, who: &str) {
        match (intro, model) {
            (Some(t), Some(id)) => self.pair(t, id, who, 0, false),
            (Some(t), None) => {
                let empty = self
                    .intro
                    .get(t)
                    .is_some_and(|x| list(x, "members").is_empty() && x.get("variants").is_none());
                if !empty {
                    self.push(Side::ServerOnly, format!("{who}: members"), None);
                }
            }
            (None, Some(_)) | (None, None) => {}
        }
    }

    fn json_of(&self, id: EntityId) -> &'static str {
        let e = &self.m.entities[id];
        match e.kind {
            // Compared branch by branch, not as one JSON type.
            EntityKind::Alternate { .. } => "alternate",
            _ => e.json_type(),
        }
    }

    fn intro_json(&self, t: &str) -> &'static str {
        let Some(x) = self.intro.get(t) else {
            return "?";
        };
        match s(x, "meta-type") {
            Some("builtin") => match s(x, "json-type") {
                Some("string") => "string",
                Some("int") => "int",
                Some("number") => "number",
                Some("boolean") => "boolean",
                Some("null") => "null",
                Some("value") => "value",
                _ => "?",
            },
            Some("enum") => "string",
            Some("array") => "array",
            Some("object") => "object",
            Some("alternate") => "alternate",
            _ => "?",
        }
    }

    fn pair(&mut self, t: &str, id: EntityId, who: &str, depth: usize, wide: bool) {
        if depth > 64 || !self.seen.insert((t.to_string(), id)) {
            return;
        }
        self.report.types_compared += 1;
        let Some(x) = self.intro.get(t) else {
            self.push(
                Side::Differs,
                format!("{who}: the server's type `{t}` is not listed"),
                None,
            );
            return;
        };
        let (ij, mj) = (self.intro_json(t), self.json_of(id));
        // `any` reads everything; `number` reads integers.
        if mj != ij && mj != "value" && !(mj == "number" && ij == "int") {
            self.push(
                Side::Differs,
                format!("{who}: the server's JSON type is {ij}, the bindings' {mj}"),
                None,
            );
            return;
        }
        let m = self.m;
        match (&m.entities[id].kind, s(x, "meta-type")) {
            (EntityKind::Enum { members, .. }, Some("enum")) => {
                let server: Vec<&str> = list(x, "members")
                    .iter()
                    .filter_map(|v| s(v, "name"))
                    .chain(list(x, "values").iter().filter_map(Value::as_str))
                    .collect();
                let owner = &m.entities[id].name;
                for v in &server {
                    if !members.iter().any(|b| b.name == *v) {
                        self.push(Side::ServerOnly, format!("{who}: enum value `{v}`"), None);
                    }
                }
                for b in members {
                    let set = m
                        .versioning
                        .as_ref()
                        .map_or(VersionSet::MAX, |v| v.value(owner, &b.name));
                    if !self.in_version(set) || server.contains(&b.name.as_str()) {
                        continue;
                    }
                    let why = self
                        .cond(&Key::value(owner, &b.name), b.ifcond.as_ref())
                        .or_else(|| wide.then(|| WIDE.to_string()));
                    self.push(
                        Side::BindingsOnly,
                        format!("{who}: enum value `{}`", b.name),
                        why,
                    );
                }
            }
            (EntityKind::Array { element, .. }, Some("array")) => {
                if let Some(el) = s(x, "element-type") {
                    let el = el.to_string();
                    self.pair(&el, *element, &format!("{who}[]"), depth + 1, wide);
                }
            }
            (EntityKind::Object(o), Some("object")) => {
                let mut owner_members: Vec<_> = o.members.iter().map(|&r| m.member(r)).collect();
                // A union this version sends as a plain struct (without the
                // discriminator): its members are the untagged branch's too.
                let untagged = m.versioning.as_ref().and_then(|v| {
                    let (case, set) = v.untagged.get(&m.entities[id].name)?;
                    (x.get("tag").is_none() && self.bit.is_none_or(|b| set & b != 0))
                        .then_some(case)
                });
                if let (Some(case), Some(b)) = (untagged, &o.branches)
                    && let Some(bo) = b
                        .variants
                        .iter()
                        .find(|v| v.name == *case)
                        .and_then(|v| m.entities[v.ty].as_object())
                {
                    owner_members.extend(bo.members.iter().map(|&r| m.member(r)));
                    // The discriminator is what such a version lacks.
                    if let Some(tag) = b.tag_member {
                        let tag_name = &m.member(tag).name;
                        owner_members.retain(|mm| mm.name != *tag_name);
                    }
                }
                for sm in list(x, "members") {
                    let Some(name) = s(sm, "name") else { continue };
                    let ty = s(sm, "type").unwrap_or("");
                    match owner_members.iter().find(|b| b.name == name) {
                        None => {
                            self.push(Side::ServerOnly, format!("{who}: member `{name}`"), None)
                        }
                        Some(b) => {
                            let server_optional = sm.get("default").is_some();
                            let model_optional = b.optional || b.ifcond.is_some();
                            if server_optional && !model_optional {
                                self.push(
                                    Side::Differs,
                                    format!("{who}: member `{name}` is optional on the server, required in the bindings"),
                                    None,
                                );
                            }
                            let inner = format!("{who}.{name}");
                            let bty = b.ty;
                            let w = wide || self.is_wide(&Key::member(&b.defined_in, &b.name));
                            self.pair(ty, bty, &inner, depth + 1, w);
                        }
                    }
                }
                for b in &owner_members {
                    let set = m
                        .versioning
                        .as_ref()
                        .map_or(VersionSet::MAX, |v| v.member(&b.defined_in, &b.name));
                    if !self.in_version(set) {
                        continue;
                    }
                    if list(x, "members")
                        .iter()
                        .any(|sm| s(sm, "name") == Some(&b.name))
                    {
                        continue;
                    }
                    let why = self
                        .cond(&Key::member(&b.defined_in, &b.name), b.ifcond.as_ref())
                        .or_else(|| (wide && b.optional).then(|| WIDE.to_string()));
                    self.push(
                        Side::BindingsOnly,
                        format!("{who}: member `{}`", b.name),
                        why,
                    );
                }
                if let Some(br) = &o.branches {
                    let server: Vec<(&str, &str)> = list(x, "variants")
                        .iter()
                        .filter_map(|v| Some((s(v, "case")?, s(v, "type")?)))
                        .collect();
                    let owner = &m.entities[id].name;
                    for (case, ty) in &server {
                        match br.variants.iter().find(|v| v.name == *case) {
                            None => {
                                self.push(Side::ServerOnly, format!("{who}: branch `{case}`"), None)
                            }
                            Some(v) => {
                                let vty = v.ty;
                                let w = wide || self.is_wide(&Key::branch(owner, case));
                                self.pair(ty, vty, &format!("{who}({case})"), depth + 1, w);
                            }
                        }
                    }
                    for v in &br.variants {
                        let set = m
                            .versioning
                            .as_ref()
                            .map_or(VersionSet::MAX, |vs| vs.variant(owner, &v.name));
                        if !self.in_version(set) || server.iter().any(|(c, _)| *c == v.name) {
                            continue;
                        }
                        // A branch QEMU leaves out when its case's enum
                        // value is conditional, or the branch itself is.
                        let why = self
                            .cond(&Key::branch(owner, &v.name), v.ifcond.as_ref())
                            .or_else(|| self.tag_value_condition(o, &v.name))
                            .or_else(|| wide.then(|| WIDE.to_string()));
                        // QEMU lists no branch whose type has no members.
                        let empty = m.entities[v.ty]
                            .as_object()
                            .is_some_and(|vo| vo.members.is_empty() && vo.branches.is_none());
                        if !empty {
                            self.push(
                                Side::BindingsOnly,
                                format!("{who}: branch `{}`", v.name),
                                why,
                            );
                        }
                    }
                }
            }
            (EntityKind::Alternate { variants }, Some("alternate")) => {
                let server: Vec<&str> = list(x, "members")
                    .iter()
                    .filter_map(|v| s(v, "type"))
                    .collect();
                for t2 in &server {
                    let j = self.intro_json(t2);
                    let found = variants.iter().find(|v| {
                        let mj = self.json_of(v.ty);
                        mj == j || (mj == "number" && j == "int")
                    });
                    match found {
                        Some(v) => {
                            let vty = v.ty;
                            let t2 = t2.to_string();
                            self.pair(&t2, vty, &format!("{who}|{j}"), depth + 1, wide);
                        }
                        None => self.push(
                            Side::ServerOnly,
                            format!("{who}: alternative of JSON type {j}"),
                            None,
                        ),
                    }
                }
            }
            _ => {}
        }
    }

    /// The `if` of the discriminator's enum value `case`, if any.
    fn tag_value_condition(&self, o: &crate::schema::ObjectType, case: &str) -> Option<String> {
        let tag = o.branches.as_ref()?.tag_member?;
        let ty = self.m.member(tag).ty;
        let e = &self.m.entities[ty];
        match &e.kind {
            EntityKind::Enum { members, .. } => {
                let v = members.iter().find(|v| v.name == case)?;
                self.cond(&Key::value(&e.name, case), v.ifcond.as_ref())
            }
            _ => None,
        }
    }
}

/// Asks the QMP server on the Unix socket `path` for its version
/// (`X.Y.Z`, from the greeting) and `query-qmp-schema`, over a plain
/// blocking connection (30 s read timeout).
pub fn introspect(path: &std::path::Path) -> Result<(String, Value), String> {
    use std::io::{BufRead, BufReader, Write};
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(fail)?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(fail)?;
    let mut w = stream.try_clone().map_err(fail)?;
    let mut r = BufReader::new(stream);
    let mut read = || -> Result<Value, String> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).map_err(fail)? == 0 {
                return Err(format!("{}: the server hung up", path.display()));
            }
            let v: Value = serde_json::from_str(&line)
                .map_err(|e| format!("{}: not JSON ({e})", path.display()))?;
            if v.get("event").is_none() {
                return Ok(v);
            }
        }
    };
    let greeting = read()?;
    let q = &greeting["QMP"]["version"]["qemu"];
    let version = format!("{}.{}.{}", q["major"], q["minor"], q["micro"]);
    for cmd in ["qmp_capabilities", "query-qmp-schema"] {
        w.write_all(format!("{{\"execute\":\"{cmd}\"}}\n").as_bytes())
            .map_err(fail)?;
        let reply = read()?;
        if let Some(e) = reply.get("error") {
            return Err(format!("{cmd}: {e}"));
        }
        if cmd == "query-qmp-schema" {
            return reply
                .get("return")
                .cloned()
                .map(|v| (version, v))
                .ok_or_else(|| "query-qmp-schema: no return".to_string());
        }
    }
    Err("unreachable".into())
}

/// The label of `model` whose release series (X.Y) is `version`'s.
pub fn version_label<'m>(model: &'m Schema, version: &str) -> Option<&'m str> {
    let series = |v: &str| crate::manifest::parse_version(v).map(|(a, b, _)| (a, b));
    let want = series(version)?;
    model
        .versioning
        .as_ref()?
        .labels
        .iter()
        .find(|l| series(l) == Some(want))
        .map(String::as_str)
}

/// What [`conform_manifest`] found, and a note when the server's version
/// is outside the manifest's.
#[derive(Debug, Clone)]
pub struct ManifestReport {
    /// The comparison.
    pub report: Report,
    /// Set when the server's QEMU is outside the versions the manifest
    /// lists (then the model's every version is compared, or, for a newer
    /// QEMU, the newest).
    pub note: Option<String>,
    /// Set when the server's QEMU is newer than every version the
    /// manifest lists: the newest listed, which the server was compared
    /// with. Every difference is then explained by the versions, and
    /// [`ManifestReport::todo`] is what a regen with that QEMU's schema
    /// would add.
    pub newer_than: Option<String>,
}

/// The groups of [`ManifestReport::todo`], in order.
const TODO_GROUPS: [&str; 6] = [
    "Commands",
    "Events",
    "Members",
    "Enum values",
    "Branches",
    "Changed or removed",
];

impl ManifestReport {
    /// For a server newer than the bindings: what it has that they lack,
    /// grouped (commands, events, members, enum values, branches), and
    /// what differs or is gone; as Markdown, the to-do list for adding
    /// that QEMU's schema (`schema/manifest.txt`, `cargo xtask regen`).
    /// Empty otherwise.
    pub fn todo(&self) -> String {
        use std::fmt::Write as _;
        let Some(newest) = &self.newer_than else {
            return String::new();
        };
        let group = |d: &Difference| -> usize {
            match d.side {
                Side::ServerOnly if d.what.contains(": member") => 2,
                Side::ServerOnly if d.what.contains(": enum value") => 3,
                Side::ServerOnly if d.what.contains(": branch") => 4,
                Side::ServerOnly if d.what.starts_with("command ") => 0,
                Side::ServerOnly if d.what.starts_with("event ") => 1,
                _ => 5,
            }
        };
        let mut out = format!(
            "# To do: what the server has beyond the bindings' newest QEMU, {newest}\n\n\
             Add its schema to `schema/` and its version to `schema/manifest.txt`, then\n\
             run `cargo xtask regen` (its API check says what this does to the Rust API).\n"
        );
        for (i, title) in TODO_GROUPS.iter().enumerate() {
            let items: Vec<&Difference> = self
                .report
                .differences
                .iter()
                .filter(|d| group(d) == i)
                .collect();
            if items.is_empty() {
                continue;
            }
            let _ = write!(out, "\n## {title} ({})\n\n", items.len());
            for d in items {
                let side = match d.side {
                    Side::ServerOnly => "added:",
                    Side::BindingsOnly => "not in the server:",
                    Side::Differs => "differs:",
                };
                let _ = writeln!(out, "- {side} {}", d.what);
            }
        }
        out
    }
}

/// Compares a server's `query-qmp-schema` with the merged model of the
/// manifest in `dir` (`schema/` of this workspace): `version` is the
/// server's QEMU (`10.0.2`), `storage_daemon` says the server is
/// `qemu-storage-daemon` (whose schema has less than QEMU's).
pub fn conform_manifest(
    dir: &std::path::Path,
    introspection: &Value,
    version: Option<&str>,
    storage_daemon: bool,
) -> Result<ManifestReport, String> {
    use crate::manifest::{Manifest, Part};
    let manifest = Manifest::load(dir).map_err(|e| e.to_string())?;
    let model = manifest.load_merged(Part::Qmp).map_err(|e| e.to_string())?;
    let scope = if storage_daemon {
        Some(
            manifest
                .load_merged(Part::StorageDaemon)
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let series = |v: &str| crate::manifest::parse_version(v).map(|(a, b, _)| (a, b));
    let newest = model.versioning.as_ref().and_then(|v| v.labels.last());
    let newer_than = match (version.and_then(series), newest) {
        (Some(s), Some(n)) if series(n).is_some_and(|n| s > n) => Some(n.clone()),
        _ => None,
    };
    let label = match &newer_than {
        Some(n) => Some(n.as_str()),
        None => version.and_then(|v| version_label(&model, v)),
    };
    let v = version.unwrap_or_default();
    let note = match (&newer_than, label) {
        (Some(n), _) => Some(format!(
            "QEMU {v} is newer than the bindings' newest, {n}: compared with {n}; what differs is explained by the versions (the to-do list below)"
        )),
        (None, None) if version.is_some() => Some(format!(
            "QEMU {v} is outside the versions the manifest lists; comparing with all of them"
        )),
        _ => None,
    };
    let opts = Options {
        version: label,
        scope: scope.as_ref(),
    };
    let mut report = conform(&model, introspection, opts)?;
    if let Some(n) = &newer_than {
        for d in &mut report.differences {
            d.explained
                .get_or_insert_with(|| format!("QEMU {v} is newer than the bindings' newest, {n}"));
        }
    }
    Ok(ManifestReport {
        report,
        note,
        newer_than,
    })
}
