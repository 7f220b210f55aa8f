//! A textual dump of a checked schema in the exact format of QEMU's
//! `tests/qapi-schema/test-qapi.py`, so that QEMU's expected `.out` files
//! can check our model line by line.

use std::fmt::Write as _;

use crate::schema::{EntityKind, Feature, Member, Schema};
use crate::value::Value;

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn print_if(out: &mut String, ifcond: &Option<Value>, indent: usize) {
    if let Some(c) = ifcond {
        let text = match c {
            Value::Str(s) => s.clone(),
            other => other.python_repr(),
        };
        let _ = writeln!(out, "{:indent$}if {text}", "");
    }
}

fn print_features(out: &mut String, features: &[Feature], indent: usize) {
    for f in features {
        let _ = writeln!(out, "{:indent$}feature {}", "", f.name);
        print_if(out, &f.ifcond, indent + 4);
    }
}

fn print_variants(out: &mut String, schema: &Schema, tag: &str, variants: &[Member]) {
    let _ = writeln!(out, "    tag {tag}");
    for v in variants {
        let ty = schema.entities.get(v.ty).map_or("?", |e| e.name.as_str());
        let _ = writeln!(out, "    case {}: {ty}", v.name);
        print_if(out, &v.ifcond, 8);
    }
}

/// Renders `schema` like QEMU's test harness does.
pub fn dump(schema: &Schema) -> String {
    let mut out = String::new();
    let name_of = |id: Option<usize>| match id {
        Some(id) => schema.entities[id].name.clone(),
        None => "None".into(),
    };
    for module in &schema.modules {
        let _ = writeln!(out, "module {}", module.name);
        for &id in &module.entities {
            let e = &schema.entities[id];
            match &e.kind {
                EntityKind::Include { module } => {
                    let _ = writeln!(out, "include {module}");
                }
                EntityKind::Builtin { .. } => {}
                EntityKind::Enum { members, prefix } => {
                    let _ = writeln!(out, "enum {}", e.name);
                    if let Some(p) = prefix {
                        let _ = writeln!(out, "    prefix {p}");
                    }
                    for m in members {
                        let _ = writeln!(out, "    member {}", m.name);
                        print_if(&mut out, &m.ifcond, 8);
                        print_features(&mut out, &m.features, 8);
                    }
                    print_if(&mut out, &e.ifcond, 4);
                    print_features(&mut out, &e.features, 4);
                }
                EntityKind::Array { element, .. } => {
                    if e.info.is_none() {
                        continue;
                    }
                    let el = &schema.entities[*element];
                    let _ = writeln!(out, "array {} {}", e.name, el.name);
                    print_if(&mut out, &el.ifcond, 4);
                }
                EntityKind::Object(o) => {
                    let _ = writeln!(out, "object {}", e.name);
                    if let Some(b) = o.base {
                        let _ = writeln!(out, "    base {}", schema.entities[b].name);
                    }
                    for m in &o.local_members {
                        let _ = writeln!(
                            out,
                            "    member {}: {} optional={}",
                            m.name,
                            schema.entities.get(m.ty).map_or("?", |t| t.name.as_str()),
                            py_bool(m.optional)
                        );
                        print_if(&mut out, &m.ifcond, 8);
                        print_features(&mut out, &m.features, 8);
                    }
                    if let Some(b) = &o.branches {
                        let tag = b.tag_member.map_or("?", |r| schema.member(r).name.as_str());
                        print_variants(&mut out, schema, tag, &b.variants);
                    }
                    print_if(&mut out, &e.ifcond, 4);
                    print_features(&mut out, &e.features, 4);
                }
                EntityKind::Alternate { variants } => {
                    let _ = writeln!(out, "alternate {}", e.name);
                    print_variants(&mut out, schema, "type", variants);
                    print_if(&mut out, &e.ifcond, 4);
                    print_features(&mut out, &e.features, 4);
                }
                EntityKind::Command(c) => {
                    let _ = writeln!(
                        out,
                        "command {} {} -> {}",
                        e.name,
                        name_of(c.arg_type),
                        name_of(c.ret_type)
                    );
                    let _ = writeln!(
                        out,
                        "    gen={} success_response={} boxed={} oob={} preconfig={}{}",
                        py_bool(c.generate),
                        py_bool(c.success_response),
                        py_bool(c.boxed),
                        py_bool(c.allow_oob),
                        py_bool(c.allow_preconfig),
                        if c.coroutine { " coroutine=True" } else { "" }
                    );
                    print_if(&mut out, &e.ifcond, 4);
                    print_features(&mut out, &e.features, 4);
                }
                EntityKind::Event(ev) => {
                    let _ = writeln!(out, "event {} {}", e.name, name_of(ev.arg_type));
                    let _ = writeln!(out, "    boxed={}", py_bool(ev.boxed));
                    print_if(&mut out, &e.ifcond, 4);
                    print_features(&mut out, &e.features, 4);
                }
            }
        }
    }
    for doc in &schema.docs {
        match &doc.symbol {
            Some(s) => {
                let _ = writeln!(out, "doc symbol={s}");
            }
            None => out.push_str("doc freeform\n"),
        }
        let _ = writeln!(out, "    body=\n{}", doc.body().text);
        for (name, i) in &doc.args {
            let _ = writeln!(out, "    arg={name}\n{}", doc.sections[*i].text);
        }
        for (name, i) in &doc.features {
            let _ = writeln!(out, "    feature={name}\n{}", doc.sections[*i].text);
        }
        for &i in &doc.others {
            let s = &doc.sections[i];
            let _ = writeln!(out, "    section={}\n{}", s.kind.title(), s.text);
        }
    }
    out
}
