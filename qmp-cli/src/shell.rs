//! `qmp shell`: an interactive QMP prompt. Commands are checked against
//! the schema before they are sent; Tab completes command and argument
//! names; `help NAME` shows the schema's documentation; `hmp LINE` runs a
//! human monitor command; QEMU's events are printed as they arrive,
//! between prompts.

use std::path::PathBuf;
use std::sync::Arc;

use qmp_client::Client;
use qmp_types::rt::{MemberInfo, TypeInfo};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, ExternalPrinter, Helper};

use crate::error::{CliError, Result};
use crate::exec::format_reply;
use crate::{dispatch, nav};

/// The shell's own words; anything else is a QMP command.
const BUILTINS: &[(&str, &str)] = &[
    (
        "help",
        "help [NAME]: this list, or a command's documentation and arguments",
    ),
    (
        "hmp",
        "hmp LINE: a human monitor command (`hmp info block`)",
    ),
    (
        "exec",
        "exec NAME [ARGS]: a QMP command whose name is a shell word (`exec quit` stops QEMU)",
    ),
    (
        "commands",
        "commands [TEXT]: the commands whose names contain TEXT",
    ),
    (
        "quit",
        "quit, exit or Ctrl-D: leave the shell (QEMU keeps running)",
    ),
    ("exit", "exit: leave the shell"),
];

/// Shell options.
#[derive(Debug, Clone, clap::Args)]
pub struct ShellArgs {
    /// The history file (default: `$XDG_STATE_HOME/qmp/history`, or
    /// `~/.local/state/qmp/history`).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Don't print QEMU's events.
    #[arg(long)]
    pub no_events: bool,
}

/// Completion and hints from the schema.
struct SchemaHelper;

/// A line split into words: quotes group (and are removed), a JSON object
/// after the command stays one word.
pub fn split_words(line: &str) -> std::result::Result<Vec<String>, String> {
    let line = line.trim();
    let (head, rest) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim_start()),
        None => (line, ""),
    };
    let mut words = vec![head.to_string()];
    // `help NAME`, `exec NAME ...`: the command is the second word.
    let rest = if matches!(head, "exec" | "help") {
        match rest.find(char::is_whitespace) {
            Some(i) => {
                words.push(rest[..i].to_string());
                rest[i..].trim_start()
            }
            None => {
                if !rest.is_empty() {
                    words.push(rest.to_string());
                }
                ""
            }
        }
    } else {
        rest
    };
    if rest.starts_with('{') {
        words.push(rest.to_string());
        return Ok(words);
    }
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in rest.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unclosed quote {q}"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The arguments typed so far as JSON (`None` while they don't parse).
fn typed_so_far(words: &[&str]) -> Option<serde_json::Value> {
    let owned: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    crate::args::parse(&owned).map(|t| t.value).ok()
}

impl SchemaHelper {
    fn candidates(line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let words: Vec<&str> = before[..start].split_whitespace().collect();
        // Names starting with `word`, sorted, each once.
        let names = |all: &mut dyn Iterator<Item = &str>| {
            let mut v: Vec<&str> = all.filter(|n| n.starts_with(word)).collect();
            v.sort_unstable();
            v.dedup();
            let v: Vec<Pair> = v
                .into_iter()
                .map(|n| Pair {
                    display: format!("{n} "),
                    replacement: format!("{n} "),
                })
                .collect();
            (start, v)
        };
        match words.as_slice() {
            [] => names(&mut BUILTINS.iter().map(|(b, _)| *b).chain(nav::command_names())),
            ["exec"] => names(&mut nav::command_names()),
            // Commands, and named types (not implicit ones).
            ["help"] => names(
                &mut nav::command_names().chain(
                    qmp_types::TYPES
                        .iter()
                        .map(|(n, _)| *n)
                        .filter(|n| !n.starts_with("q_")),
                ),
            ),
            ["exec", cmd, given @ ..] | [cmd, given @ ..] => {
                Self::argument_candidates(cmd, given, word, start).unwrap_or((start, Vec::new()))
            }
        }
    }

