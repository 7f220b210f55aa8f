//! Walking a command's argument types (the generated `TYPES`), for
//! completion and help of nested arguments: which members there are at
//! `file.` of `blockdev-add`, given the `driver=` typed so far.

use qmp_types::rt::{MemberInfo, TypeInfo};
use serde_json::Value;

/// The shape of the QAPI type `name` (`None` for built-ins and unknown
/// names).
pub fn type_info(name: &str) -> Option<&'static TypeInfo> {
    qmp_types::TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t)
}

/// The QAPI name of `command`'s argument type.
pub fn arg_type(command: &str) -> Option<&'static str> {
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
