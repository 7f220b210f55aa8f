//! Walking a command's argument types, for completion and help of
//! nested arguments: which members there are at `file.` of
//! `blockdev-add`, given the `driver=` typed so far. The types are the
//! bindings' (the generated `TYPES`), or, once [`use_connected`] was
//! called (the shell does on connecting), the connected QEMU's own, so a
//! QEMU newer than the bindings completes with what it has.

use std::collections::HashMap;
use std::sync::OnceLock;

use qmp_client::introspect::{Introspection, TypeView};
use qmp_types::rt::{MemberInfo, TypeInfo};
use serde_json::Value;

/// The connected QEMU's types in the bindings' shape, made once per
/// process (its strings live as long as the process: a shell's run).
struct Connected {
    types: HashMap<&'static str, &'static TypeInfo>,
    /// Each command's argument type.
    args: HashMap<&'static str, Option<&'static str>>,
    /// The name to show for an (opaque) type: the bindings' name of the
    /// type found at the same place, else its kind.
    shown: HashMap<&'static str, &'static str>,
}

static CONNECTED: OnceLock<Connected> = OnceLock::new();

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// From now on, completion and help walk `schema` (the connected QEMU's)
/// instead of the bindings' types. Once per process.
pub fn use_connected(schema: &Introspection) {
    CONNECTED.get_or_init(|| {
        let mut types = HashMap::new();
        let mut names: HashMap<String, &'static str> = HashMap::new();
        let mut name = |n: &str| *names.entry(n.to_string()).or_insert_with(|| leak(n));
        for t in schema.type_names() {
            let info = match schema.type_view(t) {
                Some(TypeView::Object {
                    members,
                    tag,
                    branches,
                }) => TypeInfo::Object {
                    members: Box::leak(
                        members
                            .iter()
                            .map(|(m, ty, optional)| MemberInfo {
                                name: name(m),
                                type_name: name(ty),
                                optional: *optional,
                                doc: "",
                            })
                            .collect::<Vec<_>>()
                            .into_boxed_slice(),
                    ),
                    tag: tag.map(&mut name),
                    branches: Box::leak(
                        branches
                            .iter()
                            .map(|(v, b)| (name(v), name(b)))
                            .collect::<Vec<_>>()
                            .into_boxed_slice(),
                    ),
                },
                Some(TypeView::Enum(values)) => TypeInfo::Enum {
                    values: Box::leak(
                        values
                            .iter()
                            .map(|v| name(v))
                            .collect::<Vec<_>>()
                            .into_boxed_slice(),
                    ),
                },
                Some(TypeView::Array(e)) => TypeInfo::Array { element: name(e) },
                Some(TypeView::Alternate(b)) => TypeInfo::Alternate {
                    branches: Box::leak(
                        b.iter()
                            .map(|v| name(v))
                            .collect::<Vec<_>>()
                            .into_boxed_slice(),
                    ),
                },
                _ => continue,
            };
            types.insert(name(t), &*Box::leak(Box::new(info)));
        }
        let args = schema
            .commands()
            .map(|c| (name(c), schema.arg_type(c).map(&mut name)))
            .collect();
        let mut c = Connected {
            types,
            args,
            shown: HashMap::new(),
        };
        c.shown = shown_names(&c);
        c
    });
}