    /// Candidates for `word` (`fi`, `file.dri`, `file.driver=`) as an
    /// argument of `cmd`, after the words `given`.
    fn argument_candidates(
        cmd: &str,
        given: &[&str],
        word: &str,
        start: usize,
    ) -> Option<(usize, Vec<Pair>)> {
        let ty = nav::arg_type(cmd)?;
        let typed = typed_so_far(given);
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let (parent, leaf) = match key.rsplit_once('.') {
            Some((p, l)) => (p.split('.').collect::<Vec<_>>(), l),
            None => (Vec::new(), key),
        };
        let prefix_len = key.len() - leaf.len();
        let (at, at_given) = nav::type_at(ty, &parent, typed.as_ref())?;
        if let Some(value) = value {
            // `key=` then Tab: the values of an enum (or boolean) member.
            let (member_ty, _) = nav::type_at(at, &[leaf], at_given)?;
            let values = nav::values_of(member_ty)
                .iter()
                .filter(|v| v.starts_with(value))
                .map(|v| Pair {
                    display: v.to_string(),
                    replacement: format!("{v} "),
                })
                .collect();
            // The replacement starts after `key=`.
            return Some((start + key.len() + 1, values));
        }
        let present: Vec<&str> = given
            .iter()
            .filter_map(|w| w.split_once('=').map(|(k, _)| k))
            .collect();
        let base = &key[..prefix_len];
        let names = nav::object_members(at, at_given)
            .into_iter()
            .filter(|a| a.name.starts_with(leaf))
            .filter(|a| !present.contains(&format!("{base}{}", a.name).as_str()))
            .map(|a| Pair {
                display: format!(
                    "{}={}{}",
                    a.name,
                    nav::shown(a.type_name),
                    if a.optional { "?" } else { "" }
                ),
                replacement: format!(
                    "{base}{}{}",
                    a.name,
                    if nav::is_object(a.type_name) {
                        "."
                    } else {
                        "="
                    }
                ),
            })
            .collect();
        Some((start, names))
    }
}

impl Completer for SchemaHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(Self::candidates(line, pos))
    }
}

impl Hinter for SchemaHelper {
    type Hint = String;
    /// After a command and a space: the required arguments not given yet.
    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if pos < line.len() || !line.ends_with(' ') {
            return None;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cmd, given) = match words.as_slice() {
            ["exec", c, rest @ ..] => (*c, rest),
            [c, rest @ ..] => (*c, rest),
            [] => return None,
        };
        let ty = nav::arg_type(cmd)?;
        let typed = typed_so_far(given);
        let missing: Vec<String> = nav::object_members(ty, typed.as_ref())
            .into_iter()
            .filter(|a| !a.optional)
            .filter(|a| typed.as_ref().and_then(|t| t.get(a.name)).is_none())
            .map(|a| format!("{}=<{}>", a.name, nav::shown(a.type_name)))
            .collect();
        (!missing.is_empty()).then(|| missing.join(" "))
    }
}

impl Highlighter for SchemaHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> std::borrow::Cow<'h, str> {
        std::borrow::Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for SchemaHelper {}
impl Helper for SchemaHelper {}

/// `help NAME`: the schema's documentation and the command's arguments.
pub fn help_text(name: &str) -> Result<String> {
    let Some(args) = dispatch::command_args(name) else {
        return type_help(name)
            .or_else(|| connected_help(name))
            .ok_or_else(|| dispatch::unknown_command(name));
    };
    let mut out = format!("{name}\n\n");
    if let Some(doc) = dispatch::command_doc(name) {
        out.push_str(doc.trim_end());
        out.push_str("\n\n");
    }
    if args.is_empty() {
        out.push_str("Arguments: none\n");
    } else {
        out.push_str("Arguments:\n");
        push_members(&mut out, args.iter());
    }
    if let Some(ty) = nav::bound_arg_type(name) {
        push_branches(&mut out, ty);
    }
    Ok(out)
}

fn push_members<'a>(out: &mut String, members: impl Iterator<Item = &'a MemberInfo>) {
    for a in members {
        out.push_str(&format!(
            "  {}: {}{}\n",
            a.name,
            a.type_name,
            if a.optional { " (optional)" } else { "" }
        ));
        for l in a.doc.lines() {
            out.push_str(&format!("      {l}\n"));
        }
    }
}

/// A union's branches: which value of the discriminator adds which
/// type's members.
fn push_branches(out: &mut String, ty: &str) {
    if let Some(TypeInfo::Object {
        tag: Some(tag),
        branches,
        ..
    }) = nav::bound_type_info(ty)
        && !branches.is_empty()
    {
        out.push_str(&format!(
            "\nMore arguments by `{tag}` (`help TYPE` lists them):\n"
        ));
        for (value, branch) in *branches {
            out.push_str(&format!("  {tag}={value}: {branch}\n"));
        }
    }
}

/// `help NAME` of a command only the connected QEMU has: its arguments
/// by its schema (which has no documentation).
fn connected_help(name: &str) -> Option<String> {
    if !nav::command_names().any(|n| n == name) {
        return None;
    }
    let mut out = format!("{name}\n\n(not in the bindings: the connected QEMU's schema)\n\n");
    match nav::arg_type(name) {
        None => out.push_str("Arguments: none\n"),
        Some(ty) => {
            out.push_str("Arguments:\n");
            for a in nav::object_members(ty, None) {
                out.push_str(&format!(
                    "  {}: {}{}\n",
                    a.name,
                    nav::shown(a.type_name),
                    if a.optional { " (optional)" } else { "" }
                ));
            }
        }
    }
    Some(out)
}

