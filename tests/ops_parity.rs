//! Kubo parity for operators (issue 12), end to end through the `cairn` binary:
//!
//! - item 1: an `api` file left by a daemon killed with `kill -9` does not lock users out of the
//!   commands that work without a daemon; the stale file is removed when the repo lock is free,
//!   and kept (with an error) while a live process holds the lock;
//! - item 4: a `swarm.key` line with a multi-byte character makes the daemon exit 1 naming the
//!   character, not panic.

mod support;

use std::fs;
use std::process::Command;

use support::{BIN, Daemon, fails, init_repo, ok};

/// A repo whose daemon was killed with SIGKILL: its `api` file (returned) is still there.
fn crashed_repo() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    init_repo(dir.path());
    let mut d = Daemon::start(dir.path());
    d.kill();
    let api = fs::read_to_string(dir.path().join("api")).expect("kill -9 leaves the api file");
    (dir, api)
}

#[test]
fn offline_commands_run_on_the_repo_after_kill_9() {
    let (dir, api) = crashed_repo();
    let repo = dir.path();
    let stale = repo.join("api");
    // Each command meets the stale file (put back each time), as a user's first command would.
    let cases: &[(&[&str], &str)] = &[
        (&["config", "Datastore.StorageMax"], "10GB\n"),
        (&["bootstrap", "list"], ""),
        (&["config", "Datastore.StorageMax", "20GB"], ""),
        (&["config", "Datastore.StorageMax"], "20GB\n"),
        (
            &[
                "bootstrap",
                "add",
                "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
            ],
            "added /ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\n",
        ),
        (
            &["bootstrap", "list"],
            "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\n",
        ),
    ];
    for (args, want) in cases {
        fs::write(&stale, &api).unwrap();
        assert_eq!(ok(repo, args), *want, "cairn {args:?}");
        assert!(!stale.exists(), "cairn {args:?} left the stale api file");
    }
    // A command that needs the daemon says it is not running (not "cannot reach"), and the
    // stale file is gone after it too.
    fs::write(&stale, &api).unwrap();
    let err = fails(repo, &["id"]);
    assert!(err.contains("cairn daemon is not running"), "{err}");
    assert!(!stale.exists());
    // A garbled api file with nothing holding the repo is just as stale.
    fs::write(&stale, "/ip4/127.0.0.1/tcp/\u{e2}").unwrap();
    assert_eq!(ok(repo, &["config", "Datastore.StorageMax"]), "20GB\n");
    assert!(!stale.exists());
    // And the daemon starts again on the repo and answers the same commands online.
    let mut d = Daemon::start(repo);
    assert_eq!(ok(repo, &["config", "Datastore.StorageMax"]), "20GB\n");
    assert!(repo.join("api").exists());
    d.kill();
}

#[test]
fn a_live_lock_holder_keeps_the_api_file_and_the_command_fails() {
    let (dir, api) = crashed_repo();
    let repo = dir.path();
    // This test process stands in for a daemon that holds the repo but does not answer.
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(repo.join("repo.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let err = fails(repo, &["config", "Datastore.StorageMax"]);
    assert!(err.contains("cannot reach the cairn daemon"), "{err}");
    assert_eq!(fs::read_to_string(repo.join("api")).unwrap(), api);
    // Without an api file, an offline edit waits for nobody: it needs the lock itself.
    fs::remove_file(repo.join("api")).unwrap();
    let err = fails(repo, &["config", "Datastore.StorageMax", "1GB"]);
    assert!(err.contains("is locked by"), "{err}");
    drop(lock);
    assert_eq!(ok(repo, &["config", "Datastore.StorageMax"]), "10GB\n");
}

#[test]
fn a_multi_byte_character_in_swarm_key_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    init_repo(dir.path());
    // `a`, `â` (two bytes), then 61 hex digits: 64 bytes, as in the report.
    let line = format!("a\u{e2}{}", "0123456789abcdef".repeat(4).get(..61).unwrap());
    assert_eq!(line.len(), 64);
    fs::write(
        dir.path().join("swarm.key"),
        format!("/key/swarm/psk/1.0.0/\n/base16/\n{line}\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("daemon")
        .env("CAIRN_PATH", dir.path())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("the key has '\u{e2}' (U+00E2) at character 2, which is not a hex digit"),
        "{err}"
    );
}

#[test]
fn swarm_peers_prints_each_peer_id_once() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    init_repo(one.path());
    init_repo(two.path());
    let _a = Daemon::start(one.path());
    let _b = Daemon::start(two.path());
    let id: serde_json::Value = serde_json::from_str(&ok(two.path(), &["id"])).unwrap();
    let b_id = id["ID"].as_str().unwrap();
    let b_addr = id["Addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .find(|a| a.contains("/tcp/"))
        .unwrap()
        .to_string();
    assert_eq!(b_addr.matches("/p2p/").count(), 1, "{b_addr}");
    // An outbound dial with the peer id in the address, as bootstrap dials.
    ok(one.path(), &["swarm", "connect", &b_addr]);
    let peers = ok(one.path(), &["swarm", "peers"]);
    let line = peers
        .lines()
        .find(|l| l.ends_with(b_id))
        .unwrap_or_else(|| panic!("{peers}"));
    assert_eq!(line, b_addr, "{peers}");
}
