//! A real daemon's resources under many RPC clients. What clients leave behind once they have
//! gone is nothing: subscribers (`pubsub/sub` streams, fed by `pubsub/pub`), uploads (`add`,
//! `block/put`) and plain requests come and go, then the daemon's alive tokio tasks
//! (`cairn_runtime_alive_tasks`, from its Prometheus metrics) and open descriptors
//! (`/proc/PID/fd`) must come back to where they were. And a daemon started with a low soft
//! descriptor limit (1,024 is common) raises it, as Kubo (Go) does, so it serves more clients than
//! that limit's half (each connection costs it two descriptors). The load itself, and its
//! figures, live in `benches/daemon_load.rs` and `benches/soak.rs`.
//!
//! Run: `cargo test --test daemon_resources`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{BIN, Daemon, get, init_repo, post};

/// Clients of each kind opened at once.
const CLIENTS: usize = 24;

/// Slack for the daemon's own background work (a bitswap or DHT timer task that happens to be
/// alive at one reading and not the other): far below what `CLIENTS` leaked clients would leave.
const SLACK: f64 = 6.0;

fn alive_tasks(api: &str) -> f64 {
    let (answer, _) = get(api, "/debug/metrics/prometheus", &[]).unwrap();
    assert_eq!(answer.status, 200);
    answer
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("cairn_runtime_alive_tasks "))
        .expect("the metrics carry cairn_runtime_alive_tasks")
        .trim()
        .parse()
        .unwrap()
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Opens a `pubsub/sub` stream on `topic` (multibase) and reads its answer's head.
fn subscribe(api: &str, topic: &str) -> BufReader<TcpStream> {
    open(api, &format!("pubsub/sub?arg={topic}"))
}

/// Sends `POST /api/v0/{cmd}` on a keep-alive connection of its own and reads the answer's head
/// (status 200); the connection stays open as long as the reader lives.
fn open(api: &str, cmd: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /api/v0/{cmd} HTTP/1.1\r\nHost: {api}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            return r;
        }
    }
}

/// Waits (polling, since a task ending sends no event) until `f` is at most `bound`; returns the
/// last value, which the caller asserts on.
fn settle(bound: f64, mut f: impl FnMut() -> f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = f();
        if v <= bound || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tasks_and_descriptors_come_back_after_clients_leave() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    let mut cmd = Command::new(BIN);
    cmd.args(["daemon", "--enable-pubsub-experiment"]);
    let daemon = Daemon::start_cmd(repo.path(), cmd);
    let (api, pid) = (daemon.api.clone(), daemon.child.id());
    let (tasks_before, fds_before) = (alive_tasks(&api), fds(pid));
    assert!(tasks_before > 0.0, "a running daemon has tasks alive");
    for round in 0..2 {
        let topic = "uY2Fpcm4tcmVzb3VyY2Vz"; // "cairn-resources"
        let mut subs: Vec<_> = (0..CLIENTS).map(|_| subscribe(&api, topic)).collect();
        // Uploads and reads, each on a connection of its own that closes after its answer.
        for i in 0..CLIENTS {
            let data = format!("resources {round} {i}");
            let a = post(&api, "add?pin=false", Some(data.as_bytes())).unwrap();
            assert_eq!(a.status, 200, "{}", a.text());
            let a = post(&api, "block/put", Some(data.as_bytes())).unwrap();
            assert_eq!(a.status, 200, "{}", a.text());
        }
        let a = post(&api, &format!("pubsub/pub?arg={topic}"), Some(b"hello")).unwrap();
        assert_eq!(a.status, 200, "{}", a.text());
        // Every subscriber gets the message (a chunk-size line, then the JSON line).
        for s in &mut subs {
            let mut line = String::new();
            while !line.contains("\"data\"") {
                line.clear();
                assert!(s.read_line(&mut line).unwrap() > 0, "the stream ended");
            }
        }
        drop(subs);
    }

    let tasks_after = settle(tasks_before + SLACK, || alive_tasks(&api));
    assert!(
        tasks_after <= tasks_before + SLACK,
        "alive tasks {tasks_before} before the clients, {tasks_after} after they left"
    );
    let fds_after = settle(fds_before as f64 + SLACK, || fds(pid) as f64);
    assert!(
        fds_after <= fds_before as f64 + SLACK,
        "open descriptors {fds_before} before the clients, {fds_after} after they left"
    );
}

/// `(soft, hard)` from a `/proc/PID/limits` "Max open files" line.
fn fd_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    )
}

#[test]
fn a_low_soft_descriptor_limit_is_raised_so_more_clients_are_served() {
    const SOFT: usize = 256;
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    // The shell lowers the soft limit, then becomes the daemon (same pid).
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        &format!("ulimit -Sn {SOFT} && exec \"$0\" daemon"),
        BIN,
    ]);
    let daemon = Daemon::start_cmd(repo.path(), cmd);
    let (soft, hard) = fd_limits(daemon.child.id());
    assert_eq!(soft, hard, "the soft limit was raised to the hard one");
    if hard.parse::<usize>().is_ok_and(|h| h <= 2 * SOFT) {
        return; // no room above the low limit on this machine: nothing more to show
    }
    // More clients at once than the low limit allowed (two descriptors each): all are served.
    let held: Vec<_> = (0..SOFT).map(|_| open(&daemon.api, "version")).collect();
    assert_eq!(held.len(), SOFT);
}
