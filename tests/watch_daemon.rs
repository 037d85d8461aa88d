//! `cairn daemon --watch DIR` end to end: a daemon started after files were placed imports them;
//! the imported CIDs equal `cairn add`'s with the same options; `cairn watch ls|refresh` and
//! `cairn/watch/ls|refresh` over the RPC; a thousand small files import with the daemon's peak
//! RSS under [`RSS_BOUND`]; without a watched folder the commands say so.
//!
//! Waits are on the RPC's state (`cairn/watch/ls`, polled), never on a fixed sleep.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, Daemon, init_repo, ok, post};

/// The daemon's peak RSS (`VmHWM`) after importing 1,000 small files (1–8 KiB each) with the
/// default concurrency, in bytes: 128 MiB. Measured on the 2-core dev machine (debug build):
/// 46.6 MiB before the files, 65.4 MiB peak after them.
const RSS_BOUND: u64 = 128 << 20;

fn daemon_watching(repo: &Path, dir: &Path) -> Daemon {
    let mut cmd = Command::new(BIN);
    cmd.args(["daemon", "--watch"]).arg(dir);
    Daemon::start_cmd(repo, cmd)
}

fn ls(api: &str) -> Value {
    let answer = post(api, "cairn/watch/ls", None).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    serde_json::from_slice(&answer.body).unwrap()
}

/// Polls `cairn/watch/ls` until `done` holds (every 200 ms, up to 3 minutes).
fn wait_ls(api: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let v = ls(api);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn imported(v: &Value) -> u64 {
    v["Counts"]["Imported"].as_u64().unwrap()
}

fn cid_in(v: &Value, path: &str) -> String {
    v["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {v}"))["Cid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

#[test]
fn a_daemon_started_after_files_were_placed_imports_them_with_cairn_adds_cids() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    // Options other than the defaults, so the comparison means something.
    ok(
        repo.path(),
        &[
            "config",
            "--json",
            "Cairn.Watch",
            r#"{"SettleInterval":"1s","CidVersion":1,"RawLeaves":true,"Chunker":"size-65536"}"#,
        ],
    );
    let drop = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(drop.path().join("big.bin"), &big).unwrap();
    std::fs::write(drop.path().join("small.txt"), b"hello watch folder\n").unwrap();
    std::fs::create_dir_all(drop.path().join("album/sub")).unwrap();
    std::fs::write(drop.path().join("album/a.jpg"), b"aaaa").unwrap();
    std::fs::write(drop.path().join("album/sub/b.jpg"), b"bbbbbbbb").unwrap();
    std::fs::write(drop.path().join(".hidden"), b"never").unwrap();
    std::fs::write(drop.path().join("upload.part"), b"never").unwrap();

    let daemon = daemon_watching(repo.path(), drop.path());
    let v = wait_ls(&daemon.api, "the placed files", |v| imported(v) == 3);
    assert_eq!(v["Entries"].as_array().unwrap().len(), 3, "{v}");

    // `cairn add` with the same options gives the same CIDs.
    let add = |args: &[&str]| -> String {
        let mut all = vec![
            "add",
            "-Q",
            "--cid-version",
            "1",
            "--raw-leaves",
            "--chunker",
            "size-65536",
        ];
        all.extend_from_slice(args);
        ok(repo.path(), &all).trim().to_string()
    };
    let p = |name: &str| drop.path().join(name).to_string_lossy().into_owned();
    assert_eq!(cid_in(&v, "big.bin"), add(&[&p("big.bin")]));
    assert_eq!(cid_in(&v, "small.txt"), add(&[&p("small.txt")]));
    assert_eq!(cid_in(&v, "album"), add(&["-r", &p("album")]));

    // The CLI lists them (state, CID, size, name) and refreshes.
    let listing = ok(repo.path(), &["watch", "ls"]);
    let line = listing
        .lines()
        .find(|l| l.ends_with("\tbig.bin"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(
        line,
        format!("imported\t{}\t3000000\tbig.bin", cid_in(&v, "big.bin"))
    );
    let refreshed = ok(repo.path(), &["watch", "refresh"]);
    assert_eq!(refreshed.trim(), "scanned 3 entries, 0 changed");
    let json: Value =
        serde_json::from_str(&ok(repo.path(), &["watch", "ls", "--enc", "json"])).unwrap();
    assert_eq!(json["Counts"]["Imported"], 3);

    // The pins are there, and the snapshot the status page reads shows the folder.
    let pins = ok(repo.path(), &["pin", "ls", "--type", "recursive"]);
    for name in ["big.bin", "small.txt", "album"] {
        assert!(pins.contains(&cid_in(&v, name)), "{pins}");
    }
    let status: Value =
        serde_json::from_slice(&post(&daemon.api, "cairn/status", None).unwrap().body).unwrap();
    assert_eq!(status["Watch"]["Counts"]["Imported"], 3, "{status}");
    assert_eq!(status["Watch"]["Recent"].as_array().unwrap().len(), 3);
    let metrics = support::get(&daemon.api, "/debug/metrics/prometheus", &[])
        .unwrap()
        .0
        .text();
    assert!(
        metrics.contains("cairn_watch_entries{state=\"imported\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("cairn_watch_imports_total 3"), "{metrics}");
    let health = support::get(&daemon.api, "/health?verbose", &[])
        .unwrap()
        .0
        .text();
    assert!(health.contains("\"Name\":\"watch "), "{health}");
}

#[test]
fn a_thousand_small_files_import_with_bounded_memory() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    ok(
        repo.path(),
        &[
            "config",
            "--json",
            "Cairn.Watch",
            r#"{"SettleInterval":"1s"}"#,
        ],
    );
    let drop = tempfile::tempdir().unwrap();
    let daemon = daemon_watching(repo.path(), drop.path());
    let pid = daemon.child.id();
    let before = vm_hwm(pid);
    for i in 0..1000u32 {
        let len = 1024 + (i as usize * 7919) % 7168;
        let data: Vec<u8> = (0..len).map(|j| (j as u32 ^ i) as u8).collect();
        std::fs::write(drop.path().join(format!("f{i:04}.dat")), data).unwrap();
    }
    let v = wait_ls(&daemon.api, "1000 files", |v| imported(v) == 1000);
    assert_eq!(v["Counts"]["Failed"], 0);
    let peak = vm_hwm(pid);
    eprintln!(
        "watch: 1000 small files: daemon VmHWM {:.1} MiB (before the files: {:.1} MiB)",
        peak as f64 / 1048576.0,
        before as f64 / 1048576.0
    );
    assert!(
        peak < RSS_BOUND,
        "peak RSS {peak} bytes is over the bound {RSS_BOUND}"
    );
    // Every one of them is pinned.
    let pins = ok(repo.path(), &["pin", "ls", "--type", "recursive"]);
    assert_eq!(pins.lines().count(), 1000);
}

#[test]
fn without_a_watched_folder_the_watch_commands_say_so() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    let daemon = Daemon::start(repo.path());
    for cmd in ["cairn/watch/ls", "cairn/watch/refresh"] {
        let answer = post(&daemon.api, cmd, None).unwrap();
        assert_eq!(answer.status, 500, "{cmd}");
        let error: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(
            error["Message"],
            "no folder is watched: start the daemon with --watch DIR or set Cairn.Watch.Dir"
        );
    }
    let stderr = support::fails(repo.path(), &["watch", "ls"]);
    assert!(stderr.contains("no folder is watched"), "{stderr}");
    let status: Value =
        serde_json::from_slice(&post(&daemon.api, "cairn/status", None).unwrap().body).unwrap();
    assert!(status["Watch"].is_null());
}
