//! The `cairn` binary end to end, in temporary repos: every client command against a real daemon
//! (with exit codes), `cairn shutdown`, signals, systemd socket activation (with the real
//! `systemd-socket-activate`) and bad `LISTEN_*` values, `sd_notify`, and stale-lock takeover.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn::node::{Node, Profile};
use support::{cli, fails, ok};

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const WAIT: Duration = Duration::from_secs(30);

/// A repo initialised with the test profile.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["init", "--profile", "test"])
        .env("CAIRN_PATH", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A daemon and its output lines.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

fn spawn_daemon(cmd: Command) -> Daemon {
    let (child, out) = support::spawn_reading(cmd);
    Daemon {
        child,
        lines: out.lines,
        stderr: out.stderr,
    }
}

fn daemon_cmd(repo: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("daemon")
        .args(extra)
        .env("CAIRN_PATH", repo)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID");
    c
}

impl Daemon {
    fn start(repo: &Path, extra: &[&str]) -> Daemon {
        let mut d = spawn_daemon(daemon_cmd(repo, extra));
        d.wait_line("Daemon is ready");
        d
    }

    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "no {needle:?} from the daemon; stderr:\n{}",
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    fn wait_exit(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within {within:?}"
            );
            // Poll the process table; the child owns no channel we could wait on.
            std::thread::yield_now();
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_command_against_a_real_daemon() {
    let repo = repo();
    let r = repo.path();
    let mut daemon = Daemon::start(r, &["--enable-pubsub-experiment"]);
    // A second node to talk to.
    let peer = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .gossipsub(true)
        .build()
        .await
        .unwrap();
    let peer_addr = format!(
        "{}/p2p/{}",
        peer.listen_addrs().await.unwrap()[0],
        peer.peer_id()
    );

    assert!(ok(r, &["version"]).starts_with("cairn version "));
    let id: serde_json::Value = serde_json::from_str(&ok(r, &["id"])).unwrap();
    assert!(id["ID"].as_str().unwrap().starts_with("12D3KooW"));
    assert!(ok(r, &["--enc", "json", "version"]).contains("\"Version\""));

    // Blocks.
    let file = r.join("data.bin");
    std::fs::write(&file, b"hello from the CLI").unwrap();
    let cid = ok(r, &["block", "put", file.to_str().unwrap()])
        .trim()
        .to_string();
    assert!(cid.starts_with("bafkrei"));
    let got = cli(r, &["block", "get", &cid]);
    assert_eq!(got.stdout, b"hello from the CLI");
    assert!(ok(r, &["block", "stat", &cid]).contains("Size: 18"));
    let file2 = r.join("node.bin");
    std::fs::write(&file2, b"\x0a\x02\x08\x02").unwrap();
    let other = ok(
        r,
        &[
            "block",
            "put",
            file2.to_str().unwrap(),
            "--cid-codec",
            "dag-pb",
        ],
    );
    assert!(other.trim().starts_with("bafybei"));
    assert!(ok(r, &["block", "rm", other.trim()]).starts_with("removed "));
    assert!(fails(r, &["block", "rm", other.trim()]).contains("some blocks not removed"));
    assert!(fails(r, &["block", "stat", "notacid"]).starts_with("Error: "));

    // Swarm.
    assert!(ok(r, &["swarm", "connect", &peer_addr]).contains("success"));
    assert!(ok(r, &["swarm", "peers"]).contains(&peer.peer_id().to_string()));
    assert!(ok(r, &["swarm", "addrs", "local"]).contains("/ip4/127.0.0.1/"));
    assert!(ok(r, &["swarm", "addrs"]).contains(&peer.peer_id().to_string()));

    // Routing and ping.
    ok(r, &["routing", "provide", &cid]);
    let theirs = cairn::blockstore::Block::from_data(
        cairn::blockstore::codec::RAW,
        &b"the peer's block"[..],
    )
    .unwrap();
    peer.put_block(&theirs).await.unwrap();
    peer.provide(theirs.cid()).await.unwrap();
    assert!(
        ok(
            r,
            &["routing", "findprovs", &theirs.cid().to_string(), "-n", "1"]
        )
        .contains(&peer.peer_id().to_string())
    );
    assert!(
        ok(r, &["routing", "findpeer", &peer.peer_id().to_string()]).contains("/ip4/127.0.0.1/")
    );
    assert!(ok(r, &["ping", &peer.peer_id().to_string(), "-n", "2"]).contains("Average latency"));

    // Pubsub: a subscriber process prints what a publisher process sends.
    let mut sub = Command::new(BIN)
        .args(["pubsub", "sub", "cli-topic"])
        .env("CAIRN_PATH", r)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let sub_out = sub.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(sub_out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let deadline = Instant::now() + WAIT;
    while !ok(r, &["pubsub", "ls"]).contains("cli-topic") {
        assert!(Instant::now() < deadline, "the subscription never appeared");
        std::thread::yield_now();
    }
    ok(r, &["pubsub", "pub", "cli-topic", "a message"]);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "a message");
    ok(r, &["pubsub", "peers"]);
    let _ = sub.kill();
    let _ = sub.wait();

    // Pins and the repo.
    assert!(ok(r, &["pin", "add", &cid]).contains("pinned"));
    assert!(ok(r, &["pin", "ls", "--type", "recursive"]).contains(&format!("{cid} recursive")));
    assert!(ok(r, &["pin", "rm", &cid]).contains("unpinned"));
    assert!(ok(r, &["repo", "stat"]).contains("NumObjects"));
    assert!(ok(r, &["repo", "gc"]).contains(&format!("removed {cid}")));

    // Bootstrap.
    let entry = format!("/ip4/127.0.0.1/tcp/1/p2p/{}", peer.peer_id());
    assert!(ok(r, &["bootstrap", "add", &entry]).contains(&format!("added {entry}")));
    assert!(ok(r, &["bootstrap", "list"]).contains(&entry));
    assert!(ok(r, &["bootstrap", "rm", &entry]).contains("removed"));
    assert_eq!(ok(r, &["bootstrap", "add", "--default"]).lines().count(), 7);
    assert_eq!(ok(r, &["bootstrap", "rm", "--all"]).lines().count(), 7);
    assert!(
        fails(r, &["bootstrap", "add", "/ip4/1.2.3.4/tcp/1"]).contains("invalid bootstrap address")
    );

    // Config.
    assert!(ok(r, &["config", "show"]).contains("\"PeerID\""));
    assert_eq!(ok(r, &["config", "Datastore.StorageMax"]).trim(), "10GB");
    ok(r, &["config", "Datastore.StorageMax", "20GB"]);
    assert_eq!(ok(r, &["config", "Datastore.StorageMax"]).trim(), "20GB");
    ok(r, &["config", "Swarm.ConnMgr.LowWater", "20", "--json"]);
    assert!(fails(r, &["config", "Identity.PrivKey"]).contains("private key"));

    ok(r, &["swarm", "disconnect", &peer_addr]);
    let kept_file = r.join("kept.bin");
    std::fs::write(&kept_file, b"kept across restarts").unwrap();
    let kept = ok(r, &["block", "put", "--pin", kept_file.to_str().unwrap()])
        .trim()
        .to_string();

    // Shutdown: acknowledged, the daemon exits 0 within 5 s, api file gone, lock released.
    ok(r, &["shutdown"]);
    assert_eq!(daemon.wait_exit(Duration::from_secs(5)), 0);
    assert!(!r.join("api").exists());
    assert!(fails(r, &["id"]).contains("daemon is not running"));
    let _again = Daemon::start(r, &[]);
    assert!(
        ok(r, &["block", "stat", &kept]).contains("Size: 20"),
        "blocks survive a restart"
    );
    assert!(
        !_again.stderr.lock().unwrap().contains("stale"),
        "a clean stop leaves no stale lock"
    );
    ok(r, &["shutdown"]);
}

#[test]
fn sigterm_is_graceful_and_a_second_signal_exits_255() {
    let repo = repo();
    let mut d = Daemon::start(repo.path(), &[]);
    Command::new("kill")
        .args(["-TERM", &d.pid()])
        .status()
        .unwrap();
    assert_eq!(d.wait_exit(Duration::from_secs(10)), 0);
    assert!(!repo.path().join("api").exists());

    // The second signal must land while the first shutdown is still under way: an upload that
    // stalls half-way is an in-flight request the graceful shutdown waits for.
    let mut d = Daemon::start(repo.path(), &[]);
    let api = std::fs::read_to_string(repo.path().join("api")).unwrap();
    let port: u16 = api.rsplit('/').next().unwrap().parse().unwrap();
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled
        .write_all(b"POST /api/v0/block/put HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n--b\r\n")
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &d.pid()])
        .status()
        .unwrap();
    d.wait_line("Received interrupt signal");
    Command::new("kill")
        .args(["-TERM", &d.pid()])
        .status()
        .unwrap();
    assert_eq!(d.wait_exit(Duration::from_secs(10)), 255);
    drop(stalled);
}

