//! The guest agent client against a real `qemu-ga` 10.0.2 run on this
//! machine (no guest needed), started with `qmp_client::launch` with the
//! commands that would change this host disabled. Faults a real agent
//! can't be asked for here (a successful `guest-shutdown` or
//! `guest-suspend-ram`, a freeze of this host's file systems) come from a
//! scripted agent at the end.

use std::time::Duration;

use qmp_client::Error;
use qmp_client::ErrorClass;
use qmp_client::agent::{AgentOptions, GuestAgent};
use qmp_client::launch::{Launcher, Qemu};
use qmp_types::qga::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOUND: Duration = Duration::from_secs(10);

async fn agent() -> (Qemu, GuestAgent) {
    let qga = Launcher::guest_agent()
        .start()
        .await
        .expect("start qemu-ga (package qemu-guest-agent)");
    let ga = qga
        .connect_agent(AgentOptions::default())
        .await
        .expect("connect and sync");
    (qga, ga)
}

#[tokio::test]
async fn ping_info_osinfo_time() {
    let (_qga, ga) = agent().await;
    ga.execute(GuestPing::new()).await.expect("guest-ping");
    let info = ga.execute(GuestInfo::new()).await.expect("guest-info");
    assert_eq!(info.version, "10.0.2");
    let exec = info
        .supported_commands
        .iter()
        .find(|c| c.name == "guest-exec")
        .expect("listed");
    assert!(exec.enabled && exec.success_response);
    let shutdown = info
        .supported_commands
        .iter()
        .find(|c| c.name == "guest-shutdown")
        .expect("listed");
    assert!(!shutdown.enabled, "disabled by the launcher");
    assert!(!shutdown.success_response);
    let os = ga.execute(GuestGetOsinfo::new()).await.expect("osinfo");
    assert!(os.kernel_release.is_some());
    let t = ga.execute(GuestGetTime::new()).await.expect("time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let diff = (i128::from(t) - now as i128).abs();
    assert!(diff < 60_000_000_000, "agent time {t} vs {now}");
}

#[tokio::test]
async fn exec_with_output_and_exit_code() {
    let (_qga, ga) = agent().await;
    let out = ga
        .exec(GuestExecCommand::new("/bin/sh").with_arg(vec![
            "-c".into(),
            "printf 'hi\\n\\000\\377'; echo oops >&2; exit 3".into(),
        ]))
        .await
        .expect("exec");
    assert_eq!(out.exit_code, Some(3));
    assert!(!out.success());
    assert_eq!(out.stdout, b"hi\n\0\xff", "bytes, not text");
    assert_eq!(out.stderr, b"oops\n");
    assert!(!out.stdout_truncated);
    // With input, killed by a signal.
    let out = ga
        .exec(
            GuestExecCommand::new("/bin/sh")
                .with_arg(vec!["-c".into(), "cat; kill -9 $$".into()])
                .with_input_data("aW5wdXQ="),
        )
        .await
        .expect("exec");
    assert_eq!(out.stdout, b"input");
    assert_eq!((out.exit_code, out.signal), (None, Some(9)));
    // A program that outlives the deadline: a timeout, and the agent is
    // still usable.
    let e = ga
        .exec_timeout(
            GuestExecCommand::new("/bin/sleep").with_arg(vec!["5".into()]),
            Duration::from_millis(300),
        )
        .await
        .expect_err("still running");
    assert!(e.is_timeout(), "{e}");
    ga.execute(GuestPing::new()).await.expect("still fine");
    // A program that doesn't exist: the agent's error.
    let e = ga
        .exec(GuestExecCommand::new("/nonexistent/program"))
        .await
        .expect_err("no such program");
    assert!(matches!(e, Error::Qmp { .. }), "{e}");
}

#[tokio::test]
async fn files_read_and_write_as_async_io() {
    let (qga, ga) = agent().await;
    let path = qga.dir().join("data.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut f = ga
        .open(&path.to_string_lossy(), "w")
        .await
        .expect("open for writing");
    f.write_all(&data).await.expect("write");
    f.flush().await.expect("flush");
    f.shutdown().await.expect("close");
    assert_eq!(std::fs::read(&path).expect("on disk"), data);
    let mut f = ga.open(&path.to_string_lossy(), "r").await.expect("open");
    let mut back = Vec::new();
    f.read_to_end(&mut back).await.expect("read");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "same bytes");
    f.close().await.expect("close");
    let e = ga
        .open("/nonexistent/dir/file", "r")
        .await
        .expect_err("no such file");
    assert!(e.to_string().contains("guest-file-open"), "{e}");
}

#[tokio::test]
async fn refused_commands_say_so() {
    let (_qga, ga) = agent().await;
    // Disabled with -b; it sends no reply on success, so the refusal is
    // what comes back within the window.
    let e = ga
        .execute(GuestShutdown::new())
        .await
        .expect_err("disabled");
    match &e {
        Error::Qmp { class, desc, .. } => {
            assert_eq!(class, &ErrorClass::CommandNotFound);
            assert!(desc.contains("has been disabled"), "{desc}");
        }
        other => panic!("{other}"),
    }
    let e = ga.freeze().await.expect_err("freeze disabled");
    assert!(e.to_string().contains("disabled"), "{e}");
    ga.execute(GuestPing::new()).await.expect("still fine");
}

#[tokio::test]
async fn a_command_over_qemus_parser_limits_is_not_sent() {
    let (_qga, ga) = agent().await;
    // 1.1 million empty strings: over two million JSON tokens, which the
    // agent's parser (QEMU's) would answer with id-less errors.
    let args = vec![String::new(); 1_100_000];
    let e = ga
        .execute(GuestExecCommand::new("/bin/true").with_arg(args))
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::Unsendable { .. }), "{e}");
    assert!(e.to_string().contains("JSON tokens"), "{e}");
    // Nothing was written: the connection is still in step.
    ga.execute(GuestPing::new()).await.expect("still fine");
}

