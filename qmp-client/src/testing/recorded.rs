//! The recordings the double's scripts play (`qmp-client/fixtures/`,
//! written by the live test `tests/live/fixtures.rs` from real QEMU
//! 10.0.2 and 7.2): per scenario, the caller's commands (`> name`) and
//! the events QEMU sent between them, parsed once, and the rules QEMU
//! applies to them (a job finalized or dismissed by its caller).

use std::sync::OnceLock;

use qmp_types::rt::QemuVersion;

/// One line of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A command the caller sent (its name as recorded).
    Cmd(&'static str),
    /// An event: its name, the bare word after it (a status), and its
    /// `key=value` members (`error=` takes the rest of the line).
    Event {
        name: &'static str,
        word: &'static str,
        members: Vec<(&'static str, &'static str)>,
    },
    /// The job waits here until it has been polled (`query-jobs`,
    /// `query-block-jobs`, `query-migrate`) this many times; made by the
    /// scripts, never recorded.
    Polls(usize),
}

impl Step {
    /// The status a `JOB_STATUS_CHANGE` or `MIGRATION` event sets.
    pub(crate) fn status(&self) -> Option<&'static str> {
        match self {
            Step::Event { name, word, .. }
                if matches!(*name, "JOB_STATUS_CHANGE" | "MIGRATION") =>
            {
                Some(word)
            }
            _ => None,
        }
    }

    /// Member `key`, if the event has it.
    pub(crate) fn member(&self, key: &str) -> Option<&'static str> {
        match self {
            Step::Event { members, .. } => members.iter().find(|(k, _)| *k == key).map(|(_, v)| *v),
            _ => None,
        }
    }

    /// The verb a job command applies (`job-cancel` and
    /// `block-job-cancel` are both `cancel`), or the command's name.
    pub(crate) fn verb(name: &str) -> &str {
        name.strip_prefix("block-job-")
            .or_else(|| name.strip_prefix("job-"))
            .unwrap_or(name)
    }
}

/// The versions recorded, oldest first.
pub(crate) const VERSIONS: [&str; 3] = ["7.2.0", "10.0.2", "11.1.3"];

macro_rules! recordings {
    ($($name:literal),* $(,)?) => {
        /// (name, its text on each of [`VERSIONS`]) of every scenario.
        const TEXTS: &[(&str, [&str; 3])] = &[$((
            $name,
            [
                include_str!(concat!("../../fixtures/7.2.0/", $name, ".txt")),
                include_str!(concat!("../../fixtures/10.0.2/", $name, ".txt")),
                include_str!(concat!("../../fixtures/11.1.3/", $name, ".txt")),
            ],
        )),*];
    };
}

recordings!(
    "amend",
    "backup",
    "backup-cancel",
    "backup-error",
    "backup-manual",
    "backup-stop-cancel",
    "commit",
    "commit-active",
    "commit-error",
    "create",
    "create-error",
    "device-deleted",
    "device-never",
    "migration",
    "migration-cancel",
    "migration-error",
    "migration-postcopy",
    "mirror-cancel",
    "mirror-complete",
    "mirror-error",
    "snapshot-delete",
    "snapshot-load",
    "snapshot-save",
    "snapshot-save-error",
    "stream",
    "stream-error",
);

/// Every recording, parsed: `[version index][scenario index]`.
fn parsed() -> &'static [Vec<Vec<Step>>; 3] {
    static PARSED: OnceLock<[Vec<Vec<Step>>; 3]> = OnceLock::new();
    PARSED.get_or_init(|| {
        std::array::from_fn(|v| TEXTS.iter().map(|(_, texts)| parse(texts[v])).collect())
    })
}

/// The recording of scenario `name` on the recorded version nearest
/// below `version` (the oldest for an older QEMU; the newest for `None`).
pub(crate) fn recording(version: Option<QemuVersion>, name: &str) -> &'static [Step] {
    let at = match version {
        None => VERSIONS.len() - 1,
        Some(v) => VERSIONS
            .iter()
            .rposition(|r| QemuVersion::parse(r).is_some_and(|r| r <= v))
            .unwrap_or(0),
    };
    TEXTS
        .iter()
        .position(|(n, _)| *n == name)
        .map_or(&[], |i| &parsed()[at][i])
}

