//! `qmp exec`: one command, checked against the bindings' schema and the
//! connected QEMU's own (which decides what the bindings don't know), its
//! reply printed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::connect::Target;
use crate::dispatch;
use crate::error::{CliError, Result};

/// One command to run.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// The command's wire name (`query-status`, `blockdev-add`).
    pub name: String,
    /// Its arguments: one JSON object (`'{"id": "net0"}'`), or `key=value`
    /// words with dotted keys for nesting and `key.0=` for lists
    /// (`node-name=n0 file.driver=file file.filename=/tmp/a.img`). Values
    /// are typed by the schema: `size=1024` is a number where the schema
    /// wants one and text where it wants a string; `on`/`off` are booleans.
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Print the reply as one line of compact JSON instead of indented.
    #[arg(long)]
    pub raw: bool,
    /// Check the arguments and print the command that would be sent,
    /// without connecting.
    #[arg(long)]
    pub dry_run: bool,
    /// Send the command as given, without the schema check (for a command
    /// of a QEMU newer than the bindings). The reply is printed as sent.
    #[arg(long, conflicts_with = "dry_run")]
    pub unchecked: bool,
    /// Give up waiting for the reply after this many seconds (exit code
    /// 3); 0 waits as long as it takes. QEMU runs a command it has read
    /// whether or not anyone waits for the reply.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
}

/// A reply as printed: `()` replies (JSON null) as QEMU's `{}`.
pub fn format_reply(v: &Value, raw: bool) -> String {
    let v = if v.is_null() { &json!({}) } else { v };
    if raw {
        v.to_string()
    } else {
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    }
}

/// Runs `qmp exec`.
pub async fn run(target: &Target, a: &ExecArgs) -> Result<()> {
    let timeout = match a.timeout {
        0.0 => None,
        t => Some(Duration::try_from_secs_f64(t).map_err(|_| {
            CliError::Usage("--timeout must be a number of seconds, 0 for none".into())
        })?),
    };
    // Bad input is refused before connecting (or starting QEMU).
    if a.unchecked {
        let args = crate::args::parse(&a.args)
            .map_err(|message| CliError::BadArguments {
                command: a.name.clone(),
                message,
            })?
            .value;
        let session = target.connect().await?;
        let c = &session.client;
        let reply = match timeout {
            Some(t) => tokio::time::timeout(t, c.execute_raw(&a.name, args))
                .await
                .map_err(|_| {
                    CliError::from(qmp_client::Error::Timeout {
                        what: format!("the reply to {}", a.name),
                        after: t,
                    })
                })??,
            None => c.execute_raw(&a.name, args).await?,
        };
        println!("{}", format_reply(&reply, a.raw));
        return Ok(());
    }
    let offline = dispatch::check(&a.name, &a.args);
    if a.dry_run {
        let checked = offline?;
        let cmd = json!({"execute": a.name, "arguments": checked.wire});
        println!("{}", format_reply(&cmd, a.raw));
        return Ok(());
    }
    let checked = match offline {
        Ok(checked) => checked,
        // What the bindings don't know the connected QEMU may have (a
        // newer QEMU's command or argument): its own schema decides. If
        // there is no QEMU to ask, the bindings' answer stands.
        Err(e @ (CliError::UnknownCommand { .. } | CliError::BadArguments { .. })) => {
            let Ok(session) = target.connect().await else {
                return Err(e);
            };
            let Some(schema) = crate::known::schema(&session.client).await else {
                return Err(e);
            };
            let args = dispatch::recheck(&schema, &a.name, &a.args, e)?;
            let call = session.client.execute_raw(&a.name, args);
            let reply = match timeout {
                Some(t) => tokio::time::timeout(t, call).await.map_err(|_| {
                    CliError::from(qmp_client::Error::Timeout {
                        what: format!("the reply to {}", a.name),
                        after: t,
                    })
                })??,
                None => call.await?,
            };
            println!("{}", format_reply(&reply, a.raw));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let session = target.connect().await?;
    // The connected QEMU's schema (cached on disk per QEMU build) checks
    // what the bindings accepted: a command or argument it lacks is
    // refused, and nothing is sent.
    crate::known::schema(&session.client).await;
    let reply = checked.execute(&session.client, timeout).await?;
    println!("{}", format_reply(&reply, a.raw));
    Ok(())
}
