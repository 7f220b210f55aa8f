//! Programs written against the bindings of one QEMU version, compiled
//! again, unchanged, against the bindings of that version merged with the
//! next (`tests/fixtures/evolution/<case>/{n,n1}.json`, generated into
//! `generated::evolution` by `cargo xtask regen`). Each kind of schema
//! change QEMU makes has a case; that the merged half compiles is the
//! stability rules holding (ARCHITECTURE.md), and
//! `evolution_programs_behave_the_same` (in `tests/tests/evolution.rs`)
//! checks that both halves put the same JSON on the wire. A generator
//! change that breaks users fails to compile here.
//!
//! `required_to_optional` has no program: it is the break the rules let
//! through, which the API check reports (`xtask`'s tests check that, and
//! `generated/evolution/api.md` lists what each case changes).

/// What the programs share: encoding, and decoding a reply and encoding
/// it again (what a program that forwards a reply does).
pub mod support {
    pub use serde_json::{Value, json};

    /// The wire form of `t`.
    pub fn enc<T: serde::Serialize>(t: &T) -> Value {
        serde_json::to_value(t).unwrap_or_else(|e| json!({ "encode error": e.to_string() }))
    }

    /// `reply` decoded as `T`, then encoded again (or the decode error).
    pub fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(reply: Value) -> Value {
        match serde_json::from_value::<T>(reply) {
            Ok(t) => enc(&t),
            Err(e) => json!({ "decode error": e.to_string() }),
        }
    }
}