#[tokio::test]
async fn resync_after_garbage_and_after_a_call_that_gave_up() {
    let qga = Launcher::guest_agent().start().await.expect("qemu-ga");
    // Half a command left in the agent's parser by someone else.
    let mut s = tokio::net::UnixStream::connect(qga.socket())
        .await
        .expect("connect");
    s.write_all(b"{\"execute\": \"guest-ping\", \"argu")
        .await
        .expect("garbage");
    let ga = GuestAgent::from_stream(s, AgentOptions::default())
        .await
        .expect("sync skips it");
    ga.execute(GuestPing::new()).await.expect("in step");
    // A call that gives up after writing (the agent is stopped, so the
    // reply comes late): the late reply must not be taken for the next
    // call's.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(qga.pid()).expect("pid"));
    for _ in 0..3 {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stop");
        let r = ga
            .execute_timeout(GuestGetOsinfo::new(), Duration::from_millis(200))
            .await;
        assert!(r.is_err_and(|e| e.is_timeout()));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("continue");
        let host = ga.execute(GuestGetHostName::new()).await.expect("in step");
        assert!(!host.host_name.is_empty());
    }
    ga.sync().await.expect("explicit sync");
}

/// A stream that tells, through `sent`, how many bytes were written
/// through it: how a test knows a call reached the socket.
struct Counted {
    inner: tokio::net::UnixStream,
    sent: tokio::sync::watch::Sender<usize>,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = r {
            self.sent.send_modify(|s| *s += n);
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn the_agent_killed_mid_command() {
    let qga = Launcher::guest_agent().start().await.expect("qemu-ga");
    let (sent, mut written) = tokio::sync::watch::channel(0);
    let stream = tokio::net::UnixStream::connect(qga.socket())
        .await
        .expect("dial the agent");
    let ga = GuestAgent::from_stream(
        Counted {
            inner: stream,
            sent,
        },
        AgentOptions::default(),
    )
    .await
    .expect("connect");
    // Stopped, the agent can't answer: the call is in flight when it is
    // killed.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(qga.pid()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stop");
    let call = {
        let ga = ga.clone();
        tokio::spawn(async move { ga.execute(GuestInfo::new()).await })
    };
    // Its bytes are in the agent's socket, so it is mid-command.
    let synced = *written.borrow_and_update();
    written
        .wait_for(|n| *n > synced)
        .await
        .expect("the call is written");
    assert!(!call.is_finished(), "a stopped agent answered");
    let started = std::time::Instant::now();
    drop(qga);
    let e = tokio::time::timeout(Duration::from_secs(1), call)
        .await
        .expect("ends within a second")
        .expect("task")
        .expect_err("killed");
    assert!(e.is_socket_closed(), "{e}");
    eprintln!("call failed {:?} after the kill: {e}", started.elapsed());
    // Later calls fail at once, with the same cause.
    let again = tokio::time::timeout(BOUND, ga.execute(GuestPing::new()))
        .await
        .expect("no hang")
        .expect_err("closed");
    assert_eq!(again.to_string(), e.to_string());
}

/// A scripted agent: answers `guest-sync-delimited` as qemu-ga does, and
/// each other command from `replies` (by name; `None`: no reply).
async fn fake_agent(
    replies: Vec<(&'static str, Option<serde_json::Value>)>,
) -> (GuestAgent, tokio::task::JoinHandle<Vec<String>>) {
    let (a, b) = tokio::net::UnixStream::pair().expect("pair");
    let server = tokio::spawn(async move {
        let (r, mut w) = b.into_split();
        let mut r = tokio::io::BufReader::new(r);
        let mut seen = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            match tokio::io::AsyncBufReadExt::read_until(&mut r, b'\n', &mut line).await {
                Ok(0) | Err(_) => return seen,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_start_matches('\u{fffd}');
            let Ok(cmd) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            let name = cmd["execute"].as_str().unwrap_or_default().to_string();
            seen.push(name.clone());
            let out = if name == "guest-sync-delimited" {
                let mut v = vec![0xff];
                v.extend_from_slice(
                    format!("{{\"return\": {}}}\n", cmd["arguments"]["id"]).as_bytes(),
                );
                v
            } else {
                match replies.iter().find(|(n, _)| *n == name) {
                    Some((_, Some(ret))) if ret == "<garbage>" => b"{\"return\": oops\n".to_vec(),
                    Some((_, Some(ret))) => {
                        format!("{}\n", serde_json::json!({"return": ret, "id": cmd["id"]}))
                            .into_bytes()
                    }
                    _ => continue,
                }
            };
            if w.write_all(&out).await.is_err() {
                return seen;
            }
        }
    });
    let ga = GuestAgent::from_stream(a, AgentOptions::default())
        .await
        .expect("sync with the fake");
    (ga, server)
}

#[tokio::test]
async fn commands_without_a_success_reply_return_once_sent() {
    let (ga, server) = fake_agent(vec![
        ("guest-suspend-ram", None),
        ("guest-ping", Some(serde_json::json!({}))),
    ])
    .await;
    let started = std::time::Instant::now();
    tokio::time::timeout(BOUND, ga.execute(GuestSuspendRam::new()))
        .await
        .expect("no hang")
        .expect("sent");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    ga.execute(GuestPing::new()).await.expect("next call");
    drop(ga);
    let seen = server.await.expect("server");
    assert_eq!(
        seen,
        [
            "guest-sync-delimited",
            "guest-suspend-ram",
            // After a command with no reply, the next call syncs first.
            "guest-sync-delimited",
            "guest-ping"
        ]
    );
}

#[tokio::test]
async fn a_freeze_guard_thaws_on_drop() {
    let (ga, server) = fake_agent(vec![
        ("guest-fsfreeze-freeze", Some(serde_json::json!(2))),
        ("guest-fsfreeze-thaw", Some(serde_json::json!(2))),
        ("guest-ping", Some(serde_json::json!({}))),
    ])
    .await;
    {
        let guard = ga.freeze().await.expect("frozen");
        assert_eq!(guard.frozen(), 2);
        // Dropped here: thawed in a task.
    }
    let guard = ga.freeze().await.expect("frozen again");
    assert_eq!(guard.thaw().await.expect("thawed"), 2);
    ga.execute(GuestPing::new()).await.expect("ping");
    drop(ga);
    let seen = server.await.expect("server");
    let thaws = seen.iter().filter(|n| *n == "guest-fsfreeze-thaw").count();
    assert_eq!(thaws, 2, "{seen:?}");
}

#[tokio::test]
async fn a_garbled_reply_is_an_error_and_the_next_call_resyncs() {
    let (ga, server) = fake_agent(vec![
        ("guest-info", Some(serde_json::json!("<garbage>"))),
        ("guest-ping", Some(serde_json::json!({}))),
    ])
    .await;
    let e = tokio::time::timeout(BOUND, ga.execute(GuestInfo::new()))
        .await
        .expect("no hang")
        .expect_err("garbled");
    assert!(e.to_string().contains("garbled reply"), "{e}");
    ga.execute(GuestPing::new()).await.expect("in step again");
    drop(ga);
    let seen = server.await.expect("server");
    assert_eq!(
        seen,
        [
            "guest-sync-delimited",
            "guest-info",
            "guest-sync-delimited",
            "guest-ping"
        ]
    );
}
