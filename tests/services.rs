//! The daemon's supervised services and its bounded shutdown, on real `cairn daemon` processes:
//! a listener broken under the daemon is restarted while the RPC answers (`/health?verbose`
//! showing each step), `/health` and `cairn diag healthy` report a shutdown before the RPC
//! stops answering, a clean shutdown exits 0 and removes the `api` file, and a request that
//! never ends holds the shutdown past `Internal.ShutdownTimeout`, which exits 1 naming the
//! service.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, init_repo, post};

const WAIT: Duration = Duration::from_secs(30);

/// A daemon with its stdout lines and stderr text.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    api: String,
    metrics: Option<String>,
}

/// `/ip4/127.0.0.1/tcp/PORT` → `127.0.0.1:PORT`.
fn host_port(multiaddr: &str) -> String {
    let parts: Vec<&str> = multiaddr.trim().split('/').collect();
    format!("{}:{}", parts[2], parts[4])
}

impl Daemon {
    fn start(repo: &Path) -> Daemon {
        Self::start_with(repo, &[])
    }

    fn start_with(repo: &Path, args: &[&str]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg("daemon")
            .args(args)
            .env("CAIRN_PATH", repo)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("RUST_LOG");
        let (child, out) = support::spawn_reading(cmd);
        let (lines, stderr) = (out.lines, out.stderr);
        let mut d = Daemon {
            child,
            lines,
            stderr,
            api: String::new(),
            metrics: None,
        };
        loop {
            let line = d.next_line("Daemon is ready");
            if let Some(a) = line.strip_prefix("RPC API server listening on ") {
                d.api = host_port(a);
            }
            if let Some(a) = line.strip_prefix("Metrics server listening on ") {
                d.metrics = Some(host_port(a));
            }
            if line.contains("Daemon is ready") {
                return d;
            }
        }
    }

    fn next_line(&mut self, waiting_for: &str) -> String {
        self.lines.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!(
                "no {waiting_for:?} from the daemon; stderr:\n{}",
                self.stderr.lock().unwrap()
            )
        })
    }

    fn wait_line(&mut self, needle: &str) {
        while !self.next_line(needle).contains(needle) {}
    }

    fn wait_exit(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within {within:?}; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on `addr`: status and body.
fn get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {raw:?}")))?;
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

fn verbose_health(api: &str) -> Value {
    let (_, body) = get(api, "/health?verbose").unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn service<'a>(health: &'a Value, prefix: &str) -> &'a Value {
    health["Services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} service in {health}"))
}

