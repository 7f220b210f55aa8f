//! Declarative macros that generated code calls to implement the
//! repetitive parts of each type: wire (de)serialization of structs and
//! enums, and struct builders.
//!
//! They expand to what a hand-written implementation would be, leaner than
//! serde's derives: a struct deserializes from a JSON object in one pass
//! that maps each key to a member without allocating, keeps unknown keys
//! (in its `extra`, or in a flattened member) to encode them again, and
//! accepts no other shape. That
//! halves the compile time of the generated crate, and a generator that
//! emits one short macro call per type is much faster than one that spells
//! out every impl.

/// Implements `serde::Serialize` and `serde::Deserialize` for a generated
/// struct, as a JSON object.
///
/// ```text
/// qapi_struct!(Name {
///     0 req field "wire-name",     // required member
///     1 opt other "other",         // optional member (an Option); a null
///                                  // (its type takes none) is kept, as below
///     2 anyopt any "any",          // optional member whose type takes null
/// } flatten rest                   // optional: one member holding the other
///                                  // keys (a union's branch, or a map)
///   required 1);                   // optional: the required members (a bit per
///                                  // index), for the error naming one
/// // or, instead of `flatten`: `extra extra`, the `Extra` field that keeps
/// // unknown keys (and values the members' types cannot hold)
/// ```
///
/// Member indices are positions in the list, from 0. The members' types
/// are those of the struct's fields (inferred, so not repeated here).
///
/// What is done per member is a call of a function of the kind's module
/// (`__private::req`, `opt`, `anyopt`), and the decoder has one `?` for
/// all its members: the compiler's borrow and type checking grow with the
/// branches and exits per member, and the generated crate has thousands
/// of members.
#[macro_export]
macro_rules! qapi_struct {
    (
        $name:ident {
            $( $idx:literal $kind:ident $field:ident $wire:literal ),* $(,)?
        }
        $( flatten $flat:ident )?
        $( extra $extra:ident )?
        $( required $required:literal )?
    ) => {
        #[allow(deprecated, reason = "deprecated members are still on the wire")]
        impl $crate::__private::serde::Serialize for $name {
            fn serialize<__S: $crate::__private::serde::Serializer>(
                &self,
                serializer: __S,
            ) -> ::std::result::Result<__S::Ok, __S::Error> {
                // Each write after a failed one does nothing; `end` gives
                // the first error.
                #[allow(unused_mut, reason = "a struct without members writes no entry")]
                let mut map = $crate::__private::Writer::new(serializer)?;
                #[allow(unused_variables, reason = "read by a struct with `extra` only")]
                let names: &[&'static str] = &[$($wire),*];
                $( $crate::__private::$kind::ser(&mut map, $idx, $wire, &self.$field); )*
                $( map.flat(&self.$flat); )?
                $( map.extra(&self.$extra, names); )?
                map.end()
            }
        }
        #[allow(deprecated, reason = "deprecated members are still on the wire")]
        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<__D: $crate::__private::serde::Deserializer<'de>>(
                deserializer: __D,
            ) -> ::std::result::Result<Self, __D::Error> {
                $crate::__private::deserialize_struct(deserializer)
            }
        }
        #[allow(deprecated, reason = "deprecated members are still on the wire")]
        impl $crate::__private::DecodeStruct for $name {
            fn decode<'de, __A: $crate::__private::serde::de::MapAccess<'de>>(
                mut map: __A,
            ) -> ::std::result::Result<$name, __A::Error> {
                let names: &[&'static str] = &[$($wire),*];
                $( let mut $field = ::std::option::Option::None; )*
                $( let mut $flat = $crate::__private::Flat::default(); )?
                $( let mut $extra = $crate::Extra::default(); )?
                #[allow(unused_mut, reason = "a struct without optional members")]
                let mut state = $crate::__private::Decoding::new(::std::stringify!($name));
                let seed = $crate::__private::FieldSeed {
                    find: |key: &str| match key {
                        $( $wire => ::std::option::Option::Some($idx), )*
                        _ => ::std::option::Option::None,
                    },
                    keep_unknown: $crate::__qapi_flag!($($flat)? $($extra)?),
                };
                // One `?` for all members: each arm gives the member's
                // result (an early return per member would be as many
                // exits for the compiler to check).
                while let ::std::option::Option::Some(key) = map.next_key_seed(seed)? {
                    match key {
                        $( $crate::__private::Field::Known($idx) => {
                            $crate::__private::$kind::de(&mut map, &mut state, $idx, $wire, &mut $field)
                        } )*
                        other => $crate::__qapi_de_other!(map, state, other $(, flat $flat)? $(, extra $extra)?),
                    }?;
                }
                $( state.keep_into(&mut $flat); )?
                $( state.keep_into(&mut $extra); )?
                // Every required member came (an optional one is always
                // `Some` here: its value, or `None`).
                #[allow(irrefutable_let_patterns, reason = "a struct without members")]
                if let ($( ::std::option::Option::Some($field), )*) =
                    ($( $crate::__private::$kind::present($field), )*)
                {
                    ::std::result::Result::Ok($name {
                        $( $field, )*
                        $( $flat: $crate::__private::from_flat::<_, __A::Error>($flat)?, )?
                        $( $extra, )?
                    })
                } else {
                    ::std::result::Result::Err(state.missing(names, 0 $( | $required )?))
                }
            }
        }
    };
}

