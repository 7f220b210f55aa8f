//! `qmp proxy` as a boundary: a client over one of its budgets (message
//! size, `exec-oob` in flight, bytes unread) is told and dropped while
//! the others are served; out of descriptors it answers instead of
//! spinning; its log is private, redacted, one line per entry.

use std::io::Write;
use std::os::unix::net::UnixStream;

use super::*;

use super::proxy::proxy_limited;

/// QEMU, and `qmp proxy` in front of it with a log (`--drain 60`: the
/// tests read what a dropped client is owed after checking the others),
/// killed at the end.
struct Setup {
    _qemu: qmp_client::launch::Qemu,
    _dir: TempDir,
    listen: std::path::PathBuf,
    log: std::path::PathBuf,
    p: std::process::Child,
}

impl Setup {
    fn new(args: &[&str], ulimit: Option<u32>) -> Setup {
        let qemu = start(Which::Installed, Flavor::StorageDaemon);
        let dir = TempDir::new("qmp-proxy-budget").expect("temp dir");
        let listen = dir.path().join("p.qmp");
        let log = dir.path().join("log.jsonl");
        let mut all = vec!["--log", log.to_str().expect("utf-8"), "--drain", "60"];
        all.extend_from_slice(args);
        let p = proxy_limited(qemu.socket(), &listen, &all, ulimit);
        Setup {
            _qemu: qemu,
            _dir: dir,
            listen,
            log,
            p,
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.p.kill();
        let _ = self.p.wait();
    }
}

/// The proxy's peak resident memory, in KiB (`VmHWM`).
fn peak_rss_kib(p: &std::process::Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.id())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// A client of the proxy speaking raw QMP.
struct Raw {
    s: UnixStream,
    r: BufReader<UnixStream>,
}

impl Raw {
    /// Connected, greeted and negotiated (with `oob` when asked).
    fn connect(path: &Path, oob: bool) -> Raw {
        let s = UnixStream::connect(path).expect("connect to the proxy");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let r = BufReader::new(s.try_clone().expect("clone"));
        let mut c = Raw { s, r };
        assert!(c.line().contains("\"QMP\""), "a greeting");
        let caps = if oob { r#"["oob"]"# } else { "[]" };
        c.send(
            format!(r#"{{"execute":"qmp_capabilities","arguments":{{"enable":{caps}}}}}"#)
                .as_bytes(),
        );
        assert!(c.line().contains("\"return\""), "negotiated");
        c
    }

    fn send(&mut self, msg: &[u8]) {
        self.s.write_all(msg).expect("write");
        self.s.write_all(b"\n").expect("write");
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("read a line");
        l
    }

    /// Every line until the end of the connection (a reset, when the
    /// proxy closed with this client's commands unread, ends it too:
    /// what came before it is all read first).
    fn rest(&mut self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let mut l = String::new();
            match self.r.read_line(&mut l) {
                Ok(0) => break,
                Ok(_) => all.push(serde_json::from_str(&l).expect("a JSON line")),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("reading the proxy: {e}"),
            }
        }
        all
    }

    /// A thread writing `msgs` (until the proxy stops taking them).
    fn flood(&self, msgs: Vec<Vec<u8>>) -> std::thread::JoinHandle<()> {
        let mut s = self.s.try_clone().expect("clone");
        std::thread::spawn(move || {
            for m in msgs {
                if s.write_all(&m).is_err() {
                    return;
                }
            }
        })
    }
}

/// Entries of the proxy's log (whole lines: the last may be half
/// written).
fn log_entries(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Waits until the log has `n` entries `pred` accepts.
fn wait_log(log: &Path, n: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let e = log_entries(log);
        if e.iter().filter(|e| pred(e)).count() >= n {
            return e;
        }
        assert!(Instant::now() < deadline, "the log never had it: {e:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn desc(v: &Value) -> &str {
    v["error"]["desc"].as_str().unwrap_or("")
}

/// Case 1: 400 `exec-oob` commands of 1 MB each, then of 60 KB each
/// (under the message budget), sent without reading. The first is over
/// the message budget, the second over the `exec-oob` one: each client
/// is told and dropped, every command it had in QEMU answered; another
/// client is served meanwhile and the proxy's memory stays small.
#[test]
fn exec_oob_floods_are_dropped_and_the_others_served() {
    let t = Setup::new(&[], None);
    for (size, why) in [
        (1_000_000, "a message of more than 65536 bytes"),
        (60_000, "more than 8 exec-oob commands in flight"),
    ] {
        let mut c = Raw::connect(&t.listen, true);
        let msgs = (0..400)
            .map(|i| {
                format!(
                    r#"{{"exec-oob":"query-status","id":{i},"arguments":{{"pad":"{}"}}}}"#,
                    "x".repeat(size)
                )
                .into_bytes()
            })
            .collect();
        let writer = c.flood(msgs);
        wait_log(&t.log, 1, |e| {
            e["dropped"].as_str().is_some_and(|d| d.contains(why))
        });
        // Another client is served.
        let v = json_out(&t.listen, &["exec", "query-version"]);
        assert_eq!(v["qemu"]["major"], 10);
        let got = c.rest();
        let _ = writer.join();
        let last = got.last().expect("a last line");
        assert!(
            desc(last).starts_with("qmp proxy: you are disconnected: ") && desc(last).contains(why),
            "{last}"
        );
        assert!(last.get("id").is_none());
        // Every command the proxy read has its answer, once.
        let mut ids: Vec<u64> = got.iter().filter_map(|v| v["id"].as_u64()).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "one answer per command");
        let read = log_entries(&t.log)
            .iter()
            .filter(|e| e["oob"] == true && e["command"] == "query-status")
            .count();
        if size == 60_000 {
            assert!(n >= 9, "8 in flight and the one refused: {n}");
            assert!(
                got.iter()
                    .any(|v| desc(v).contains("more than 8 exec-oob") && v.get("id").is_some()),
                "the command over the budget is refused by id"
            );
        }
        assert!(n >= read, "{n} answers for {read} commands read");
    }
    let peak = peak_rss_kib(&t.p);
    eprintln!("the proxy's peak RSS: {peak} KiB");
    assert!(peak < 150 << 10, "the proxy's peak RSS: {peak} KiB");
}

/// Case 2: one 15 MB `query-status` from a read-only client never
/// reaches QEMU: it is over the message budget, the client is told and
/// dropped, and QEMU answers the others.
#[test]
fn a_huge_query_from_a_read_only_client_never_reaches_qemu() {
    let t = Setup::new(&["--read-only"], None);
    let mut c = Raw::connect(&t.listen, false);
    let huge = format!(
        r#"{{"execute":"query-status","arguments":{{"pad":"{}"}}}}"#,
        "y".repeat(15 << 20)
    );
    let writer = c.flood(vec![huge.into_bytes()]);
    wait_log(&t.log, 1, |e| e["dropped"].is_string());
    let v = json_out(&t.listen, &["exec", "query-version"]);
    assert_eq!(v["qemu"]["major"], 10);
    let got = c.rest();
    let _ = writer.join();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        desc(&got[0]).contains("a message of more than 65536 bytes"),
        "{got:?}"
    );
    let entries = log_entries(&t.log);
    assert!(
        entries.iter().any(|e| e["unparsable"]
            .as_str()
            .is_some_and(|u| u.contains("too large"))),
        "{entries:?}"
    );
    assert!(!entries.iter().any(|e| e["command"] == "query-status"));
}

/// Case 3: 8 clients ask `query-qmp-schema` over and over and never
/// read, with no events to find their queues full: each is dropped at
/// its byte budget, the proxy's memory stays bounded, and each gets the
/// replies it was owed, then why.
#[test]
fn clients_that_never_read_are_dropped_at_their_byte_budget() {
    let t = Setup::new(&[], None);
    let mut clients: Vec<Raw> = (0..8).map(|_| Raw::connect(&t.listen, false)).collect();
    let writers: Vec<_> = clients
        .iter()
        .map(|c| {
            let msgs = (0..2000)
                .map(|i| format!(r#"{{"execute":"query-qmp-schema","id":{i}}}"#).into_bytes())
                .collect();
            c.flood(msgs)
        })
        .collect();
    let entries = wait_log(&t.log, 8, |e| e["dropped"].is_string());
    assert!(
        entries
            .iter()
            .filter_map(|e| e["dropped"].as_str())
            .all(|d| d.contains("bytes of replies and events unread")),
        "{entries:?}"
    );
    let v = json_out(&t.listen, &["exec", "query-version"]);
    assert_eq!(v["qemu"]["major"], 10);
    for c in &mut clients {
        let got = c.rest();
        let last = got.last().expect("a last line");
        assert!(desc(last).contains("you are disconnected"), "{last}");
        let answers: Vec<u64> = got.iter().filter_map(|v| v["id"].as_u64()).collect();
        // In order, none missing, up to the drop.
        assert!(!answers.is_empty());
        assert!(
            answers.iter().enumerate().all(|(i, id)| *id == i as u64),
            "{answers:?}"
        );
    }
    for w in writers {
        let _ = w.join();
    }
    let peak = peak_rss_kib(&t.p);
    eprintln!("the proxy's peak RSS: {peak} KiB");
    assert!(peak < 150 << 10, "the proxy's peak RSS: {peak} KiB");
}

/// Case 4: out of descriptors (`ulimit -n 64`, 100 clients), every client
/// is greeted or told, none is left waiting; once clients leave, new ones
/// are served.
#[test]
fn out_of_descriptors_every_client_is_greeted_or_told() {
    let mut t = Setup::new(&[], Some(64));
    let mut held = Vec::new();
    let (mut greeted, mut told) = (0, 0);
    for _ in 0..100 {
        let s = UnixStream::connect(&t.listen).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut l = String::new();
        r.read_line(&mut l).expect("a first line, not silence");
        if l.contains("\"QMP\"") {
            greeted += 1;
        } else {
            assert!(l.contains("out of file descriptors"), "{l}");
            told += 1;
        }
        held.push(s);
    }
    eprintln!("nofile 64: {greeted} greeted, {told} told");
    assert_eq!(greeted + told, 100);
    assert!(greeted >= 30 && told >= 1, "{greeted} greeted, {told} told");
    drop(held);
    // Served again once descriptors are free.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, out, err) = run(&t.listen, &["exec", "--raw", "query-version"]);
        if code == 0 {
            assert!(out.contains("\"qemu\""), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {err}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(t.p.try_wait().expect("wait").is_none(), "the proxy runs on");
}

/// Case 5: the log is created 0600, secrets are redacted (kept with
/// `--log-secrets`), U+2028 and U+0085 are escaped, and a message that
/// is not a command is logged too.
#[test]
fn the_log_is_private_redacted_and_one_entry_per_line() {
    use std::os::unix::fs::PermissionsExt;
    let qemu = start(Which::Installed, Flavor::StorageDaemon);
    let dir = TempDir::new("qmp-proxy-log").expect("temp dir");
    let listen = dir.path().join("p.qmp");
    for keep in [false, true] {
        let log = dir.path().join(format!("log-{keep}.jsonl"));
        let mut args = vec!["--log", log.to_str().expect("utf-8")];
        if keep {
            args.push("--log-secrets");
        }
        let mut p = proxy_limited(qemu.socket(), &listen, &args, None);
        let mode = std::fs::metadata(&log).expect("log").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut c = Raw::connect(&listen, false);
        let id = if keep { "s1" } else { "s0" };
        c.send(
            format!(r#"{{"execute":"object-add","arguments":{{"qom-type":"secret","id":"{id}","data":"hunter2"}}}}"#)
                .as_bytes(),
        );
        assert!(c.line().contains("\"return\""));
        c.send(
            "{\"execute\":\"qom-list\",\"arguments\":{\"path\":\"/a\u{2028}b\u{85}c\"}}".as_bytes(),
        );
        assert!(c.line().contains("\"error\""));
        c.send(b"{\"execute\": 12}");
        assert!(c.line().contains("must be a string"));
        let entries = wait_log(&log, 1, |e| e["unparsable"].is_string());
        let raw = std::fs::read(&log).expect("log");
        let text = String::from_utf8(raw).expect("utf-8");
        assert_eq!(text.contains("hunter2"), keep, "{text}");
        assert_eq!(text.contains("<redacted>"), !keep, "{text}");
        assert!(!text.contains(['\u{2028}', '\u{85}']), "{text}");
        assert!(
            text.contains("\\u2028") && text.contains("\\u0085"),
            "{text}"
        );
        let path = entries
            .iter()
            .find(|e| e["command"] == "qom-list")
            .expect("qom-list logged");
        assert_eq!(path["arguments"]["path"], "/a\u{2028}b\u{85}c");
        assert_eq!(text.lines().count(), entries.len());
        let _ = p.kill();
        let _ = p.wait();
    }
}

/// A client that closes its end with replies unread and never reads them
/// holds nothing past the drain: the proxy closes its socket (its
/// descriptor count comes back).
#[test]
fn a_client_that_leaves_without_reading_is_closed_after_the_drain() {
    let qemu = start(Which::Installed, Flavor::StorageDaemon);
    let dir = TempDir::new("qmp-proxy-left").expect("temp dir");
    let listen = dir.path().join("p.qmp");
    // A budget large enough that the client is never over it: it only
    // leaves.
    let mut p = proxy_limited(
        qemu.socket(),
        &listen,
        &[
            "--drain",
            "1",
            "--client-bytes",
            "1000000000",
            "--log",
            "/dev/null",
        ],
        None,
    );
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", p.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = fds();
    let c = Raw::connect(&listen, false);
    let mut s = c.s.try_clone().expect("clone");
    // More replies than the socket buffers hold (each is about 117 KB;
    // a Unix socket buffers a few hundred KB): few enough that QEMU
    // answers them all in a few seconds even on a loaded machine.
    for i in 0..20 {
        s.write_all(format!("{{\"execute\":\"query-qmp-schema\",\"id\":{i}}}\n").as_bytes())
            .expect("write");
    }
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    let deadline = Instant::now() + Duration::from_secs(60);
    while fds() > before {
        assert!(Instant::now() < deadline, "the proxy kept the socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(c);
    let _ = p.kill();
    let _ = p.wait();
}
