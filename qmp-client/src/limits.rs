//! What QEMU's JSON parser refuses: its limits (nesting, tokens, size),
//! Unicode noncharacters in strings, and a key repeated in one object.
//! QEMU answers such a message with errors that carry no `id`, so the
//! client refuses it before sending (`wire::encode_checked`; a repeated
//! key only in `exec-oob` commands, whose replies are found by id alone:
//! an in-band command's parse error comes back in order, as its reply).

/// QEMU's JSON streamer (`qobject/json-streamer.c`) rejects a message
/// nested deeper than this (brackets and braces together)...
pub(crate) const QEMU_MAX_NESTING: usize = 1 << 10;
/// ...or with more tokens than this...
pub(crate) const QEMU_MAX_TOKEN_COUNT: usize = 2 << 20;
/// ...or with more bytes of tokens than this.
pub(crate) const QEMU_MAX_TOKEN_SIZE: usize = 64 << 20;

/// Checks a command against QEMU's JSON parser limits. QEMU answers a
/// message over them with error replies that carry no `id` (one for each
/// piece of the rest of the message), which no call could be matched
/// with: such a command is refused before it is sent.
pub(crate) fn check_parser_limits(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() > QEMU_MAX_TOKEN_SIZE {
        return Err(format!(
            "it is {} bytes long; QEMU's JSON parser takes at most {QEMU_MAX_TOKEN_SIZE}",
            bytes.len()
        ));
    }
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    let mut tokens = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut in_scalar = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            } else if b >= 0xEF
                && let Some(c) = noncharacter_at(&bytes[i..])
            {
                return Err(format!(
                    "a string in it holds U+{c:04X}, a Unicode noncharacter, which QEMU's JSON parser refuses"
                ));
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                in_scalar = false;
                tokens += 1;
            }
            b'{' | b'[' => {
                depth += 1;
                max_depth = max_depth.max(depth);
                in_scalar = false;
                tokens += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                in_scalar = false;
                tokens += 1;
            }
            b':' | b',' => {
                in_scalar = false;
                tokens += 1;
            }
            b' ' | b'\n' | b'\t' | b'\r' => in_scalar = false,
            _ => {
                if !in_scalar {
                    in_scalar = true;
                    tokens += 1;
                }
            }
        }
    }
    if max_depth > QEMU_MAX_NESTING {
        return Err(format!(
            "it is nested {max_depth} levels deep; QEMU's JSON parser takes at most {QEMU_MAX_NESTING}"
        ));
    }
    if tokens > QEMU_MAX_TOKEN_COUNT {
        return Err(format!(
            "it has {tokens} JSON tokens; QEMU's JSON parser takes at most {QEMU_MAX_TOKEN_COUNT}"
        ));
    }
    Ok(())
}

/// The Unicode noncharacter (U+FDD0..=U+FDEF, or U+xFFFE / U+xFFFF in any
/// plane) whose UTF-8 encoding starts `bytes`, if one does. QEMU refuses
/// them in strings ("invalid UTF-8 sequence in string").
fn noncharacter_at(bytes: &[u8]) -> Option<u32> {
    match *bytes {
        [0xEF, 0xB7, b2, ..] if (0x90..=0xAF).contains(&b2) => Some(0xFDC0 | u32::from(b2 & 0x3F)),
        [0xEF, 0xBF, b2 @ (0xBE | 0xBF), ..] => Some(0xFFC0 | u32::from(b2 & 0x3F)),
        [b0 @ 0xF0..=0xF4, b1, 0xBF, b3 @ (0xBE | 0xBF), ..] if b1 & 0x0F == 0x0F => {
            let plane = (u32::from(b0 & 0x07) << 2) | u32::from((b1 >> 4) & 0x03);
            Some((plane << 16) | 0xFFC0 | u32::from(b3 & 0x3F))
        }
        _ => None,
    }
}