/// Edits the repo's config file (the test owns the repo; no daemon runs yet).
fn edit_config(repo: &Path, edit: impl FnOnce(&mut Value)) {
    let path = repo.join("config");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

/// Shuts down the daemon's listening socket on `port` from outside, the honest way: the test is
/// the daemon's parent, so it may take a copy of the daemon's descriptor (`pidfd_getfd(2)`,
/// ptrace rules), and `shutdown(SHUT_RD)` on a listening socket breaks it for every holder —
/// the daemon's next `accept` fails with `EINVAL`, as when a socket dies under a server. The
/// descriptor is found as `ss -p` finds it: the socket's inode in `/proc/<pid>/net/tcp`, then
/// the fd whose link is `socket:[inode]`.
fn break_listener(pid: u32, port: u16) {
    let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap();
    let inode = tcp
        .lines()
        .skip(1)
        .find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(cols[1].rsplit(':').next()?, 16).ok()?;
            // State 0A is LISTEN.
            (local_port == port && cols[3] == "0A").then(|| cols[9].to_string())
        })
        .unwrap_or_else(|| panic!("no listener on port {port}"));
    let target = format!("socket:[{inode}]");
    let fd = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == target))
        .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .expect("the listener's descriptor");
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    let copy: OwnedFd =
        rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty())
            .unwrap();
    rustix::net::shutdown(&copy, rustix::net::Shutdown::Read).unwrap();
    // Our copy is closed here, so only the daemon decides what happens to the port.
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn a_broken_metrics_listener_is_restarted_while_the_rpc_answers() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    edit_config(repo.path(), |c| {
        c["Cairn"] = serde_json::json!({"Metrics": {"Address": "/ip4/127.0.0.1/tcp/0"}});
    });
    let d = Daemon::start(repo.path());
    let metrics = d.metrics.clone().expect("a metrics listener");
    let (status, body) = get(&metrics, "/debug/metrics/prometheus").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("# HELP cairn_service_restarts"), "{body}");
    // Only metrics and health on that port.
    assert_eq!(post(&metrics, "id", None).unwrap().status, 404);
    let health = verbose_health(&d.api);
    assert_eq!(health["Status"], "ok", "{health}");
    assert_eq!(service(&health, "metrics")["State"], "ok");
    assert_eq!(service(&health, "api")["State"], "ok");
    assert_eq!(service(&health, "swarm")["State"], "ok");

    // Broken three times: restarts wait 100, 200, 400 ms, long enough to watch each step.
    let mut seen = Vec::new();
    for round in 1..=3u64 {
        break_listener(d.child.id(), port_of(&metrics));
        let deadline = Instant::now() + WAIT;
        loop {
            let health = verbose_health(&d.api);
            let m = service(&health, "metrics");
            let state = m["State"].as_str().unwrap().to_string();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if state == "restarting" {
                assert_eq!(health["Status"], "degraded", "{health}");
                // The RPC keeps serving while the metrics listener is down.
                let id = post(&d.api, "id", None).unwrap();
                assert_eq!(id.status, 200, "{}", id.text());
            }
            if m["Restarts"] == round && state == "ok" {
                assert!(
                    m["LastError"]
                        .as_str()
                        .unwrap()
                        .contains("Invalid argument"),
                    "{m}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "no restart; states {seen:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        let (status, _) = get(&metrics, "/debug/metrics/prometheus").unwrap();
        assert_eq!(status, 200, "the metrics listener serves again");
    }
    assert!(seen.iter().any(|s| s == "restarting"), "{seen:?}");
    assert_eq!(seen.last().unwrap(), "ok");
    let (_, body) = get(&d.api, "/debug/metrics/prometheus").unwrap();
    let name = service(&verbose_health(&d.api), "metrics")["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        body.contains(&format!(
            "cairn_service_restarts_total{{service=\"{name}\"}} 3"
        )),
        "{body}"
    );
    let logs = d.stderr.lock().unwrap().clone();
    assert!(logs.contains("service failed: Invalid argument"), "{logs}");
}

/// A `block/put` whose body arrives in two halves: an in-flight request until the second.
struct SlowUpload {
    stream: TcpStream,
    rest: Vec<u8>,
}

fn start_slow_upload(api: &str) -> SlowUpload {
    let boundary = "slowboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\nslow block\r\n--{boundary}--\r\n"
    )
    .into_bytes();
    let mut stream = TcpStream::connect(api).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "POST /api/v0/block/put HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (first, rest) = body.split_at(10);
    stream.write_all(first).unwrap();
    SlowUpload {
        stream,
        rest: rest.to_vec(),
    }
}

/// Waits until the daemon counts `n` `block/put` requests in flight (its own metric).
fn wait_in_flight(api: &str, n: u32) {
    wait_command_in_flight(api, "block/put", n);
}