/// Readable names for the connected QEMU's opaque type names: the
/// bindings' type at the same place (a command's arguments, a member, a
/// branch, a list's element), found by walking both side by side.
fn shown_names(c: &Connected) -> HashMap<&'static str, &'static str> {
    let bound = |n: &str| {
        qmp_types::TYPES
            .iter()
            .find(|(t, _)| *t == n)
            .map(|(_, t)| t)
    };
    let mut shown: HashMap<&'static str, &'static str> = HashMap::new();
    let mut todo: Vec<(&'static str, &'static str)> = qmp_types::COMMANDS
        .iter()
        .filter_map(|m| Some((c.args.get(m.name).copied().flatten()?, m.arg_type?)))
        .collect();
    while let Some((ours, theirs)) = todo.pop() {
        // Built-ins (`int`, `str`) are shared by every use: shown as they
        // are named.
        if shown.contains_key(ours) || !c.types.contains_key(ours) {
            continue;
        }
        shown.insert(ours, theirs);
        match (c.types.get(ours), bound(theirs)) {
            (
                Some(TypeInfo::Object {
                    members, branches, ..
                }),
                Some(TypeInfo::Object {
                    members: bm,
                    branches: bb,
                    ..
                }),
            ) => {
                for m in members.iter() {
                    if let Some(b) = bm.iter().find(|b| b.name == m.name) {
                        todo.push((m.type_name, b.type_name));
                    }
                }
                for (v, t) in branches.iter() {
                    if let Some((_, b)) = bb.iter().find(|(w, _)| w == v) {
                        todo.push((t, b));
                    }
                }
            }
            (Some(TypeInfo::Array { element }), Some(TypeInfo::Array { element: be })) => {
                todo.push((element, be));
            }
            // The same branches in the same (schema) order.
            (
                Some(TypeInfo::Alternate { branches }),
                Some(TypeInfo::Alternate { branches: bb }),
            ) if branches.len() == bb.len() => {
                todo.extend(branches.iter().copied().zip(bb.iter().copied()));
            }
            _ => {}
        }
    }
    shown
}

/// The name to show for type `ty` (a connected QEMU's opaque name shown
/// as the bindings' name for it, or as its kind).
pub fn shown(ty: &str) -> &str {
    let Some(c) = CONNECTED.get() else {
        return ty;
    };
    if let Some(s) = c.shown.get(ty) {
        return s;
    }
    match c.types.get(ty) {
        Some(TypeInfo::Object { .. }) => "object",
        Some(TypeInfo::Enum { .. }) => "enum",
        Some(TypeInfo::Array { .. }) => "list",
        Some(TypeInfo::Alternate { .. }) => "alternate",
        // Built-ins go by their own names (`str`, `int`, `bool`).
        _ => ty,
    }
}

/// Every command name: the connected QEMU's, else the bindings'.
pub fn command_names() -> Box<dyn Iterator<Item = &'static str>> {
    match CONNECTED.get() {
        Some(c) => Box::new(c.args.keys().copied()),
        None => Box::new(qmp_types::COMMANDS.iter().map(|m| m.name)),
    }
}

/// The shape of the QAPI type `name` (`None` for built-ins and unknown
/// names).
pub fn type_info(name: &str) -> Option<&'static TypeInfo> {
    if let Some(c) = CONNECTED.get() {
        return c.types.get(name).copied();
    }
    bound_type_info(name)
}

/// The QAPI name of `command`'s argument type.
pub fn arg_type(command: &str) -> Option<&'static str> {
    if let Some(c) = CONNECTED.get() {
        return c.args.get(command).copied().flatten();
    }
    bound_arg_type(command)
}

/// [`type_info`] in the bindings' types (for `help`, which shows their
/// names and documentation).
pub fn bound_type_info(name: &str) -> Option<&'static TypeInfo> {
    qmp_types::TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t)
}

/// [`arg_type`] in the bindings.
pub fn bound_arg_type(command: &str) -> Option<&'static str> {
    qmp_types::COMMANDS
        .iter()
        .find(|m| m.name == command)
        .and_then(|m| m.arg_type)
}

/// The object type an alternate stands for when given members (its
/// object branch); the type itself for objects.
fn as_object(ty: &str) -> Option<&'static TypeInfo> {
    match type_info(ty)? {
        t @ TypeInfo::Object { .. } => Some(t),
        TypeInfo::Alternate { branches } => branches.iter().find_map(|b| as_object(b)),
        _ => None,
    }
}

/// The members of object type `ty`: its own (a union's common ones), and
/// the branch's that the discriminator in `given` selects.
pub fn object_members(ty: &str, given: Option<&Value>) -> Vec<&'static MemberInfo> {
    let Some(TypeInfo::Object {
        members,
        tag,
        branches,
    }) = as_object(ty)
    else {
        return Vec::new();
    };
    let mut out: Vec<&MemberInfo> = members.iter().collect();
    if let Some(tag) = tag
        && let Some(value) = given.and_then(|g| g.get(tag)).and_then(Value::as_str)
        && let Some((_, branch)) = branches.iter().find(|(v, _)| *v == value)
    {
        for m in object_members(branch, given) {
            if !out.iter().any(|o| o.name == m.name) {
                out.push(m);
            }
        }
    }
    out
}

