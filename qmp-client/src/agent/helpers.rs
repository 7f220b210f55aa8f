//! What people use the guest agent for: running a program and collecting
//! its output, freezing file systems around a backup.

use std::time::{Duration, Instant};

use base64::Engine as _;
use qmp_types::qga::{
    GuestExecCaptureOutput, GuestExecCommand, GuestExecStatusCommand, GuestFsfreezeFreeze,
    GuestFsfreezeThaw,
};

use super::GuestAgent;
use crate::error::{Error, Result};

/// How a program run with [`GuestAgent::exec`] ended, and what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecOutput {
    /// Its pid in the guest.
    pub pid: i64,
    /// Its exit code, if it exited normally.
    pub exit_code: Option<i64>,
    /// The signal that ended it (Linux; an exception code on Windows).
    pub signal: Option<i64>,
    /// What it wrote on stdout (decoded from the agent's base64).
    pub stdout: Vec<u8>,
    /// What it wrote on stderr.
    pub stderr: Vec<u8>,
    /// Whether the agent cut stdout short (its capture is limited).
    pub stdout_truncated: bool,
    /// Whether the agent cut stderr short.
    pub stderr_truncated: bool,
}

impl ExecOutput {
    /// Exited normally with code 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

fn b64(what: &str, data: Option<&str>) -> Result<Vec<u8>> {
    match data {
        None => Ok(Vec::new()),
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| Error::Protocol(format!("the guest agent's {what} is not base64: {e}"))),
    }
}

impl GuestAgent {
    /// Runs a program in the guest (`guest-exec`), polls
    /// `guest-exec-status` until it exits, and returns its exit status and
    /// output. Output is captured unless `cmd` says otherwise. Bounded by
    /// [`crate::agent::AgentOptions::call_timeout`] as a whole; see
    /// [`GuestAgent::exec_timeout`].
    pub async fn exec(&self, cmd: GuestExecCommand) -> Result<ExecOutput> {
        let t = self.inner.opts.call_timeout;
        self.exec_inner(cmd, t).await
    }

    /// [`GuestAgent::exec`] with its own deadline for the whole run. When
    /// it passes, the program is left running in the guest.
    pub async fn exec_timeout(
        &self,
        cmd: GuestExecCommand,
        timeout: Duration,
    ) -> Result<ExecOutput> {
        self.exec_inner(cmd, Some(timeout)).await
    }

    async fn exec_inner(
        &self,
        mut cmd: GuestExecCommand,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput> {
        if cmd.capture_output.is_none() {
            cmd.capture_output = Some(GuestExecCaptureOutput::Flag(true));
        }
        let path = cmd.path.clone();
        let started = Instant::now();
        let deadline = timeout.map(|t| started + t);
        let left = |what: &str| -> Result<Option<Duration>> {
            match deadline {
                None => Ok(None),
                Some(d) => d
                    .checked_duration_since(Instant::now())
                    .filter(|l| !l.is_zero())
                    .map(Some)
                    .ok_or_else(|| Error::Timeout {
                        what: what.to_string(),
                        after: timeout.unwrap_or_default(),
                    }),
            }
        };
        let run = |l: Option<Duration>| l.unwrap_or(Duration::from_secs(3600));
        let pid = self
            .execute_timeout(cmd, run(left(&format!("guest-exec of {path}"))?))
            .await?
            .pid;
        let mut pause = Duration::from_millis(5);
        loop {
            let what = format!("{path} (pid {pid}) to exit in the guest");
            let st = self
                .execute_timeout(GuestExecStatusCommand::new(pid), run(left(&what)?))
                .await?;
            if st.exited {
                return Ok(ExecOutput {
                    pid,
                    exit_code: st.exitcode,
                    signal: st.signal,
                    stdout: b64("out-data", st.out_data.as_deref())?,
                    stderr: b64("err-data", st.err_data.as_deref())?,
                    stdout_truncated: st.out_truncated.unwrap_or(false),
                    stderr_truncated: st.err_truncated.unwrap_or(false),
                });
            }
            let l = left(&what)?;
            tokio::time::sleep(l.map_or(pause, |l| l.min(pause))).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Freezes the guest's file systems (`guest-fsfreeze-freeze`) and
    /// returns a guard that thaws them: with [`FreezeGuard::thaw`], or
    /// when dropped (then in a task of the current tokio runtime).
    pub async fn freeze(&self) -> Result<FreezeGuard> {
        let frozen = self.execute(GuestFsfreezeFreeze::new()).await?;
        Ok(FreezeGuard {
            agent: Some(self.clone()),
            frozen,
        })
    }
}

/// File systems frozen by [`GuestAgent::freeze`]; thawed when dropped.
#[derive(Debug)]
#[must_use = "the file systems are thawed when the guard is dropped"]
pub struct FreezeGuard {
    agent: Option<GuestAgent>,
    frozen: i64,
}

impl FreezeGuard {
    /// How many file systems were frozen.
    pub fn frozen(&self) -> i64 {
        self.frozen
    }

    /// Thaws now; returns how many file systems were thawed.
    pub async fn thaw(mut self) -> Result<i64> {
        match self.agent.take() {
            Some(a) => a.execute(GuestFsfreezeThaw::new()).await,
            None => Ok(0),
        }
    }
}

impl Drop for FreezeGuard {
    fn drop(&mut self) {
        let Some(agent) = self.agent.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    match agent.execute(GuestFsfreezeThaw::new()).await {
                        Ok(n) => tracing::debug!(thawed = n, "file systems thawed on drop"),
                        Err(e) => {
                            tracing::error!(error = %e, "could not thaw the guest's file systems")
                        }
                    }
                });
            }
            Err(_) => tracing::error!(
                "FreezeGuard dropped outside a tokio runtime: the guest's file systems stay frozen; call thaw()"
            ),
        }
    }
}