/// A recording's text as steps. The texts are the crate's own, written
/// by the live test; a line it does not know is skipped.
pub(crate) fn parse(text: &'static str) -> Vec<Step> {
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            out.push(Step::Cmd(cmd.trim()));
            continue;
        }
        let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
        if name.is_empty() {
            continue;
        }
        let mut word = "";
        let mut members = Vec::new();
        let mut rest = rest;
        while !rest.is_empty() {
            let (tok, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            match tok.split_once('=') {
                // `error=` is last and may hold spaces.
                Some(("error", _)) => {
                    members.push(("error", &rest["error=".len()..]));
                    break;
                }
                Some((k, v)) => members.push((k, v)),
                None => word = tok,
            }
            rest = tail;
        }
        out.push(Step::Event {
            name,
            word,
            members,
        });
    }
    out
}

/// `steps` as QEMU plays them for a job whose caller finalizes it
/// (`auto-finalize: false`: the job waits in `pending`, after
/// `BLOCK_JOB_PENDING` for a block job, for `job-finalize`) or dismisses
/// it (`auto-dismiss: false`: it waits in `concluded` for
/// `job-dismiss`). The live recording `backup-manual` is this rule
/// applied to `backup` (a unit test holds them equal).
pub(crate) fn manual(steps: &[Step], finalize: bool, dismiss: bool, ty: &'static str) -> Vec<Step> {
    let mut out = Vec::with_capacity(steps.len() + 3);
    for (i, s) in steps.iter().enumerate() {
        out.push(s.clone());
        let next_is =
            |cmd: &str| matches!(steps.get(i + 1), Some(Step::Cmd(c)) if Step::verb(c) == cmd);
        match s.status() {
            Some("pending") if finalize && !next_is("finalize") => {
                if !ty.is_empty() {
                    out.push(Step::Event {
                        name: "BLOCK_JOB_PENDING",
                        word: "",
                        members: vec![("type", ty)],
                    });
                }
                out.push(Step::Cmd("job-finalize"));
            }
            Some("concluded") if dismiss && !next_is("dismiss") => {
                out.push(Step::Cmd("job-dismiss"));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recording_parses_into_commands_and_events() {
        for (vi, version) in VERSIONS.iter().enumerate() {
            for ((name, _), steps) in TEXTS.iter().zip(&parsed()[vi]) {
                assert!(
                    matches!(steps.first(), Some(Step::Cmd(_))),
                    "{version}/{name} starts with the caller's command"
                );
            }
        }
        let s = parse("BLOCK_JOB_COMPLETED type=backup len=16 offset=8 error=Input/output error\n");
        assert_eq!(s[0].member("error"), Some("Input/output error"));
        assert_eq!(s[0].member("len"), Some("16"));
    }

    /// QEMU's rule for a caller that finalizes and dismisses, applied to
    /// the automatic backup, gives what QEMU did (both versions).
    #[test]
    fn the_manual_rule_gives_the_recorded_manual_backup() {
        for v in VERSIONS {
            let v = QemuVersion::parse(v);
            let auto = recording(v, "backup");
            let recorded = recording(v, "backup-manual");
            // The recorded backup's own type member.
            assert_eq!(manual(auto, true, true, "backup"), recorded, "{v:?}");
        }
    }

    #[test]
    fn a_version_plays_the_recording_nearest_below() {
        let first = |v: &str| recording(QemuVersion::parse(v), "migration-error").to_vec();
        assert_eq!(first("10.2.2"), first("10.0.2"));
        assert_eq!(recording(None, "migration-error"), first("11.1.3"));
        assert_eq!(first("6.2.0"), first("7.2.0"));
        assert_eq!(first("9.2.0"), first("7.2.0"));
        // 11.1 fails through `failing`; 10.0 and 7.2 go straight to `failed`.
        let failing = |v: &str| first(v).iter().any(|s| s.status() == Some("failing"));
        assert!(failing("11.1.3") && !failing("10.0.2") && !failing("7.2.0"));
    }
}