/// The type at `path` below `ty` (`["file", "driver"]`), with what was
/// typed there.
pub fn type_at<'v>(
    ty: &'static str,
    path: &[&str],
    given: Option<&'v Value>,
) -> Option<(&'static str, Option<&'v Value>)> {
    let Some((first, rest)) = path.split_first() else {
        return Some((ty, given));
    };
    let (child, child_given) = match first.parse::<usize>() {
        Ok(i) => {
            let element = list_element(ty)?;
            (element, given.and_then(|g| g.get(i)))
        }
        Err(_) => {
            let m = object_members(ty, given)
                .into_iter()
                .find(|m| m.name == *first)?;
            (m.type_name, given.and_then(|g| g.get(*first)))
        }
    };
    type_at(child, rest, child_given)
}

fn list_element(ty: &str) -> Option<&'static str> {
    match type_info(ty)? {
        TypeInfo::Array { element } => Some(element),
        TypeInfo::Alternate { branches } => branches.iter().find_map(|b| list_element(b)),
        _ => None,
    }
}

/// The values a member of type `ty` takes, where there are few: an
/// enum's, or `true`/`false`.
pub fn values_of(ty: &str) -> &'static [&'static str] {
    if ty == "bool" {
        return &["true", "false"];
    }
    match type_info(ty) {
        Some(TypeInfo::Enum { values }) => values,
        Some(TypeInfo::Alternate { branches }) => branches
            .iter()
            .map(|b| values_of(b))
            .find(|v| !v.is_empty())
            .unwrap_or(&[]),
        _ => &[],
    }
}

/// Whether a member of type `ty` is only ever an object (so `name.` is
/// the way on, never `name=`).
pub fn is_object(ty: &str) -> bool {
    matches!(type_info(ty), Some(TypeInfo::Object { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(v: Vec<&MemberInfo>) -> Vec<&str> {
        v.into_iter().map(|a| a.name).collect()
    }

    #[test]
    fn union_branches_follow_the_discriminator() {
        let ty = arg_type("blockdev-add").expect("has arguments");
        let base = names(object_members(ty, None));
        assert!(
            base.contains(&"driver") && !base.contains(&"file"),
            "{base:?}"
        );
        let given = json!({"driver": "qcow2"});
        let qcow2 = names(object_members(ty, Some(&given)));
        assert!(
            qcow2.contains(&"file") && qcow2.contains(&"backing"),
            "{qcow2:?}"
        );
        // `file` is a BlockdevRef (options or a node name): its members
        // are BlockdevOptions', and its own `driver` selects more.
        let given = json!({"driver": "qcow2", "file": {"driver": "file"}});
        let (file_ty, file_given) = type_at(ty, &["file"], Some(&given)).expect("file");
        let file = names(object_members(file_ty, file_given));
        assert!(
            file.contains(&"filename") && file.contains(&"aio"),
            "{file:?}"
        );
        let (aio, _) = type_at(ty, &["file", "aio"], Some(&given)).expect("aio");
        assert!(values_of(aio).contains(&"io_uring"), "{aio}");
    }

    #[test]
    fn lists_and_plain_arguments() {
        let ty = arg_type("blockdev-backup").expect("args");
        let (sync, _) = type_at(ty, &["sync"], None).expect("sync");
        assert_eq!(
            values_of(sync),
            ["top", "full", "none", "incremental", "bitmap"]
        );
        assert!(arg_type("query-status").is_none());
        let ty = arg_type("transaction").expect("args");
        let (action, _) = type_at(ty, &["actions", "0"], None).expect("an action");
        assert!(is_object(action), "{action}");
        let kinds = names(object_members(action, Some(&json!({"type": "abort"}))));
        assert!(kinds.contains(&"type"), "{kinds:?}");
    }
}