/// `new(required..)` and, per optional member, a `with_x` setter (the
/// value) and a `maybe_x` one (an `Option`: set or absent).
///
/// ```text
/// qapi_builder!(Name
///     new { field: Type => into, other: Type => boxed }
///     init { rest = $crate::__private::serde_json::Map::new() }
///     set { with_opt maybe_opt opt "opt": Type => into }
/// );
/// ```
#[macro_export]
macro_rules! qapi_builder {
    (
        $name:ident
        new { }
        init { $( $ifield:ident = $iexpr:expr ),* $(,)? }
        set { $( $set:tt )* }
    ) => {
        $crate::qapi_builder!(@impl $name
            (" Builds it with every optional member absent.") { }
            init { $( $ifield = $iexpr ),* }
            set { $( $set )* }
        );
    };
    (
        $name:ident
        new { $( $param:ident : $pty:ty => $pwrap:ident ),+ $(,)? }
        init { $( $ifield:ident = $iexpr:expr ),* $(,)? }
        set { $( $set:tt )* }
    ) => {
        $crate::qapi_builder!(@impl $name
            (" Builds it from its required members; optional ones are absent.")
            { $( $param : $pty => $pwrap ),+ }
            init { $( $ifield = $iexpr ),* }
            set { $( $set )* }
        );
    };
    (
        @impl $name:ident
        ($doc:literal) { $( $param:ident : $pty:ty => $pwrap:ident ),* $(,)? }
        init { $( $ifield:ident = $iexpr:expr ),* $(,)? }
        set { $( $(#[$attr:meta])* $setter:ident $maybe:ident $ofield:ident $owire:literal : $oty:ty => $owrap:ident ),* $(,)? }
    ) => {
        #[allow(deprecated, reason = "constructors set every member")]
        impl $name {
            #[doc = $doc]
            #[allow(clippy::new_without_default, reason = "some have required members")]
            pub fn new($( $param: $crate::__qapi_param!($pwrap, $pty) ),*) -> Self {
                Self {
                    $( $param: $crate::__qapi_wrap!($pwrap, $param), )*
                    $( $ifield: $iexpr, )*
                    $( $ofield: ::std::option::Option::None, )*
                }
            }
            $(
                #[doc = ::std::concat!(" Sets `", $owire, "`.")]
                #[must_use]
                $(#[$attr])*
                pub fn $setter(mut self, $ofield: $crate::__qapi_param!($owrap, $oty)) -> Self {
                    self.$ofield = ::std::option::Option::Some($crate::__qapi_wrap!($owrap, $ofield));
                    self
                }
                #[doc = ::std::concat!(" Sets `", $owire, "` to a value, or leaves it absent (`None`): a caller's `Option` in the builder chain.")]
                #[must_use]
                $(#[$attr])*
                pub fn $maybe(mut self, $ofield: ::std::option::Option<$crate::__qapi_param!($owrap, $oty)>) -> Self {
                    self.$ofield = $ofield.map(|v| $crate::__qapi_wrap!($owrap, v));
                    self
                }
            )*
        }
    };
}

/// `with_property(name, value)` for a command with free-form arguments
/// (`device_add`: the device's properties), kept in its map `$field`.
///
/// ```text
/// qapi_properties!(DeviceAdd, properties);
/// ```
#[macro_export]
macro_rules! qapi_properties {
    ($name:ident, $field:ident) => {
        impl $name {
            /// Adds a free-form argument (a device's property:
            /// `with_property("drive", "disk0")`), replacing one of the
            /// same name.
            #[must_use]
            pub fn with_property(
                mut self,
                name: impl ::std::convert::Into<::std::string::String>,
                value: impl ::std::convert::Into<$crate::__private::serde_json::Value>,
            ) -> Self {
                self.$field.insert(name.into(), value.into());
                self
            }
        }
    };
}

/// `as_str`, `from_wire` (any string: one no value names is kept as
/// `Unknown`, as a newer QEMU's value is), `Display`, `AsRef<str>`,
/// `FromStr` (a known value only, else [`ParseEnumError`](crate::ParseEnumError)),
/// `Serialize` and `Deserialize` (as `from_wire`) for a generated enum,
/// whose last variant is `Unknown(String)`.
///
/// ```text
/// qapi_enum!(Name { Variant = "wire", Other = "other" });
/// ```
#[macro_export]
macro_rules! qapi_enum {
    ($name:ident { $( $variant:ident = $wire:literal ),* $(,)? }) => {
        #[allow(deprecated, reason = "every value is mapped")]
        impl $name {
            /// The value as on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Unknown(s) => s,
                }
            }
            /// The value for a wire string; unknown strings are kept.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $( $wire => Self::$variant, )*
                    other => Self::Unknown(::std::string::ToString::to_string(other)),
                }
            }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        /// A value the bindings know; any other string is an error (a
        /// caller's typo never reaches QEMU). `from_wire` keeps any string.
        impl ::std::str::FromStr for $name {
            type Err = $crate::ParseEnumError;
            fn from_str(s: &str) -> ::std::result::Result<Self, $crate::ParseEnumError> {
                match Self::from_wire(s) {
                    Self::Unknown(_) => ::std::result::Result::Err(
                        $crate::__private::parse_enum_error(::std::stringify!($name), s, &[$($wire),*]),
                    ),
                    known => ::std::result::Result::Ok(known),
                }
            }
        }
        impl $crate::__private::serde::Serialize for $name {
            fn serialize<__S: $crate::__private::serde::Serializer>(
                &self,
                s: __S,
            ) -> ::std::result::Result<__S::Ok, __S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<__D: $crate::__private::serde::Deserializer<'de>>(
                d: __D,
            ) -> ::std::result::Result<Self, __D::Error> {
                $crate::__private::deserialize_enum_named(
                    d,
                    Self::from_wire,
                    |v| ::std::matches!(v, Self::Unknown(_)),
                    &[$($wire),*],
                    ::std::stringify!($name),
                )
            }
        }
    };
}

/// `Serialize` and `Deserialize` for a newtype, as its inner value.
#[macro_export]
macro_rules! qapi_newtype {
    ($name:ident) => {
        impl $crate::__private::serde::Serialize for $name {
            fn serialize<__S: $crate::__private::serde::Serializer>(
                &self,
                s: __S,
            ) -> ::std::result::Result<__S::Ok, __S::Error> {
                $crate::__private::serde::Serialize::serialize(&self.0, s)
            }
        }
        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<__D: $crate::__private::serde::Deserializer<'de>>(
                d: __D,
            ) -> ::std::result::Result<Self, __D::Error> {
                $crate::__private::serde::Deserialize::deserialize(d).map(Self)
            }
        }
    };
}

