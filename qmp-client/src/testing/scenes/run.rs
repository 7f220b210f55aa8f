//! A recording being played: where it is, where it waits (a command of
//! its caller, or polls), and the recordings its caller may switch to
//! there.

use super::super::recorded::Step;

/// A recording being played.
pub(crate) struct Run {
    pub(crate) steps: Vec<Step>,
    /// The next step.
    pub(crate) pos: usize,
    /// The scenarios its caller may switch to where it waits.
    pub(crate) alternatives: Vec<Vec<Step>>,
    pub(crate) status: &'static str,
    /// Polls left at a [`Step::Polls`], and how many it had.
    pub(crate) polls: Option<(usize, usize)>,
}

impl Run {
    pub(crate) fn new(steps: Vec<Step>, alternatives: Vec<Vec<Step>>, status: &'static str) -> Run {
        Run {
            steps,
            pos: 1,
            alternatives,
            status,
            polls: None,
        }
    }

    /// Takes command `verb` where it waits (a wait for polls ends
    /// early): true when the recording, or one it may switch to here,
    /// goes on with it.
    pub(crate) fn take(&mut self, verb: &str) -> bool {
        let pos = self.pos.min(self.steps.len());
        if let Some(next) = cmd_at(&self.steps, pos, verb) {
            self.pos = next;
            self.polls = None;
            return true;
        }
        let here = &self.steps[..pos];
        let found = self.alternatives.iter().find_map(|alt| {
            (alt.len() > pos && alt[..pos] == *here)
                .then(|| cmd_at(alt, pos, verb).map(|next| (alt, next)))
                .flatten()
        });
        match found {
            Some((alt, next)) => {
                self.steps = alt.clone();
                self.pos = next;
                self.polls = None;
                true
            }
            None => false,
        }
    }

    /// The steps up to the next command or poll wait (or the end), and
    /// the status they leave.
    pub(crate) fn play(&mut self) -> Vec<Step> {
        let mut out = Vec::new();
        while let Some(s) = self.steps.get(self.pos) {
            match s {
                Step::Cmd(_) => break,
                Step::Polls(n) => {
                    if self.polls.is_none() {
                        self.polls = Some((*n, *n));
                    }
                    if self.polls.is_some_and(|(left, _)| left > 0) {
                        break;
                    }
                    self.polls = None;
                }
                e => {
                    if let Some(st) = e.status() {
                        self.status = st;
                    }
                    out.push(e.clone());
                }
            }
            self.pos += 1;
        }
        out
    }

    /// One poll: true when it ends the wait at a [`Step::Polls`].
    pub(crate) fn polled(&mut self) -> bool {
        match &mut self.polls {
            Some((left, _)) if *left > 0 => {
                *left -= 1;
                *left == 0
            }
            _ => false,
        }
    }

    /// The share of `total` done, shown while it waits for polls: one
    /// more `n + 1`th of it at each of its `n` polls.
    pub(crate) fn poll_share(&self, total: i64) -> Option<i64> {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.polls
            .map(|(left, of)| total * n(of - left) / n(of + 1).max(1))
    }

    pub(crate) fn ended(&self) -> bool {
        self.pos >= self.steps.len() && self.polls.is_none()
    }
}

/// The step after command `verb` if `steps` wait for it at `i`
/// (behind a wait for polls, if any).
pub(crate) fn cmd_at(steps: &[Step], i: usize, verb: &str) -> Option<usize> {
    match steps.get(i) {
        Some(Step::Cmd(c)) if Step::verb(c) == verb => Some(i + 1),
        Some(Step::Polls(_)) => match steps.get(i + 1) {
            Some(Step::Cmd(c)) if Step::verb(c) == verb => Some(i + 2),
            _ => None,
        },
        _ => None,
    }
}

/// Inserts a poll wait after the leading `created`/`running`/`paused`
/// statuses.
pub(crate) fn with_polls(mut steps: Vec<Step>, n: usize) -> Vec<Step> {
    if n == 0 {
        return steps;
    }
    let lead = steps
        .iter()
        .skip(1)
        .take_while(|s| {
            matches!(
                s.status(),
                Some("created" | "running" | "paused" | "setup" | "active")
            )
        })
        .count();
    steps.insert(1 + lead, Step::Polls(n));
    steps
}
