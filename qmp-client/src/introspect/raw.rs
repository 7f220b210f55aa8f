//! A `query-qmp-schema` reply read straight from its JSON text into the
//! index, borrowing its strings while it reads: about ten times cheaper
//! than decoding the generated `SchemaInfo` types first (a cached schema
//! is read on every `qmp exec`). Only what the index needs is read;
//! every other member is skipped.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

use super::{Entry, Field, Ty};

/// One `SchemaInfo`, every meta-type's members optional.
#[derive(Deserialize)]
pub(super) struct RawInfo<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(rename = "meta-type", borrow)]
    meta: Cow<'a, str>,
    #[serde(default, borrow)]
    features: Vec<Cow<'a, str>>,
    #[serde(rename = "json-type", default, borrow)]
    json_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    members: Vec<RawMember<'a>>,
    #[serde(default, borrow)]
    values: Vec<Cow<'a, str>>,
    #[serde(rename = "element-type", default, borrow)]
    element: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tag: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    variants: Vec<RawVariant<'a>>,
    #[serde(rename = "arg-type", default, borrow)]
    arg_type: Option<Cow<'a, str>>,
    #[serde(rename = "ret-type", default, borrow)]
    ret_type: Option<Cow<'a, str>>,
    #[serde(rename = "allow-oob", default)]
    allow_oob: bool,
}

/// An object's member, an enum's member or an alternate's branch.
#[derive(Deserialize)]
struct RawMember<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(rename = "type", default, borrow)]
    ty: Option<Cow<'a, str>>,
    /// `default` present (even `null`): the member is optional.
    #[serde(default, deserialize_with = "present")]
    default: bool,
    #[serde(default, borrow)]
    features: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawVariant<'a> {
    #[serde(borrow)]
    case: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
}

/// A whole reply.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(rename = "return", borrow)]
    list: Vec<RawInfo<'a>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The reply's list: the array itself, or a whole reply.
pub(super) fn parse(json: &[u8]) -> Result<Vec<RawInfo<'_>>, String> {
    // One check of the whole text instead of one per string.
    let text = std::str::from_utf8(json).map_err(|e| e.to_string())?;
    let r = if text.trim_start().starts_with('{') {
        serde_json::from_str::<Reply<'_>>(text).map(|r| r.list)
    } else {
        serde_json::from_str(text)
    };
    r.map_err(|e| e.to_string())
}

fn own(v: Vec<Cow<'_, str>>) -> Vec<String> {
    v.into_iter().map(Cow::into_owned).collect()
}

/// The index of `list`: commands, events, types (with their features).
pub(super) type Index = (
    HashMap<String, Entry>,
    HashMap<String, Entry>,
    HashMap<String, (Ty, Vec<String>)>,
);

/// Indexes `list`.
pub(super) fn index(list: Vec<RawInfo<'_>>) -> Index {
    let (mut commands, mut events, mut types) = (HashMap::new(), HashMap::new(), HashMap::new());
    for i in list {
        let name = i.name.into_owned();
        let features = own(i.features);
        let entry = |ret: Option<Cow<'_, str>>| Entry {
            arg_type: i.arg_type.clone().unwrap_or_default().into_owned(),
            ret_type: ret.map(Cow::into_owned),
            allow_oob: i.allow_oob,
            features: features.clone(),
        };
        let ty = match &*i.meta {
            "command" => {
                commands.insert(name, entry(Some(i.ret_type.clone().unwrap_or_default())));
                continue;
            }
            "event" => {
                events.insert(name, entry(None));
                continue;
            }
            "builtin" => Ty::Builtin(qmp_types::JSONType::from_wire(
                i.json_type.as_deref().unwrap_or("value"),
            )),
            // QEMU before 6.2 sends `values` alone.
            "enum" if i.members.is_empty() => Ty::Enum(
                i.values
                    .into_iter()
                    .map(|v| (v.into_owned(), Vec::new()))
                    .collect(),
            ),
            "enum" => Ty::Enum(
                i.members
                    .into_iter()
                    .filter_map(|m| Some((m.name?.into_owned(), own(m.features))))
                    .collect(),
            ),
            "array" => Ty::Array(i.element.unwrap_or_default().into_owned()),
            "object" => Ty::Object {
                members: i
                    .members
                    .into_iter()
                    .filter_map(|m| {
                        Some(Field {
                            name: m.name?.into_owned(),
                            ty: m.ty?.into_owned(),
                            optional: m.default,
                        })
                    })
                    .collect(),
                tag: i.tag.map(Cow::into_owned),
                variants: i
                    .variants
                    .into_iter()
                    .map(|v| (v.case.into_owned(), v.ty.into_owned()))
                    .collect(),
            },
            "alternate" => Ty::Alternate(
                i.members
                    .into_iter()
                    .filter_map(|m| Some(m.ty?.into_owned()))
                    .collect(),
            ),
            // A meta-type newer than the bindings: nothing to check.
            _ => continue,
        };
        types.insert(name, (ty, features));
    }
    (commands, events, types)
}
