//! Paths inside decode errors: where in a value a decode failed.
//!
//! A union's branch and a flattened member are decoded from a map of their
//! own, so the decoder of the whole value cannot see the path inside them.
//! Their errors start with [`PATH_PREFIX`] ("member `a.b`: ..."), and
//! readers that track the enclosing value's path (the client's decode
//! errors) join the two with [`full_path_message`].

/// Starts the message of an error inside a union's branch or a flattened
/// member: "member `a.b`: " then the decoder's message.
pub const PATH_PREFIX: &str = "member `";

/// Splits "member `a.b`: message" into its path and message.
pub fn split_path_message(msg: &str) -> Option<(&str, &str)> {
    let rest = msg.strip_prefix(PATH_PREFIX)?;
    let end = rest.find("`: ")?;
    Some((&rest[..end], &rest[end + 3..]))
}

/// `outer.deeper` for two decode paths (`.` is the root).
pub fn join_path(outer: &str, deeper: &str) -> String {
    if outer == "." {
        deeper.to_string()
    } else {
        format!("{outer}.{deeper}")
    }
}

/// The whole path and the message of a decode error: `outer` is the path
/// a path-tracking decoder saw, `inner` its message, which names the part
/// inside a union's branch or a flattened member when the error was
/// there ("member `a.b`: ...").
pub fn full_path_message(outer: &str, inner: &str) -> (String, String) {
    match split_path_message(inner) {
        Some((deeper, msg)) => (join_path(outer, deeper), msg.to_string()),
        None => (outer.to_string(), inner.to_string()),
    }
}
