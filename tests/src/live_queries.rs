//! The argument-less `query-*` commands of the bindings, found through
//! their generated tables (`COMMANDS`, `TYPES`) and decoded through the
//! generated dispatch (`with_command`): the live tests decode each one's
//! reply into its type and encode it again.

use qmp_types::rt::{Command, CommandVisitor, Qmp, TypeInfo};
use serde::{Serialize, de::DeserializeOwned};

/// Whether a command's arguments may all be left out.
fn argless(arg_type: Option<&str>) -> bool {
    let Some(name) = arg_type else { return true };
    match qmp_types::TYPES.iter().find(|(n, _)| *n == name) {
        Some((_, TypeInfo::Object { members, .. })) => members.iter().all(|m| m.optional),
        _ => false,
    }
}

/// Whether a command's reply decodes into `()` (nothing to round-trip).
struct ReturnsUnit;

impl CommandVisitor<Qmp> for ReturnsUnit {
    type Output = bool;
    fn visit<C>(self) -> bool
    where
        C: Command<Protocol = Qmp> + DeserializeOwned + Send + Sync + 'static,
        C::Returns: Serialize + Send + 'static,
    {
        std::any::type_name::<C::Returns>() == "()"
    }
}

/// The argument-less `query-*` commands that return something.
pub fn queries() -> Vec<&'static str> {
    qmp_types::COMMANDS
        .iter()
        .filter(|m| m.name.starts_with("query-") && m.success_response && argless(m.arg_type))
        .filter(|m| qmp_types::with_command(m.name, ReturnsUnit) == Some(false))
        .map(|m| m.name)
        .collect()
}

/// Decodes a reply into `C::Returns` and encodes it again.
struct RoundTrip(serde_json::Value);

impl CommandVisitor<Qmp> for RoundTrip {
    type Output = Result<serde_json::Value, String>;
    fn visit<C>(self) -> Self::Output
    where
        C: Command<Protocol = Qmp> + DeserializeOwned + Send + Sync + 'static,
        C::Returns: Serialize + Send + 'static,
    {
        let typed: C::Returns = serde_json::from_value(self.0).map_err(|e| e.to_string())?;
        serde_json::to_value(&typed).map_err(|e| e.to_string())
    }
}

/// The re-encoded reply of `command`, or `None` if the bindings don't
/// know the command.
pub fn decode_reply(
    command: &str,
    reply: serde_json::Value,
) -> Option<Result<serde_json::Value, String>> {
    qmp_types::with_command(command, RoundTrip(reply))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_queries_are_found_in_the_tables() {
        let q = super::queries();
        assert!(q.contains(&"query-status"), "{q:?}");
        assert!(q.contains(&"query-named-block-nodes"), "{q:?}");
        // Has a required argument.
        assert!(!q.contains(&"query-cpu-model-expansion"), "{q:?}");
        // Not a query.
        assert!(!q.iter().any(|n| !n.starts_with("query-")));
        assert!(q.len() > 50, "{}", q.len());
    }
}