/// `help TYPE`: a type's members, values or branches.
fn type_help(name: &str) -> Option<String> {
    let mut out = format!("{name}\n\n");
    match nav::bound_type_info(name)? {
        TypeInfo::Object { members, .. } => {
            out.push_str("Members:\n");
            push_members(&mut out, members.iter());
            push_branches(&mut out, name);
        }
        TypeInfo::Enum { values } => {
            out.push_str(&format!("Values: {}\n", values.join(", ")));
        }
        TypeInfo::Alternate { branches } => {
            out.push_str(&format!("One of: {}\n", branches.join(", ")));
        }
        TypeInfo::Array { element } => {
            out.push_str(&format!("A list of {element}\n"));
        }
        _ => return None,
    }
    Some(out)
}

fn builtins_help() -> String {
    let mut s = String::from(
        "Type a QMP command and its arguments (`blockdev-add driver=null-co node-name=n0`,\nor one JSON object); Tab completes command and argument names.\n\n",
    );
    for (_, h) in BUILTINS {
        s.push_str(&format!("  {h}\n"));
    }
    s
}

fn history_path(a: &ShellArgs) -> Option<PathBuf> {
    if let Some(p) = &a.history {
        return Some(p.clone());
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("qmp").join("history"))
}

/// What one line asks for.
enum Line {
    Nothing,
    Leave,
    Print(String),
}

async fn run_line(client: &Client, line: &str) -> Result<Line> {
    let words = split_words(line).map_err(CliError::Usage)?;
    let (head, rest) = match words.split_first() {
        Some((h, r)) if !h.is_empty() => (h.as_str(), r),
        _ => return Ok(Line::Nothing),
    };
    match head {
        "quit" | "exit" => Ok(Line::Leave),
        "help" => Ok(Line::Print(match rest.first() {
            Some(n) => help_text(n)?,
            None => builtins_help(),
        })),
        "commands" => {
            let filter = rest.first().map_or("", String::as_str);
            let mut names: Vec<&str> = nav::command_names()
                .filter(|n| n.contains(filter))
                .collect();
            names.sort_unstable();
            Ok(Line::Print(names.join("\n")))
        }
        "hmp" => {
            let cmdline = line.trim_start()["hmp".len()..].trim();
            let out = client.human(cmdline).await?;
            Ok(Line::Print(out.trim_end().to_string()))
        }
        "exec" => match rest.split_first() {
            Some((name, args)) => command(client, name, args).await,
            None => Err(CliError::Usage("exec needs a command name".into())),
        },
        name => command(client, name, rest).await,
    }
}

async fn command(client: &Client, name: &str, args: &[String]) -> Result<Line> {
    let reply = match dispatch::check(name, args) {
        Ok(checked) => checked.execute(client, None).await?,
        // What the bindings don't know, the connected QEMU's schema may
        // have (a newer QEMU's command or argument).
        Err(e @ (CliError::UnknownCommand { .. } | CliError::BadArguments { .. })) => {
            let Ok(schema) = client.schema().await else {
                return Err(e);
            };
            let args = dispatch::recheck(&schema, name, args, e)?;
            client.execute_raw(name, args).await?
        }
        Err(e) => return Err(e),
    };
    Ok(Line::Print(format_reply(&reply, false)))
}

