//! From a command's wire name to its typed command, through the generated
//! dispatch (`qmp_types::with_command`): arguments are decoded into the
//! command's type before anything is sent, the reply into its reply type.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use qmp_client::Client;
use qmp_client::introspect::{Introspection, Refusal};
use qmp_types::rt::{
    Command, CommandVisitor, MemberInfo, Qmp, collect_unknown_members, path::full_path_message,
    strict_enum_values,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::args::{self, DecodeError, Typed};
use crate::error::{CliError, Result};

/// The schema's arguments of `name` (`None`: no such command).
pub fn command_args(name: &str) -> Option<&'static [MemberInfo]> {
    qmp_types::COMMAND_ARGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| *a)
}

/// The schema's documentation of `name`.
pub fn command_doc(name: &str) -> Option<&'static str> {
    qmp_types::COMMAND_DOCS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
}

/// Every command name the bindings know.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    qmp_types::COMMANDS.iter().map(|m| m.name)
}

/// The error for a name the bindings don't know.
pub fn unknown_command(name: &str) -> CliError {
    CliError::UnknownCommand {
        name: name.to_string(),
        suggestions: args::suggest(name, command_names()),
    }
}

/// Decodes `args` into `C` as a strict reader would: a member `C` does
/// not know, or an enum value, is an error too (the bindings' decoders
/// skip unknown members and keep unknown values, for replies from newer
/// QEMUs).
fn decode_strict<C: DeserializeOwned>(args: &Value) -> Result<C, DecodeError> {
    let (r, unknown) = collect_unknown_members(|| {
        strict_enum_values(|| serde_path_to_error::deserialize::<_, C>(args))
    });
    let r = r.map_err(|e| {
        let (path, message) = full_path_message(&e.path().to_string(), &e.inner().to_string());
        DecodeError {
            path,
            message,
            unknown: None,
            also: None,
        }
    });
    // An unknown member is named first: it often explains a missing one
    // (`filenme=` for `filename=`).
    if let Some(u) = unknown.first() {
        return Err(DecodeError {
            path: ".".into(),
            message: format!("unknown member `{}` (in {})", u.key, u.type_name),
            unknown: Some(u.key.clone()),
            also: r.err().map(|e| e.to_string()),
        });
    }
    r
}

struct Check(Typed);

type Reply<'c> = Pin<Box<dyn Future<Output = Result<Value>> + 'c>>;

/// Sends a checked command and encodes its typed reply as JSON.
type SendFn = Box<dyn for<'c> FnOnce(&'c Client, Option<Duration>) -> Reply<'c>>;

/// A command whose arguments passed the schema: decoded once into its
/// type, ready to send.
pub struct Checked {
    /// The arguments as they will be sent (each value typed as the
    /// schema says).
    pub wire: Value,
    send: SendFn,
}

impl Checked {
    /// Sends the command; the typed reply comes back as JSON.
    pub async fn execute(self, client: &Client, timeout: Option<Duration>) -> Result<Value> {
        (self.send)(client, timeout).await
    }
}

impl CommandVisitor<Qmp> for Check {
    type Output = Result<Checked, DecodeError>;
    fn visit<C>(self) -> Self::Output
    where
        C: Command<Protocol = Qmp> + DeserializeOwned + Send + Sync + 'static,
        C::Returns: Serialize + Send + 'static,
    {
        let cmd: C = self.0.settle(decode_strict)?;
        let wire = serde_json::to_value(&cmd).map_err(|e| DecodeError {
            path: ".".into(),
            message: e.to_string(),
            unknown: None,
            also: None,
        })?;
        let send: SendFn = Box::new(move |client: &Client, timeout| {
            Box::pin(async move {
                let reply = match timeout {
                    Some(t) => client.execute_timeout(cmd, t).await?,
                    None => client.execute(cmd).await?,
                };
                serde_json::to_value(&reply).map_err(|e| CliError::Io(e.to_string()))
            })
        });
        Ok(Checked { wire, send })
    }
}

/// Checks `words` as arguments of `name` against the schema, decoding
/// them into the command's type.
pub fn check(name: &str, words: &[String]) -> Result<Checked> {
    let known = command_args(name).ok_or_else(|| unknown_command(name))?;
    let bad = |message: String| CliError::BadArguments {
        command: name.to_string(),
        message,
    };
    let typed = args::parse(words).map_err(bad)?;
    match qmp_types::with_command(name, Check(typed)) {
        Some(Ok(c)) => Ok(c),
        Some(Err(mut e)) => {
            // A misspelt argument of the command itself: close names.
            if let Some(key) = &e.unknown
                && !known.iter().any(|a| a.name == key)
            {
                let names = known.iter().map(|a| a.name);
                if let Some(s) = args::suggest(key, names).first() {
                    e.message.push_str(&format!("; did you mean '{s}'?"));
                } else if known.is_empty() {
                    e.message.push_str("; the command takes no arguments");
                }
            }
            Err(bad(e.to_string()))
        }
        None => Err(unknown_command(name)),
    }
}

/// What the bindings refused (`offline`, from [`check`]) checked again
/// against the connected QEMU's own schema, which may have it (a newer
/// QEMU's command or argument): the arguments to send, each `key=value`
/// typed as that schema wants. Refused there too, the error is the
/// bindings' (it names close names) unless only the connected QEMU knows
/// the command.
pub fn recheck(
    schema: &Introspection,
    name: &str,
    words: &[String],
    offline: CliError,
) -> Result<Value> {
    check_connected(schema, name, words).map_err(|e| match command_args(name) {
        Some(_) => offline,
        None => e,
    })
}

/// Checks `words` as arguments of `name` against the connected QEMU's own
/// schema alone.
fn check_connected(schema: &Introspection, name: &str, words: &[String]) -> Result<Value> {
    let bad = |message: String| CliError::BadArguments {
        command: name.to_string(),
        message,
    };
    if !schema.has_command(name) {
        let names: Vec<&str> = schema.commands().collect();
        return Err(CliError::UnknownCommand {
            name: name.to_string(),
            suggestions: args::suggest(name, names),
        });
    }
    let typed = args::parse(words).map_err(bad)?;
    let empty = serde_json::Map::new();
    let decode = |v: &Value| match schema.check_command(name, v.as_object().unwrap_or(&empty)) {
        Ok(()) => Ok(v.clone()),
        Err(None) => Err(DecodeError {
            path: ".".into(),
            message: "no such command".into(),
            unknown: None,
            also: None,
        }),
        Err(Some(r)) => Err(match r {
            Refusal::WrongType(path, expected) => DecodeError {
                path,
                message: format!("invalid type, expected {}", article(&expected)),
                unknown: None,
                also: None,
            },
            Refusal::Unexpected(ref path) => DecodeError {
                unknown: path.rsplit('.').next().map(String::from),
                path: ".".into(),
                message: r.to_string(),
                also: None,
            },
            other => DecodeError {
                path: ".".into(),
                message: other.to_string(),
                unknown: None,
                also: None,
            },
        }),
    };
    typed
        .settle(decode)
        .map_err(|e| bad(format!("{e} ({}, by its own schema)", schema.label())))
}

/// `a boolean`, `an integer`: as serde's messages say it (the retyping
/// of `key=value` words looks for "expected a boolean").
fn article(kind: &str) -> String {
    match kind.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {kind}"),
        _ => format!("a {kind}"),
    }
}