/// The first object key that appears twice in one object of `json`, if
/// any. QEMU's parser refuses such a message with an error that carries
/// no `id`, queued with the in-band replies: checked for `exec-oob`
/// commands, whose replies are otherwise matched by id alone.
pub(crate) fn duplicate_key(json: &[u8]) -> Option<String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::collections::HashSet;
    struct Check;
    impl<'de> DeserializeSeed<'de> for Check {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Check {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> std::result::Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> std::result::Result<(), A::Error> {
            while a.next_element_seed(Check)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> std::result::Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(k) = a.next_key::<std::borrow::Cow<'de, str>>()? {
                if !seen.insert(k.clone()) {
                    return Err(serde::de::Error::custom(format_args!("{k}")));
                }
                a.next_value_seed(Check)?;
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    match Check.deserialize(&mut de) {
        Ok(()) => None,
        Err(e) if e.is_data() => {
            let text = e.to_string();
            Some(text.split(" at line ").next().unwrap_or(&text).to_string())
        }
        // Not JSON at all: QEMU says so, as for any command.
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        let mut s = String::from("{\"execute\":\"x\",\"arguments\":{\"a\":");
        s.push_str(&"[".repeat(depth));
        s.push_str(&"]".repeat(depth));
        s.push_str("},\"id\":1}\n");
        s.into_bytes()
    }

    #[test]
    fn nesting_limit_counts_like_qemu() {
        // The command object and `arguments` are two levels.
        assert!(check_parser_limits(&nested(QEMU_MAX_NESTING - 2)).is_ok());
        let e = check_parser_limits(&nested(QEMU_MAX_NESTING - 1)).expect_err("too deep");
        assert!(e.contains("nested 1025 levels"), "{e}");
        // Brackets inside strings don't count.
        let s = format!("{{\"a\":\"{}\"}}", "[".repeat(5000));
        assert!(check_parser_limits(s.as_bytes()).is_ok());
    }

    #[test]
    fn noncharacters_are_refused_like_qemu_does() {
        let check = |c: char| check_parser_limits(format!("{{\"a\":\"x{c}y\"}}").as_bytes());
        for c in [
            '\u{FDD0}',
            '\u{FDEF}',
            '\u{FFFE}',
            '\u{FFFF}',
            '\u{1FFFE}',
            '\u{2FFFF}',
            '\u{10FFFE}',
            '\u{10FFFF}',
        ] {
            let e = check(c).expect_err("a noncharacter");
            assert!(e.contains(&format!("U+{:04X}", u32::from(c))), "{e}");
        }
        for c in [
            '\u{FDCF}',
            '\u{FDF0}',
            '\u{FFFD}',
            '\u{1FFFD}',
            '\u{10000}',
            'é',
            '\u{F0000}',
        ] {
            assert!(check(c).is_ok(), "{c:?}");
        }
        // Outside strings (impossible in JSON) nothing is looked at.
        assert!(check_parser_limits("{}".as_bytes()).is_ok());
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth() {
        assert_eq!(duplicate_key(br#"{"a":1,"b":2}"#), None);
        assert_eq!(
            duplicate_key(br#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#),
            None
        );
        assert_eq!(duplicate_key(br#"{"a":1,"a":2}"#).as_deref(), Some("a"));
        assert_eq!(
            duplicate_key(br#"{"x":[{"k":1,"k":null}]}"#).as_deref(),
            Some("k")
        );
        assert_eq!(
            duplicate_key(br#"{"\u0061":1,"a":2}"#).as_deref(),
            Some("a")
        );
        assert_eq!(duplicate_key(b"not json"), None);
    }

    #[test]
    fn token_limit() {
        let items = vec!["1"; QEMU_MAX_TOKEN_COUNT / 2 + 1].join(",");
        let s = format!("{{\"a\":[{items}]}}");
        let e = check_parser_limits(s.as_bytes()).expect_err("too many tokens");
        assert!(e.contains("JSON tokens"), "{e}");
    }
}