/// The discriminator's name and value, and the wire format, of a union's
/// branch enum (whose last variant is `Unknown { tag, members }`).
///
/// ```text
/// qapi_union!(Name, "discriminator",
///     data { Variant = "value", .. }   // variants holding the branch's type
///     unit { Other = "other", .. }     // variants of branches without members
///     untagged Untagged = "value");    // optional: the variant for what
///                                      // older QEMU sends without the
///                                      // discriminator (that branch's type)
/// ```
#[macro_export]
macro_rules! qapi_union {
    (
        $name:ident, $tag:literal,
        data { $( $dv:ident = $dwire:literal ),* $(,)? }
        unit { $( $uv:ident = $uwire:literal ),* $(,)? }
        $( untagged $tv:ident = $twire:literal )?
    ) => {
        #[allow(deprecated, reason = "every branch is mapped")]
        impl $name {
            /// The discriminator's name on the wire.
            pub const DISCRIMINATOR: &'static str = $tag;
            /// The discriminator's value.
            pub fn tag(&self) -> &str {
                match self {
                    $( Self::$dv(..) => $dwire, )*
                    $( Self::$uv => $uwire, )*
                    $( Self::$tv(..) => $twire, )?
                    Self::Unknown { tag, .. } => tag,
                }
            }
        }
        #[allow(deprecated, reason = "every branch is mapped")]
        impl $crate::__private::serde::Serialize for $name {
            fn serialize<__S: $crate::__private::serde::Serializer>(
                &self,
                s: __S,
            ) -> ::std::result::Result<__S::Ok, __S::Error> {
                let members = match self {
                    $( Self::$dv(x) => $crate::__private::to_members(x), )*
                    $( Self::$uv => ::std::result::Result::Ok($crate::__private::serde_json::Map::new()), )*
                    $( Self::$tv(x) => {
                        return $crate::__private::serialize_untagged(s, $crate::__private::to_members(x));
                    } )?
                    Self::Unknown { members, .. } => ::std::result::Result::Ok(members.clone()),
                };
                $crate::__private::serialize_branch(s, $tag, self.tag(), members)
            }
        }
        #[allow(deprecated, reason = "every branch is mapped")]
        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<__D: $crate::__private::serde::Deserializer<'de>>(
                d: __D,
            ) -> ::std::result::Result<Self, __D::Error> {
                let members = <$crate::__private::Flat as $crate::__private::serde::Deserialize>::deserialize(d)?;
                <Self as $crate::__private::FromFlat>::from_flat(members)
            }
        }
        #[allow(deprecated, reason = "every branch is mapped")]
        impl $crate::__private::FromFlat for $name {
            fn from_flat<__E: $crate::__private::serde::de::Error>(
                mut members: $crate::__private::Flat,
            ) -> ::std::result::Result<Self, __E> {
                let tag = $crate::__private::take_tag(&mut members, $tag)?;
                $crate::__qapi_union_pick!($name, $tag, tag, members,
                    data { $( $dv = $dwire ),* } unit { $( $uv = $uwire ),* } $( untagged $tv )?)
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_union_pick {
    ($name:ident, $tag:literal, $tagv:ident, $members:ident, data { $( $dv:ident = $dwire:literal ),* }
        unit { $( $uv:ident = $uwire:literal ),* } $( untagged $tv:ident )?) => {{
        let ::std::option::Option::Some($tagv) = $tagv else {
            // Without the discriminator: the branch older QEMU sends so,
            // if there is one.
            $( return $crate::__private::from_members($members).map(Self::$tv); )?
            #[allow(unreachable_code, reason = "a union with an untagged branch returned above")]
            return ::std::result::Result::Err(
                <__E as $crate::__private::serde::de::Error>::custom(
                    ::std::concat!("missing discriminator '", $tag, "'"),
                ),
            );
        };
        match $tagv.as_str() {
            $( $dwire => $crate::__private::from_members($members).map(Self::$dv), )*
            // A branch without members that came with some (a newer
            // QEMU's): kept whole, as an unknown branch, so nothing is lost.
            $( $uwire if $members.is_empty() => ::std::result::Result::Ok(Self::$uv), )*
            $( $uwire => {
                $crate::__private::record_unknown_all(::std::stringify!($name), &$members);
                ::std::result::Result::Ok(Self::Unknown { tag: $tagv, members: $members.into_map() })
            } )*
            _ => {
                $crate::__private::record_unknown_branch(::std::stringify!($name), &$tagv, &$members);
                ::std::result::Result::Ok(Self::Unknown { tag: $tagv, members: $members.into_map() })
            }
        }
    }};
}

/// Implements [`Command`](crate::Command) for a command's argument
/// type.
///
/// ```text
/// qapi_command!(Name, "wire-name", ReplyType, { since: "3.0", .. });
/// qapi_command!(Name, "wire-name", ReplyType, Protocol, { .. });
/// ```
///
/// The protocol ([`Qmp`](crate::Qmp) when left out, or
/// [`Qga`](crate::Qga)) is the command's `Command::Protocol`.
///
/// The braces hold the fields of [`CommandMeta`](crate::CommandMeta)
/// other than `name`, in its order, each only where it differs from the
/// default (no argument type, `false`, `success_response: true`, `None`,
/// empty lists); an `Option` is written as its value.
#[macro_export]
macro_rules! qapi_command {
    ($ty:ident, $wire:literal, $returns:ty, { $($meta:tt)* }) => {
        $crate::qapi_command!($ty, $wire, $returns, $crate::Qmp, { $($meta)* });
    };
    ($ty:ident, $wire:literal, $returns:ty, $protocol:ty, {
        $( arg_type: $arg:literal, )?
        $( ret_type: $ret:literal, )?
        $( allow_oob: $oob:literal, )?
        $( allow_preconfig: $pre:literal, )?
        $( success_response: $ok:literal, )?
        $( deprecated: $dep:literal, )?
        $( unstable: $uns:literal, )?
        $( since: $since:literal, )?
        $( condition: $cond:literal, )?
        $( features: [ $( $feat:literal ),* $(,)? ], )?
        $( versions: [ $( $ver:literal ),* $(,)? ], )?
        $( partial_args: [ $( ( $pa:literal, [ $( $pav:literal ),* $(,)? ] ) ),* $(,)? ], )?
    }) => {
        #[allow(deprecated, reason = "deprecated commands are still commands")]
        impl $crate::Command for $ty {
            type Protocol = $protocol;
            const NAME: &'static str = $wire;
            type Returns = $returns;
            const META: $crate::CommandMeta = $crate::CommandMeta {
                name: $wire,
                arg_type: $crate::__qapi_opt!($($arg)?),
                ret_type: $crate::__qapi_opt!($($ret)?),
                allow_oob: $crate::__qapi_or!(false $(, $oob)?),
                allow_preconfig: $crate::__qapi_or!(false $(, $pre)?),
                success_response: $crate::__qapi_or!(true $(, $ok)?),
                deprecated: $crate::__qapi_or!(false $(, $dep)?),
                unstable: $crate::__qapi_or!(false $(, $uns)?),
                since: $crate::__qapi_opt!($($since)?),
                condition: $crate::__qapi_opt!($($cond)?),
                features: &[ $( $( $feat ),* )? ],
                versions: &[ $( $( $ver ),* )? ],
                partial_args: &[ $( $( ( $pa, &[ $( $pav ),* ] ) ),* )? ],
            };
        }
    };
}

/// Implements the runtime's [`Event`](crate::Event) trait for an event's
/// data type (`Any` is `AnyEvent` of the parent module, which
/// [`qapi_any_event!`](crate::qapi_any_event) defines), and `From<Type> for AnyEvent`.
///
/// ```text
/// qapi_event!(Name, "WIRE_NAME", { versions: ["10.0.2"], since: "3.0" });
/// ```
///
/// The braces hold the fields of [`EventMeta`](crate::EventMeta) other
/// than `name`, in the order `versions`, `deprecated`, `unstable`,
/// `since`, `condition`, each only where it differs from the default;
/// the `AnyEvent` variant has the type's name.
#[macro_export]
macro_rules! qapi_event {
    ($ty:ident, $wire:literal, {
        $( versions: [ $( $ver:literal ),* $(,)? ], )?
        $( deprecated: $dep:literal, )?
        $( unstable: $uns:literal, )?
        $( since: $since:literal, )?
        $( condition: $cond:literal, )?
        $( boxed: $boxed:tt, )?
    }) => {
        #[allow(deprecated, reason = "deprecated events still arrive")]
        impl $crate::Event for $ty {
            type Any = super::AnyEvent;
            const NAME: &'static str = $wire;
            const META: $crate::EventMeta = $crate::EventMeta {
                name: $wire,
                deprecated: $crate::__qapi_or!(false $(, $dep)?),
                unstable: $crate::__qapi_or!(false $(, $uns)?),
                since: $crate::__qapi_opt!($($since)?),
                condition: $crate::__qapi_opt!($($cond)?),
                versions: &[ $( $( $ver ),* )? ],
            };
            fn from_any(event: super::AnyEvent) -> ::std::option::Option<Self> {
                match event {
                    super::AnyEvent::$ty(x) => {
                        ::std::option::Option::Some($crate::__qapi_event_box!(unbox x $(, $boxed)?))
                    }
                    _ => ::std::option::Option::None,
                }
            }
            fn from_any_ref(event: &super::AnyEvent) -> ::std::option::Option<&Self> {
                match event {
                    super::AnyEvent::$ty(x) => ::std::option::Option::Some(x),
                    _ => ::std::option::Option::None,
                }
            }
        }
        impl ::std::convert::From<$ty> for super::AnyEvent {
            fn from(x: $ty) -> Self {
                super::AnyEvent::$ty($crate::__qapi_event_box!(box x $(, $boxed)?))
            }
        }
    };
}

/// An `AnyEvent` variant's payload (`ty`), or its value into (`box`) or
/// out of (`unbox`) it: boxed for an event the generator marks `boxed`
/// (a large one, so that the enum stays small).
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_event_box {
    (ty $t:ty) => { $t };
    (ty $t:ty, true) => { ::std::boxed::Box<$t> };
    (box $x:expr) => { $x };
    (box $x:expr, true) => { ::std::boxed::Box::new($x) };
    (unbox $x:expr) => { $x };
    (unbox $x:expr, true) => { *$x };
}

/// `Some(value)`, or `None` when there is none.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_opt {
    () => {
        ::std::option::Option::None
    };
    ($v:literal) => {
        ::std::option::Option::Some($v)
    };
}

/// The value given, or the default.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_or {
    ($default:literal) => {
        $default
    };
    ($default:literal, $v:literal) => {
        $v
    };
}