#[test]
fn systemd_socket_activation_serves_the_handed_socket() {
    let repo = repo();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("systemd-socket-activate");
    cmd.args([
        "-l",
        &format!("127.0.0.1:{port}"),
        "--fdname=io.ipfs.api",
        "-E",
        &format!("CAIRN_PATH={}", repo.path().display()),
        BIN,
        "daemon",
    ]);
    let mut d = spawn_daemon(cmd);
    // systemd-socket-activate starts the daemon on the first connection.
    let mut s = connect_retry(port);
    s.write_all(b"POST /api/v0/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"Version\""));
    d.wait_line("Daemon is ready");
    assert_eq!(
        std::fs::read_to_string(repo.path().join("api")).unwrap(),
        format!("/ip4/127.0.0.1/tcp/{port}")
    );
    ok(repo.path(), &["shutdown"]);
    assert_eq!(d.wait_exit(Duration::from_secs(10)), 0);
}

fn connect_retry(port: u16) -> std::net::TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) => assert!(
                Instant::now() < deadline,
                "systemd-socket-activate never listened: {e}"
            ),
        }
        std::thread::yield_now();
    }
}

#[test]
fn bad_listen_fds_are_ignored_or_refused_never_a_crash() {
    let repo = repo();
    for (fds, pid) in [("abc", "1"), ("1", "1")] {
        let mut c = daemon_cmd(repo.path(), &[]);
        c.env("LISTEN_FDS", fds).env("LISTEN_PID", pid);
        let mut d = spawn_daemon(c);
        d.wait_line("Daemon is ready");
        let err = d.stderr.lock().unwrap().clone();
        assert!(
            err.contains("ignoring socket activation"),
            "LISTEN_FDS={fds} LISTEN_PID={pid}: {err}"
        );
        ok(repo.path(), &["shutdown"]);
        assert_eq!(d.wait_exit(Duration::from_secs(10)), 0);
    }
    // fd 3 is a plain file: a clear error, exit 1.
    let script = format!("exec 3</etc/hostname; LISTEN_PID=$$ LISTEN_FDS=1 exec {BIN} daemon");
    let out = Command::new("sh")
        .args(["-c", &script])
        .env("CAIRN_PATH", repo.path())
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fd 3 is not a listening TCP socket"), "{err}");
}