/// One case: the same program (`$body`, returning what it sent and
/// read) in a module over N's bindings and one over the merged ones.
macro_rules! case {
    ($(#[$doc:meta])* $name:ident: $old:ident, $merged:ident, $($body:tt)*) => {
        $(#[$doc])*
        pub mod $name {
            /// Against the bindings of `n.json`.
            pub mod old {
                #[allow(unused_imports, reason = "each program uses part")]
                use crate::evolution::support::*;
                #[allow(unused_imports, reason = "each program uses part")]
                use crate::generated::evolution::$old::*;
                #[allow(unused_imports, reason = "each program uses part")]
                use qapi_rt::{Command, Event};

                /// The program: what it sends and reads, as JSON.
                pub fn run() -> Vec<Value> {
                    $($body)*
                }
            }

            /// The same source against `n.json` and `n1.json` merged
            /// (deprecations are expected there: removed items and
            /// renamed types).
            #[allow(deprecated, reason = "the newer version removed or renamed what the program uses")]
            pub mod merged {
                #[allow(unused_imports, reason = "each program uses part")]
                use crate::evolution::support::*;
                #[allow(unused_imports, reason = "each program uses part")]
                use crate::generated::evolution::$merged::*;
                #[allow(unused_imports, reason = "each program uses part")]
                use qapi_rt::{Command, Event};

                /// The program: what it sends and reads, as JSON.
                pub fn run() -> Vec<Value> {
                    $($body)*
                }
            }
        }
    };
}

case! {
    /// A type merged into another, the command's `data` moved to it, and
    /// a member widened from `str` to `StrOrNull` (QEMU 11.0's
    /// `migrate-set-parameters`).
    type_merged: type_merged_old, type_merged_merged,
    let set = MigrateSetParameters::new()
        .with_downtime_limit(300u64)
        .with_tls_creds("tls0");
    let mut unset = MigrateSetParameters::new();
    unset.tls_creds = Some(StrOrNull::N);
    let reply = json!({ "downtime-limit": 300, "tls-creds": "tls0" });
    vec![
        json!(MigrateSetParameters::NAME),
        enc(&set),
        enc(&unset),
        round_trip::<MigrationParameters>(reply),
    ]
}

case! {
    /// A member `str` widened to an alternate with `null`, in arguments
    /// and in a reply.
    str_to_alternate: str_to_alternate_old, str_to_alternate_merged,
    let name: String = "vm0".into();
    let set = SetName::new(name).with_opts(Opts::new("id0").with_name("n"));
    let literal = SetName::new("vm1");
    vec![
        enc(&set),
        enc(&literal),
        round_trip::<Opts>(json!({ "id": "x", "name": "y" })),
    ]
}

case! {
    /// A reply struct that became a union: the older reply still decodes
    /// (untagged) and encodes the same; its base member reads the same.
    struct_to_union: struct_to_union_old, struct_to_union_merged,
    let reply = json!({ "a": 1, "b": "s" });
    let a = serde_json::from_value::<Info>(reply.clone()).map(|i| i.a).ok();
    vec![json!(a), round_trip::<Info>(reply), json!(QueryInfo::NAME)]
}

case! {
    /// A command, an event, an enum value and a member removed: they
    /// stay (deprecated) and build the same JSON.
    removed: removed_old, removed_merged,
    let apply = Apply::new(Settings::new(1).with_gone(2).with_mode(Mode::Legacy));
    let old = OldCommand::new(5);
    let event = serde_json::from_value::<OldEvent>(json!({ "y": 7 })).map(|e| e.y).ok();
    vec![
        enc(&apply),
        enc(&old),
        json!(OldCommand::NAME),
        json!(OldEvent::NAME),
        json!(event),
        json!(Mode::Legacy.as_str()),
    ]
}

case! {
    /// An optional argument made required: it stays optional, so `new`
    /// and the setter are what they were.
    optional_to_required: optional_to_required_old, optional_to_required_merged,
    vec![enc(&Resize::new("disk0").with_size(1024)), enc(&Resize::new("disk1"))]
}

case! {
    /// A union branch added: building and reading the old branch is the
    /// same.
    branch_added: branch_added_old, branch_added_merged,
    let add = AddBackend::new("b0", Backend::file(FileOpts::new("/tmp/x")));
    vec![
        enc(&add),
        round_trip::<Backend>(json!({ "kind": "file", "path": "/p" })),
    ]
}

case! {
    /// A member added to a base (required in the newer version, so
    /// optional in the merged bindings): `new` is what it was.
    base_member_added: base_member_added_old, base_member_added_merged,
    let add = AddDisk::new(Disk::new("d0", 512));
    vec![
        enc(&add),
        round_trip::<Vec<Disk>>(json!([{ "id": "d0", "size": 512 }])),
    ]
}

case! {
    /// Types renamed: the old names are deprecated aliases.
    type_renamed: type_renamed_old, type_renamed_merged,
    let set = SetHash::new(QCryptoHashAlgorithm::Sha256);
    let info: Option<TargetInfo> = serde_json::from_value(json!({ "arch": "x86_64" })).ok();
    vec![
        enc(&set),
        json!(info.map(|i| i.arch)),
        round_trip::<TargetInfo>(json!({ "arch": "aarch64", "hash": "sha512" })),
    ]
}

case! {
    /// A command's own arguments moved into a named type taken `boxed`:
    /// the command keeps its struct shape.
    boxed: boxed_old, boxed_merged,
    let snap = Snapshot::new("disk0").with_name("s1");
    vec![enc(&snap), json!(Snapshot::NAME)]
}

case! {
    /// A union branch, an optional member and an event grown past the
    /// size that boxes (their shapes kept by `shapes.txt`), and a `number`
    /// added inside a struct (still `Eq` and `Hash`): code that matches
    /// on the branch, reads the member by value, matches the event in
    /// `AnyEvent` and puts the reply in a set compiles against both.
    grew_large: grew_large_old, grew_large_merged,
    let dev = Device::disk(DiskOpts::new("/a.img"));
    let path = match &dev {
        Device::Disk(d) => d.path.clone(),
        _ => String::new(),
    };
    let info: Info = match serde_json::from_value(json!({"id": "i", "limits": {"iops": 5}})) {
        Ok(i) => i,
        Err(e) => return vec![json!(e.to_string())],
    };
    let limits: Option<Limits> = info.limits.clone();
    let iops = limits.map(|l| l.iops);
    let set: std::collections::HashSet<Info> = [info.clone(), info].into_iter().collect();
    let ready = AnyEvent::DeviceReady(DeviceReady::new("i"));
    let id = match ready {
        AnyEvent::DeviceReady(r) => r.id,
        _ => String::new(),
    };
    vec![enc(&AddDevice::new(dev)), json!(path), json!(iops), json!(set.len()), json!(id)]
}