/// Defines `AnyEvent`, the enum over every event of a schema (a variant
/// per event type, named like it, plus `Unknown` and `Malformed`), its
/// methods, and `EVENTS`, every event's metadata in schema order.
///
/// ```text
/// qapi_any_event! { (Shutdown, "SHUTDOWN"), (StopEvent, "STOP"),
///     (VncInitialized, "VNC_INITIALIZED", true), }
/// ```
///
/// `true`: the variant holds the event boxed (the generator boxes large
/// events, as it does large union branches, so that the enum stays
/// small); [`qapi_event!`] is then told `boxed: true` too.
/// Each type must implement `Event` (see [`qapi_event!`]).
#[macro_export]
macro_rules! qapi_any_event {
    ( $( ($ty:ident, $wire:literal $(, $boxed:tt)?) ),* $(,)? ) => {
        /// Any event of the schema, or one it doesn't know.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        #[allow(deprecated, reason = "deprecated events still arrive")]
        pub enum AnyEvent {
            $(
                #[doc = ::std::concat!(" `", $wire, "`")]
                $ty($crate::__qapi_event_box!(ty $ty $(, $boxed)?)),
            )*
            /// An event whose name this version of the bindings doesn't
            /// know.
            Unknown {
                /// Its name.
                name: ::std::string::String,
                /// Its data (`{}` if it had none).
                data: $crate::__private::serde_json::Value,
            },
            /// An event whose name the bindings know, with data that does
            /// not fit its type (a QEMU outside the schema's range, or a
            /// bug): kept with the decoder's message, so that nothing is
            /// lost in silence. Readers of typed events are told of it as
            /// an error.
            Malformed {
                /// Its name.
                name: ::std::string::String,
                /// Its data as received.
                data: $crate::__private::serde_json::Value,
                /// Why it does not decode (with the bad member's path).
                error: ::std::string::String,
            },
        }

        #[allow(deprecated, reason = "deprecated events still arrive")]
        impl AnyEvent {
            /// The event's name on the wire.
            pub fn name(&self) -> &str {
                match self {
                    $( Self::$ty(_) => $wire, )*
                    Self::Unknown { name, .. } | Self::Malformed { name, .. } => name,
                }
            }

            /// Decodes the `data` of event `name`. An unknown name gives
            /// [`AnyEvent::Unknown`]; a known one with bad data, the
            /// decoder's error (a reader that keeps such an event makes it
            /// [`AnyEvent::Malformed`]).
            pub fn deserialize_data<'de, __D: $crate::__private::serde::Deserializer<'de>>(
                name: &str,
                data: __D,
            ) -> ::std::result::Result<Self, __D::Error> {
                ::std::result::Result::Ok(match name {
                    $( $wire => Self::$ty($crate::__private::serde::Deserialize::deserialize(data)?), )*
                    _ => Self::Unknown {
                        name: ::std::string::ToString::to_string(name),
                        data: $crate::__private::serde::Deserialize::deserialize(data)?,
                    },
                })
            }

            /// Encodes the event's data.
            pub fn serialize_data<__S: $crate::__private::serde::Serializer>(
                &self,
                s: __S,
            ) -> ::std::result::Result<__S::Ok, __S::Error> {
                match self {
                    $( Self::$ty(x) => $crate::__private::serde::Serialize::serialize(x, s), )*
                    Self::Unknown { data, .. } | Self::Malformed { data, .. } => {
                        $crate::__private::serde::Serialize::serialize(data, s)
                    }
                }
            }
        }

        /// Metadata of every event of the schema, in schema order.
        #[allow(deprecated, reason = "deprecated events are listed too")]
        pub static EVENTS: &[$crate::EventMeta] =
            &[ $( <$ty as $crate::Event>::META ),* ];
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_de_other {
    ($map:ident, $state:ident, $other:ident) => {
        $crate::__private::skip_member(&mut $map, $state.type_name(), $other)
    };
    ($map:ident, $state:ident, $other:ident, extra $extra:ident) => {
        $crate::__private::keep_member(&mut $map, $state.type_name(), $other, &mut $extra)
    };
    ($map:ident, $state:ident, $other:ident, flat $flat:ident) => {
        $crate::__private::keep_flat(&mut $map, $other, &mut $flat)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_flag {
    () => {
        false
    };
    ($x:ident) => {
        true
    };
}

/// A constructor's or setter's parameter type: `impl Into<T>`, or `T`
/// itself for an integer (`plain`), so that a literal such as `1 << 20`
/// takes the member's type (an `impl Into<u64>` parameter would make it
/// an `i32`, which does not convert).
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_param {
    (plain, $t:ty) => {
        $t
    };
    ($wrap:ident, $t:ty) => {
        impl ::std::convert::Into<$t>
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_wrap {
    (into, $e:expr) => {
        ::std::convert::Into::into($e)
    };
    (plain, $e:expr) => {
        $e
    };
    (boxed, $e:expr) => {
        ::std::boxed::Box::new(::std::convert::Into::into($e))
    };
}
