//! Shared by the tests of the `cairn` binary: CLI runs on a repo ([`cli`], [`ok`],
//! [`ok_both`], [`fails`]), a daemon process on a repo, and a minimal blocking HTTP/1.1 client
//! for its RPC (one connection per request, as a crash test wants: nothing is pooled across a
//! SIGKILL).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn::blockstore::Block;
use cairn::blockstore::codec::RAW;

pub const BIN: &str = env!("CARGO_BIN_EXE_cairn");

/// A spawned daemon's output: its stdout lines as they come, and its stderr collected.
pub struct Spawned {
    /// Stdout, a line per message.
    pub lines: mpsc::Receiver<String>,
    /// Stderr so far.
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Spawns `cmd` with stdout read line by line into a channel and stderr collected, each on a
/// thread of its own (so the child never blocks on a full pipe).
pub fn spawn_reading(mut cmd: Command) -> (Child, Spawned) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(l + "\n"));
        }
    });
    (child, Spawned { lines, stderr })
}

/// Runs `cairn ARGS` on `repo` (`CAIRN_PATH`).
pub fn cli(repo: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("CAIRN_PATH", repo)
        .output()
        .unwrap()
}

/// Runs a command that must succeed; returns (stdout, stderr).
pub fn ok_both(repo: &Path, args: &[&str]) -> (String, String) {
    let out = cli(repo, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "cairn {args:?} failed: {stdout}{stderr}"
    );
    (stdout, stderr)
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(repo: &Path, args: &[&str]) -> String {
    ok_both(repo, args).0
}

/// Runs a command that must exit 1; returns its stderr.
pub fn fails(repo: &Path, args: &[&str]) -> String {
    let out = cli(repo, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "cairn {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Initialises a repo in `dir` with the test profile (127.0.0.1, port 0, no bootstrap).
pub fn init_repo(dir: &Path) {
    let out = Command::new(BIN)
        .args(["init", "--profile", "test"])
        .env("CAIRN_PATH", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running daemon, its RPC address and its gateway's (`host:port`).
pub struct Daemon {
    pub child: Child,
    pub api: String,
    pub gateway: Option<String>,
}

impl Daemon {
    /// Starts `cairn daemon` on the repo and waits for `Daemon is ready`.
    pub fn start(repo: &Path) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.arg("daemon");
        Self::start_cmd(repo, cmd)
    }

    /// Starts the daemon command `cmd` (`cairn daemon ...`) on the repo and waits until ready.
    pub fn start_cmd(repo: &Path, mut cmd: Command) -> Daemon {
        let mut child = cmd
            .env("CAIRN_PATH", repo)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut api = None;
        let mut gateway = None;
        let host_port = |addr: &str| {
            // /ip4/127.0.0.1/tcp/PORT
            let parts: Vec<&str> = addr.split('/').collect();
            format!("{}:{}", parts[2], parts[4])
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("the daemon did not get ready");
            if let Some(addr) = line.strip_prefix("RPC API server listening on ") {
                api = Some(host_port(addr));
            }
            if let Some(addr) = line.strip_prefix("Gateway server listening on ") {
                gateway = Some(host_port(addr));
            }
            if line.contains("Daemon is ready") {
                break;
            }
        }
        Daemon {
            child,
            api: api.expect("an RPC address"),
            gateway,
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP answer: status and the de-chunked body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// GETs `path` (with `headers`, `Name: value` each) from `addr` and reads the whole answer:
/// status, lower-cased header lines, de-chunked body.
pub fn get(addr: &str, path: &str, headers: &[&str]) -> std::io::Result<(Answer, Vec<String>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    read_answer(&mut s)
}

/// POSTs `/api/v0/<path>` (with an optional file part) and reads the whole answer. `Err` for a
/// connection that failed or was cut: that request was not acknowledged.
pub fn post(api: &str, path: &str, file: Option<&[u8]>) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(api)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let boundary = "cairncrashboundary";
    let mut body = Vec::new();
    if let Some(f) = file {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(f);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    }
    let head = format!(
        "POST /api/v0/{path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(&body)?;
    read_answer(&mut s).map(|(answer, _)| answer)
}

/// Reads a whole `Connection: close` answer: status, lower-cased header lines, and the body
/// (de-chunked). `Err` when it was cut short: no head, a broken chunk, or fewer bytes than its
/// `Content-Length`.
fn read_answer(s: &mut TcpStream) -> std::io::Result<(Answer, Vec<String>)> {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let cut = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "answer cut short");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(cut)?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(cut)?;
    let rest = &raw[end + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest).ok_or_else(cut)?
    } else {
        if let Some(len) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            && rest.len() != len
            && !head.starts_with("http/1.1 304")
        {
            return Err(cut());
        }
        rest.to_vec()
    };
    let lines = head.lines().skip(1).map(str::to_string).collect();
    Ok((Answer { status, body }, lines))
}

/// The raw CIDv1 of some bytes, as `block/put` names them.
pub fn cid_of(data: &[u8]) -> String {
    Block::from_data(RAW, data.to_vec())
        .unwrap()
        .cid()
        .to_string()
}
