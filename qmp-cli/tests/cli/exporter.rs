//! `qmp exporter` scraped by a real Prometheus (Debian's `prometheus`
//! package, started here on a loopback port with its own data
//! directory): a guestless qemu-system whose disk is kept busy by its
//! boot sector and which migrates meanwhile (to a socket never read), and a
//! qemu-storage-daemon running a throttled backup; the series read back
//! through Prometheus' query API.

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;

/// A VM named `name`, its disk busy (no guest OS), with a second monitor
/// for the test's own commands.
pub(crate) struct BusyVm {
    pub two: Two,
    _disk: TempDir,
}

pub(crate) fn busy_vm(name: &str) -> BusyVm {
    let disk = TempDir::new("qmp-busy").expect("temp dir");
    let img = disk.path().join("disk.img");
    tests::busy_disk(&img).expect("disk");
    let drive = format!("if=none,id=drive0,format=raw,file={}", img.display());
    let extra = [
        "-name",
        name,
        "-drive",
        &drive,
        "-device",
        "virtio-blk-pci,drive=drive0,id=disk0",
    ];
    BusyVm {
        two: start_two_with(Which::Installed, Flavor::System, &extra),
        _disk: disk,
    }
}

/// `qmp -s SOCKET exec ARGS`, which must succeed.
pub(crate) fn exec_ok(socket: &Path, args: &[&str]) {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let (code, _, err) = run(socket, &all);
    assert_eq!(code, 0, "qmp exec {args:?}: {err}");
}

/// A migration of `vm` that stays active: to a socket this test accepts
/// and never reads, so QEMU's sending blocks once its buffers are full
/// (the VM runs on). It fails when the returned guard goes.
pub(crate) fn stuck_migration(vm: &BusyVm) -> (std::os::unix::net::UnixStream, TempDir) {
    let dir = TempDir::new("qmp-migration").expect("temp dir");
    let path = dir.path().join("dest.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("listen");
    exec_ok(
        &vm.two.second,
        &["migrate", &format!("uri=unix:{}", path.display())],
    );
    let (stream, _) = listener.accept().expect("QEMU connects");
    (stream, dir)
}

/// A storage daemon running backup job `slow` (4 KiB/s over 1 GiB of
/// data), with a second monitor.
pub(crate) fn busy_daemon() -> Two {
    let qsd = start_two(Which::Installed, Flavor::StorageDaemon);
    for n in ["src", "tgt"] {
        let arg = format!(
            "{{\"driver\": \"null-co\", \"node-name\": \"{n}\", \"size\": 1073741824, \"read-zeroes\": false}}"
        );
        exec_ok(&qsd.second, &["blockdev-add", &arg]);
    }
    exec_ok(
        &qsd.second,
        &[
            "blockdev-backup",
            "job-id=slow",
            "device=src",
            "target=tgt",
            "sync=full",
            "speed=4096",
        ],
    );
    qsd
}

/// GET `path` from `addr`: the body (an error while the server starts).
fn try_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default())
}

fn http_get(addr: &str, path: &str) -> String {
    try_get(addr, path).unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"))
}