fn wait_command_in_flight(api: &str, command: &str, n: u32) {
    let needle = format!("cairn_rpc_requests_in_flight{{command=\"{command}\"}} {n}");
    let deadline = Instant::now() + WAIT;
    while !get(api, "/debug/metrics/prometheus")
        .unwrap()
        .1
        .contains(&needle)
    {
        assert!(Instant::now() < deadline, "never {needle}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn diag_healthy(repo: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["diag", "healthy"])
        .env("CAIRN_PATH", repo)
        .output()
        .unwrap()
}

#[test]
fn health_turns_503_before_the_rpc_stops_and_a_clean_shutdown_exits_0() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    let mut d = Daemon::start(repo.path());
    let out = diag_healthy(repo.path());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    assert_eq!(get(&d.api, "/health").unwrap(), (200, "OK".to_string()));
    let healthy = post(&d.api, "diag/healthy", None).unwrap();
    assert_eq!(
        (healthy.status, healthy.text()),
        (200, "\"ok\"\n".to_string())
    );

    let mut upload = start_slow_upload(&d.api);
    wait_in_flight(&d.api, 1);
    d.sigterm();
    d.wait_line("Shutting down...");
    // Shutdown has begun; the request is still running, so the RPC still answers.
    assert_eq!(get(&d.api, "/health").unwrap().0, 503);
    let health = verbose_health(&d.api);
    assert_eq!(health["Status"], "stopping", "{health}");
    assert_eq!(service(&health, "api")["State"], "stopping", "{health}");
    let out = diag_healthy(repo.path());
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("daemon is shutting down"),
        "{out:?}"
    );
    let id = post(&d.api, "id", None).unwrap();
    assert_eq!(id.status, 200, "{}", id.text());
    // Kubo's RPC form, for `ipfs --api ... diag healthy`.
    let healthy = post(&d.api, "diag/healthy", None).unwrap();
    assert_eq!(healthy.status, 500, "{}", healthy.text());
    assert!(
        healthy.text().contains("daemon is shutting down"),
        "{}",
        healthy.text()
    );
    assert!(d.child.try_wait().unwrap().is_none());

    // The request finishes and gets its answer; then the daemon stops cleanly.
    upload.stream.write_all(&upload.rest).unwrap();
    let mut answer = String::new();
    upload.stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"Key\""), "{answer}");
    assert_eq!(d.wait_exit(WAIT), 0);
    assert!(!repo.path().join("api").exists());
    assert!(get(&d.api, "/health").is_err(), "nothing listens any more");
    let out = diag_healthy(repo.path());
    assert!(!out.status.success(), "{out:?}");
}

#[test]
fn a_request_that_outlives_the_shutdown_timeout_exits_1_naming_the_service() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    edit_config(repo.path(), |c| {
        c["Internal"] = serde_json::json!({"ShutdownTimeout": "1s"});
    });
    let mut d = Daemon::start(repo.path());
    // A client that never sends the rest of its upload: a real request that never ends.
    let _upload = start_slow_upload(&d.api);
    wait_in_flight(&d.api, 1);
    let started = Instant::now();
    d.sigterm();
    assert_eq!(d.wait_exit(WAIT), 1);
    assert!(started.elapsed() >= Duration::from_secs(1));
    let logs = d.stderr.lock().unwrap().clone();
    let port = port_of(&d.api);
    // Every listener still open is named (the gateway's too: listeners close after the
    // in-flight requests), the API first, then why.
    let line = logs
        .lines()
        .find(|l| l.contains("shutdown did not finish within Internal.ShutdownTimeout (1s)"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        line.contains(&format!("(1s): service api /ip4/127.0.0.1/tcp/{port}")),
        "{line}"
    );
    assert!(
        line.ends_with("has not stopped: 1 RPC requests still in flight; exiting with status 1"),
        "{line}"
    );
}

#[test]
fn a_bad_shutdown_timeout_is_refused_at_start() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    edit_config(repo.path(), |c| {
        c["Internal"] = serde_json::json!({"ShutdownTimeout": "soon"});
    });
    let out = Command::new(BIN)
        .arg("daemon")
        .env("CAIRN_PATH", repo.path())
        .env_remove("LISTEN_FDS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The config check names the key and the value (the schema check at start, or the
    // daemon's own parse of the duration).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Internal.ShutdownTimeout") && stderr.contains("\"soon\""),
        "{out:?}"
    );
}

/// A `pubsub sub` stream never ends on its own; it must not hold the shutdown (it ends when
/// shutdown begins, as Kubo's does), so the daemon still exits 0 at once.
#[test]
fn a_pubsub_subscriber_does_not_hold_the_shutdown() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    let mut d = Daemon::start_with(repo.path(), &["--enable-pubsub-experiment"]);
    let mut sub = Command::new(BIN)
        .args(["pubsub", "sub", "held-topic"])
        .env("CAIRN_PATH", repo.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_command_in_flight(&d.api, "pubsub/sub", 1);
    d.sigterm();
    assert_eq!(d.wait_exit(Duration::from_secs(10)), 0);
    let deadline = Instant::now() + WAIT;
    while sub.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the subscriber still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}