#[tokio::test]
async fn sd_notify_says_ready_then_stopping() {
    let repo = repo();
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
    let mut c = daemon_cmd(repo.path(), &[]);
    // WatchdogSec=200ms, as systemd would announce it.
    c.env("NOTIFY_SOCKET", &path).env("WATCHDOG_USEC", "200000");
    let mut d = spawn_daemon(c);
    let mut buf = vec![0u8; 4096];
    let mut recv = async || {
        let n = tokio::time::timeout(WAIT, socket.recv(&mut buf))
            .await
            .expect("a notification")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let first = recv().await;
    assert!(first.contains("READY=1"), "{first}");
    let ping = recv().await;
    assert!(
        ping.contains("WATCHDOG=1"),
        "the event loop pings the watchdog: {ping}"
    );
    ok(repo.path(), &["shutdown"]);
    let mut second = recv().await;
    while second.contains("WATCHDOG=1") {
        second = recv().await;
    }
    assert!(second.contains("STOPPING=1"), "{second}");
    assert_eq!(d.wait_exit(Duration::from_secs(10)), 0);
}

#[test]
fn a_stale_lock_after_kill_9_is_taken_over() {
    let repo = repo();
    let mut d = Daemon::start(repo.path(), &[]);
    d.child.kill().unwrap(); // SIGKILL
    d.child.wait().unwrap();
    let mut again = spawn_daemon(daemon_cmd(repo.path(), &[]));
    again.wait_line("Daemon is ready");
    let err = again.stderr.lock().unwrap().clone();
    assert!(err.contains("stale repo.lock"), "{err}");
    ok(repo.path(), &["shutdown"]);
    assert_eq!(again.wait_exit(Duration::from_secs(10)), 0);
}

#[test]
fn config_and_bootstrap_edit_the_repo_when_no_daemon_runs() {
    let repo = repo();
    let r = repo.path();
    ok(r, &["config", "Datastore.StorageMax", "3GB"]);
    assert_eq!(ok(r, &["config", "Datastore.StorageMax"]).trim(), "3GB");
    assert_eq!(ok(r, &["bootstrap", "add", "--default"]).lines().count(), 7);
    assert_eq!(ok(r, &["bootstrap", "list"]).lines().count(), 7);
    assert_eq!(ok(r, &["bootstrap", "rm", "--all"]).lines().count(), 7);
    assert!(ok(r, &["bootstrap", "list"]).is_empty());
    assert!(fails(r, &["config", "Swarm.ConnMgr.LowWater", "lots"]).contains("LowWater"));
    // Client commands still need the daemon, and say so.
    assert!(fails(r, &["id"]).contains("daemon is not running"));
}

#[test]
fn init_with_an_rsa_identity_as_kubo_does_and_the_daemon_runs_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let out = ok(r, &["init", "--profile", "test", "--algorithm", "rsa"]);
    assert!(out.contains("2048-bit RSA"), "{out}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("config")).unwrap()).unwrap();
    let peer_id = config["Identity"]["PeerID"].as_str().unwrap().to_string();
    assert!(peer_id.starts_with("Qm"), "{peer_id}");
    assert!(out.contains(&peer_id), "{out}");

    // The daemon loads the RSA key and announces the same id.
    let mut daemon = Daemon::start(r, &[]);
    assert!(ok(r, &["id"]).contains(&peer_id));
    ok(r, &["shutdown"]);
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), 0);

    // Kubo's limits and names: -b below 2048 and unknown algorithms are refused, nothing written.
    let other = tempfile::tempdir().unwrap();
    let err = fails(other.path(), &["init", "-a", "rsa", "-b", "1024"]);
    assert!(err.contains("between 2048 and 8192 bits"), "{err}");
    let err = fails(other.path(), &["init", "-a", "dsa"]);
    assert!(err.contains("unknown key algorithm"), "{err}");
    assert!(!other.path().join("config").exists());
    let out = ok(other.path(), &["init", "-a", "ed25519", "-p", "test"]);
    assert!(out.contains("12D3KooW"), "{out}");
}