/// `q` for a URL's query string.
fn escape(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A free loopback port (bound and let go: the tests' own processes
/// are the only ones that take ports here).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port()
}

/// A child process killed (by its PID, which this test started) when
/// dropped.
pub(crate) struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `qmp exporter` on a port of its own choosing: the process and its
/// address.
pub(crate) fn exporter(args: &[&str]) -> (Killed, String) {
    let mut child = qmp()
        .args(["exporter", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("QMP_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp exporter runs");
    let lines = line_channel(child.stderr.take().expect("stderr"));
    let child = Killed(child);
    let line = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("the exporter says where it serves")
        .expect("a line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_string();
    (child, addr)
}

/// Prometheus' answer to `query` (the vector's samples: labels, value).
fn prom_query(prom: &str, query: &str) -> Vec<(Value, f64)> {
    // Nothing yet while Prometheus starts.
    let body = try_get(prom, &format!("/api/v1/query?query={}", escape(query))).unwrap_or_default();
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|s| {
                    let value = s["value"][1]
                        .as_str()
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(f64::NAN);
                    (s["metric"].clone(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until Prometheus answers `query` with samples `ok` accepts.
fn prom_until(prom: &str, query: &str, ok: impl Fn(&[(Value, f64)]) -> bool) -> Vec<(Value, f64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = prom_query(prom, query);
        if ok(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never answered `{query}` as wanted: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn prometheus_scrapes_the_exporter_and_reads_the_series_back() {
    let vm = busy_vm("vm-e");
    let _migration = stuck_migration(&vm);
    let qsd = busy_daemon();
    let vm_socket = vm.two.qemu.socket().display().to_string();
    let qsd_socket = qsd.qemu.socket().display().to_string();
    let (_exporter, addr) = exporter(&["--interval-ms", "250", &vm_socket, &qsd_socket]);

    // The endpoint itself: OpenMetrics text.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let t = http_get(&addr, "/metrics");
        if t.contains("qemu_job_progress_ratio") && t.contains("qemu_migration_remaining_bytes") {
            break t;
        }
        assert!(Instant::now() < deadline, "the series never came: {t}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE qemu_block_written_bytes counter"),
        "{text}"
    );
    assert!(http_get(&addr, "/nope").contains("not found"));

    // Events after the exporter connected: STOP and RESUME, counted.
    exec_ok(&vm.two.second, &["stop"]);
    exec_ok(&vm.two.second, &["cont"]);

    // A real Prometheus scrapes it every second.
    let data = TempDir::new("qmp-prometheus").expect("temp dir");
    let config = data.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: qemu\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .expect("config");
    let prom = format!("127.0.0.1:{}", free_port());
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (Debian's package `prometheus`)"),
    );
    let up = prom_until(&prom, "qemu_up", |s| {
        s.len() == 2 && s.iter().all(|(_, v)| *v == 1.0)
    });
    let monitors: Vec<&str> = up
        .iter()
        .filter_map(|(m, _)| m["monitor"].as_str())
        .collect();
    assert!(monitors.contains(&"vm-e"), "{up:?}");
    prom_until(
        &prom,
        "rate(qemu_block_write_ops_total{monitor=\"vm-e\"}[5s])",
        |s| s.iter().any(|(_, v)| *v > 0.0),
    );
    prom_until(
        &prom,
        "qemu_migration_remaining_bytes{status=\"active\"}",
        |s| s.iter().any(|(_, v)| *v > 0.0),
    );
    prom_until(&prom, "qemu_job_progress_ratio", |s| {
        s.iter().any(|(m, v)| {
            m["job_id"] == "slow" && m["status"] == "running" && (0.0..1.0).contains(v)
        })
    });
    prom_until(
        &prom,
        "qemu_events_total{monitor=\"vm-e\",event=\"STOP\"}",
        |s| s.iter().any(|(_, v)| *v == 1.0),
    );
    prom_until(&prom, "qemu_run_state{monitor=\"vm-e\"}", |s| {
        s.iter().any(|(m, _)| m["state"] == "running")
    });
}

#[test]
fn the_exporter_asks_only_the_queries_named() {
    let (code, _, err) = run_bare(&["exporter", "--queries", "status,disks", "/tmp"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown query 'disks'"), "{err}");

    let q = start(Which::Installed, Flavor::System);
    let socket = q.socket().display().to_string();
    let (_exporter, addr) = exporter(&["--interval-ms", "100", "--queries", "status", &socket]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let t = http_get(&addr, "/metrics");
        if t.contains("qemu_run_state{") {
            break t;
        }
        assert!(Instant::now() < deadline, "no run state came: {t}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !text.contains("qemu_vcpus{") && !text.contains("qemu_block_"),
        "{text}"
    );
}