/// Runs the shell until `quit`, Ctrl-D, or QEMU goes away.
pub fn run(rt: &tokio::runtime::Runtime, client: Arc<Client>, a: &ShellArgs) -> Result<()> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(true)
        .build();
    let mut rl: Editor<SchemaHelper, rustyline::history::DefaultHistory> =
        Editor::with_config(config).map_err(|e| CliError::Io(e.to_string()))?;
    rl.set_helper(Some(SchemaHelper));
    let history = history_path(a);
    if let Some(h) = &history {
        // No history yet is fine.
        let _ = rl.load_history(h);
    }
    if !a.no_events {
        let mut events = client.events();
        let mut printer = rl.create_external_printer().ok();
        rt.spawn(async move {
            loop {
                let text = match events.next().await {
                    Ok(r) => format!(
                        "event {} {} {}",
                        crate::events::rfc3339(r.timestamp.seconds, r.timestamp.microseconds),
                        r.event.name(),
                        crate::events::event_data(&r.event)
                    ),
                    Err(e) => format!("qmp: {e}"),
                };
                let closed = text.starts_with("qmp: ");
                let shown = printer
                    .as_mut()
                    .is_some_and(|p| p.print(format!("{text}\n")).is_ok());
                if !shown {
                    println!("{text}");
                }
                if closed {
                    break;
                }
            }
        });
    }
    let v = &client.greeting().version.qemu;
    println!(
        "Connected to QEMU {}.{}.{}. `help` lists the shell's commands; Tab completes.",
        v.major, v.minor, v.micro
    );
    let result = loop {
        let line = match rl.readline("(QEMU) ") {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break Ok(()),
            Err(e) => break Err(CliError::Io(e.to_string())),
        };
        match rt.block_on(run_line(&client, &line)) {
            Ok(Line::Nothing) => {}
            Ok(Line::Leave) => break Ok(()),
            Ok(Line::Print(s)) => println!("{s}"),
            Err(e @ CliError::Connection(_)) => break Err(e),
            Err(e) => eprintln!("error: {e}"),
        }
    };
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = rl.save_history(h) {
            eprintln!("qmp: can't save the history to {}: {e}", h.display());
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes_and_json_together() {
        assert_eq!(
            split_words(r#"human-monitor-command command-line="info block""#).expect("ok"),
            vec!["human-monitor-command", "command-line=info block"]
        );
        assert_eq!(
            split_words(r#"device_del {"id": "a b"}"#).expect("ok"),
            vec!["device_del", r#"{"id": "a b"}"#]
        );
        assert_eq!(split_words("exec quit").expect("ok"), vec!["exec", "quit"]);
        assert!(split_words("x a='b").is_err());
    }

    #[test]
    fn completion_from_the_schema() {
        let (start, c) = SchemaHelper::candidates("query-sta", 9);
        assert_eq!(start, 0);
        assert!(c.iter().any(|p| p.replacement == "query-status "));
        let line = "block-job-set-speed device=j0 ";
        let (_, c) = SchemaHelper::candidates(line, line.len());
        let names: Vec<&str> = c.iter().map(|p| p.replacement.as_str()).collect();
        assert_eq!(names, vec!["speed="], "device is given already");
        // Values of an enum argument.
        let line = "blockdev-backup sync=";
        let (start, c) = SchemaHelper::candidates(line, line.len());
        assert_eq!(start, line.len());
        let values: Vec<&str> = c.iter().map(|p| p.replacement.as_str()).collect();
        assert_eq!(
            values,
            ["top ", "full ", "none ", "incremental ", "bitmap "]
        );
        let line = "blockdev-backup sync=in";
        let (_, c) = SchemaHelper::candidates(line, line.len());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].replacement, "incremental ");
        // Nested: a union's branch members once its discriminator is
        // typed, and below `file.` the members of its own branch.
        let line = "blockdev-add driver=qcow2 node-name=n0 fi";
        let (start, c) = SchemaHelper::candidates(line, line.len());
        assert_eq!(start, line.len() - 2);
        let names: Vec<&str> = c.iter().map(|p| p.replacement.as_str()).collect();
        assert_eq!(names, ["file="], "BlockdevRef: options or a node name");
        let line = "blockdev-add driver=qcow2 file.driver=file file.fil";
        let (_, c) = SchemaHelper::candidates(line, line.len());
        let names: Vec<&str> = c.iter().map(|p| p.replacement.as_str()).collect();
        assert_eq!(names, ["file.filename="]);
        let line = "blockdev-add driver=qcow2 file.driver=file file.aio=io";
        let (start, c) = SchemaHelper::candidates(line, line.len());
        assert_eq!(start, line.len() - 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].replacement, "io_uring ");
        let line = "blockdev-add driver=qcow2 file.dri";
        let (_, c) = SchemaHelper::candidates(line, line.len());
        assert_eq!(c[0].replacement, "file.driver=");
        let (_, c) = SchemaHelper::candidates("help device_", 12);
        assert!(c.iter().any(|p| p.replacement == "device_del "));
    }

    #[test]
    fn help_shows_docs_and_arguments() {
        let h = help_text("device_del").expect("known");
        assert!(h.contains("Remove a device"), "{h}");
        assert!(h.contains("  id: str\n"), "{h}");
        let h = help_text("blockdev-add").expect("known");
        assert!(h.contains("  driver=qcow2: BlockdevOptionsQcow2\n"), "{h}");
        let h = help_text("BlockdevOptionsFile").expect("a type");
        assert!(h.contains("  filename: str\n"), "{h}");
        let h = help_text("MirrorSyncMode").expect("an enum");
        assert!(
            h.contains("Values: top, full, none, incremental, bitmap"),
            "{h}"
        );
        assert!(matches!(
            help_text("device_dle"),
            Err(CliError::UnknownCommand { .. })
        ));
    }
}