/// A dag-pb node with only links (protobuf: repeated PBLink at field 2, each with its Hash at
/// field 1), enough for a DAG that `refs`, `dag export` and `pin add` walk.
fn dag_pb_links(links: &[&cairn::blockstore::Cid]) -> Vec<u8> {
    let mut out = Vec::new();
    for cid in links {
        let hash = cid.to_bytes();
        let mut link = vec![0x0a, hash.len() as u8];
        link.extend_from_slice(&hash);
        out.push(0x12);
        out.push(link.len() as u8);
        out.extend_from_slice(&link);
    }
    out
}

/// The CIDs of a CARv1's sections, in order.
fn car_cids(car: &[u8]) -> Vec<String> {
    fn varint(bytes: &[u8], pos: &mut usize) -> usize {
        let (mut n, mut shift) = (0usize, 0);
        loop {
            let b = bytes[*pos];
            *pos += 1;
            n |= ((b & 0x7f) as usize) << shift;
            if b < 0x80 {
                return n;
            }
            shift += 7;
        }
    }
    let mut pos = 0;
    let header = varint(car, &mut pos);
    pos += header;
    let mut cids = Vec::new();
    while pos < car.len() {
        let len = varint(car, &mut pos);
        let mut cursor = std::io::Cursor::new(&car[pos..pos + len]);
        cids.push(
            cairn::blockstore::Cid::read_bytes(&mut cursor)
                .unwrap()
                .to_string(),
        );
        pos += len;
    }
    cids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitswap_refs_dag_export_pin_progress_and_global_options_from_the_cli() {
    use cairn::blockstore::{Block, codec};
    let repo = repo();
    let r = repo.path();
    let _daemon = Daemon::start(r, &[]);
    // A peer holding a small DAG (a dag-pb root over two raw leaves) the daemon does not have.
    let peer = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .build()
        .await
        .unwrap();
    let leaves: Vec<Block> = [b"first leaf of the CLI test".to_vec(), vec![7u8; 5000]]
        .into_iter()
        .map(|d| Block::from_data(codec::RAW, d).unwrap())
        .collect();
    let root = Block::from_data(
        codec::DAG_PB,
        dag_pb_links(&[leaves[0].cid(), leaves[1].cid()]),
    )
    .unwrap();
    for b in leaves.iter().chain([&root]) {
        peer.put_block(b).await.unwrap();
    }
    let (root_cid, leaf0) = (root.cid().to_string(), leaves[0].cid().to_string());
    let peer_addr = format!(
        "{}/p2p/{}",
        peer.listen_addrs().await.unwrap()[0],
        peer.peer_id()
    );
    ok(r, &["swarm", "connect", &peer_addr]);

    // --offline: Kubo's error for what is not stored; --timeout: Go's context error, in time.
    assert!(
        fails(r, &["--offline", "refs", "-r", &root_cid])
            .contains("block was not found locally (offline)")
    );
    let nobody = Block::from_data(codec::RAW, &b"nobody has this"[..]).unwrap();
    let started = Instant::now();
    assert!(
        fails(
            r,
            &["block", "get", &nobody.cid().to_string(), "--timeout", "1s"]
        )
        .contains("context deadline exceeded")
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(fails(r, &["--timeout", "soon", "block", "stat", &leaf0]).contains("invalid duration"));

    // Fetched over Bitswap from the peer.
    let refs = ok(r, &["refs", "-r", &root_cid]);
    assert_eq!(
        refs.lines().collect::<Vec<_>>(),
        vec![leaf0.as_str(), &leaves[1].cid().to_string()]
    );
    let car = cli(r, &["dag", "export", &root_cid]);
    assert!(car.status.success());
    assert_eq!(
        car_cids(&car.stdout),
        vec![root_cid.clone(), leaf0.clone(), leaves[1].cid().to_string()]
    );
    let cat = cli(r, &["cat", &leaf0, "--offset", "6", "--length", "4"]);
    assert_eq!(cat.stdout, b"leaf");
    let pin = cli(r, &["pin", "add", "--progress", &root_cid]);
    assert!(pin.status.success());
    assert_eq!(
        String::from_utf8_lossy(&pin.stdout).trim(),
        format!("pinned {root_cid} recursively")
    );
    assert!(String::from_utf8_lossy(&pin.stderr).contains("Fetched/Processed 3 nodes"));
    assert!(ok(r, &["--offline", "refs", &root_cid]).contains(&leaf0));

    // Bitswap's view.
    let stat = ok(r, &["bitswap", "stat", "--verbose"]);
    assert!(stat.starts_with("bitswap status\n"), "{stat}");
    let received: u64 = stat
        .lines()
        .find_map(|l| l.trim().strip_prefix("blocks received: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(received >= 3, "{stat}");
    assert!(stat.contains("\tpartners [1]") && stat.contains(&peer.peer_id().to_string()));
    assert!(ok(r, &["bitswap", "stat", "--human"]).contains(" kB"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(r, &["--enc", "json", "bitswap", "stat"])).unwrap();
    assert!(json["BlocksReceived"].as_u64().unwrap() >= 3);
    assert_eq!(ok(r, &["bitswap", "wantlist"]), "");
    let ledger = ok(r, &["bitswap", "ledger", &peer.peer_id().to_string()]);
    assert!(ledger.starts_with(&format!("Ledger for {}\n", peer.peer_id())));
    assert!(ledger.contains("Bytes received:\t"));
    ok(r, &["bitswap", "reprovide"]);
    ok(r, &["routing", "provide", "-r", &root_cid]);
    assert!(
        fails(r, &["routing", "provide", "-r", &nobody.cid().to_string()])
            .contains("not found locally, cannot provide")
    );
    assert!(ok(r, &["provide", "stat"]).contains("TotalProvides:"));
    ok(r, &["shutdown"]);
}

/// `cairn add -r`, `ls`, `get`, `resolve`, `dag put|get|stat|resolve|import|export` and `pin
/// update` against a real daemon: the fixture folder's CIDs equal the importer's walk of it (which
/// cairn-unixfs checks against Kubo), `get` unpacks the same bytes, and a CAR round-trips.
#[test]
fn files_and_dags_from_the_cli() {
    use cairn::node::unixfs::importer::{ImportOptions, add_path};
    let repo = repo();
    let r = repo.path();
    let _daemon = Daemon::start(r, &[]);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/interface-ipfs-core-fixtures/test-folder");
    let want = add_path(&fixture, &ImportOptions::default(), &mut |_| Ok(())).unwrap();
    let root = want.last().unwrap().cid.to_string();

    // Plain lines on a pipe: `added <cid> <name>` per entry, root last; -Q only the root.
    let out = ok(r, &["add", "-r", fixture.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), want.len(), "{out}");
    for (line, e) in lines.iter().zip(&want) {
        assert_eq!(*line, format!("added {} {}", e.cid, e.name));
    }
    assert_eq!(
        ok(r, &["add", "-r", "-Q", fixture.to_str().unwrap()]).trim(),
        root
    );
    assert!(
        fails(r, &["add", fixture.to_str().unwrap()]).contains("use the '-r' flag"),
        "a directory needs -r"
    );
    // ls: the root's links, directories with a trailing slash.
    let ls = ok(r, &["ls", &root]);
    assert!(ls.lines().any(|l| l.ends_with(" files/")), "{ls}");
    assert!(ls.lines().any(|l| l.ends_with(" alice.txt")), "{ls}");
    // resolve through a link.
    let alice = want
        .iter()
        .find(|e| e.name.ends_with("/alice.txt"))
        .unwrap();
    assert_eq!(
        ok(r, &["resolve", &format!("/ipfs/{root}/alice.txt")]).trim(),
        format!("/ipfs/{}", alice.cid)
    );
    // get: unpacks the tree with the same bytes.
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("copy");
    ok(r, &["get", &root, "-o", target.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(target.join("files/hello.txt")).unwrap(),
        std::fs::read(fixture.join("files/hello.txt")).unwrap()
    );
    assert_eq!(
        std::fs::read(target.join("holmes.txt")).unwrap(),
        std::fs::read(fixture.join("holmes.txt")).unwrap()
    );

    // dag: put a dag-json node linking to the folder, get a path into it, stat, resolve.
    let doc = out_dir.path().join("doc.json");
    std::fs::write(&doc, format!(r#"{{"folder":{{"/":"{root}"}},"n":7}}"#)).unwrap();
    let node = ok(r, &["dag", "put", doc.to_str().unwrap()])
        .trim()
        .to_string();
    assert!(node.starts_with("bafyrei"), "{node}");
    assert_eq!(ok(r, &["dag", "get", &format!("{node}/n")]).trim(), "7");
    assert_eq!(
        ok(r, &["dag", "resolve", &format!("{node}/folder/alice.txt")]).trim(),
        alice.cid.to_string()
    );
    let stat = ok(r, &["dag", "stat", &root]);
    assert!(stat.contains(&root), "{stat}");
    // export → import into a fresh daemon's repo → the file reads back there.
    let car = cli(r, &["dag", "export", &root]);
    assert!(car.status.success());
    let car_path = out_dir.path().join("folder.car");
    std::fs::write(&car_path, &car.stdout).unwrap();
    let other = self::repo();
    let _other_daemon = Daemon::start(other.path(), &[]);
    let imported = ok(
        other.path(),
        &["dag", "import", "--stats", car_path.to_str().unwrap()],
    );
    assert!(
        imported.contains(&format!("Pinned root\t{root}\tsuccess")),
        "{imported}"
    );
    assert_eq!(
        ok(
            other.path(),
            &["--offline", "cat", &format!("{root}/files/hello.txt")]
        )
        .as_bytes(),
        std::fs::read(fixture.join("files/hello.txt")).unwrap()
    );
    // pin update moves the recursive pin from the folder to the dag node.
    ok(r, &["pin", "update", &root, &node]);
    let pins = ok(r, &["pin", "ls", "--type", "recursive"]);
    assert!(pins.contains(&node) && !pins.contains(&root), "{pins}");
}

/// No clean truncation from the CLI: `cairn cat` of a file whose middle block is missing (with
/// `--offline`) prints what it got, then reports the daemon's error and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_of_a_file_missing_a_block_fails_from_the_cli() {
    use cairn::blockstore::Block;
    use rust_unixfs::file::adder::{Chunker, FileAdder};
    let repo = repo();
    let r = repo.path();
    let _daemon = Daemon::start(r, &[]);
    // A 3-leaf UnixFS file (1 KiB chunks, raw leaves), held by a peer.
    let content: Vec<u8> = (0..3000u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut adder = FileAdder::builder()
        .with_cid_version(cid::Version::V1)
        .with_raw_leaves(true)
        .with_chunker(Chunker::Size(1024))
        .build();
    let mut blocks: Vec<(cairn::blockstore::Cid, Vec<u8>)> = Vec::new();
    let mut rest = &content[..];
    while !rest.is_empty() {
        let (emitted, used) = adder.push(rest);
        blocks.extend(emitted);
        rest = &rest[used..];
    }
    blocks.extend(adder.finish());
    assert_eq!(blocks.len(), 4, "three leaves and a root");
    let peer = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .build()
        .await
        .unwrap();
    for (cid, data) in &blocks {
        peer.put_block(&Block::new(*cid, data.clone()).unwrap())
            .await
            .unwrap();
    }
    let root = blocks[3].0.to_string();
    let middle = blocks[1].0.to_string();
    let peer_addr = format!(
        "{}/p2p/{}",
        peer.listen_addrs().await.unwrap()[0],
        peer.peer_id()
    );
    ok(r, &["swarm", "connect", &peer_addr]);
    ok(r, &["pin", "add", &root]);
    let whole = cli(r, &["cat", &root]);
    assert!(whole.status.success());
    assert_eq!(whole.stdout, content);
    ok(r, &["pin", "rm", &root]);
    ok(r, &["block", "rm", &middle]);

    let out = cli(r, &["--offline", "cat", &root]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "must fail: {stderr}");
    assert!(stderr.contains("not found locally"), "{stderr}");
    assert!(
        content.starts_with(&out.stdout) && out.stdout.len() < content.len(),
        "a prefix, then the error ({} bytes)",
        out.stdout.len()
    );
    // The same through --api, as a remote client.
    let api = std::fs::read_to_string(r.join("api")).unwrap();
    let out = cli(r, &["--api", api.trim(), "--offline", "cat", &root]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found locally"));
    ok(r, &["shutdown"]);
}
