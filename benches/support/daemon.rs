//! Helpers the daemon load benches (`daemon_load`, `soak`) share: the release `cairn daemon` as a
//! child process on a fresh test-profile repo, what `/proc` says about it (RSS, descriptors,
//! threads), a Prometheus gauge read from its RPC, and single-connection HTTP/1.1 clients
//! (one `TcpStream` each, so a worker holds exactly one connection and a broken one is an error,
//! never a silent reconnect).
//!
//! Not a bench itself: included with `#[path = "support/daemon.rs"] mod daemon;`.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// The release binary `cargo bench` built beside the bench.
pub const BIN: &str = env!("CARGO_BIN_EXE_cairn");

/// The daemon under test: the release binary on a fresh test-profile repo, pubsub on.
pub struct Daemon {
    child: Child,
    /// Its RPC as `127.0.0.1:PORT`.
    pub addr: String,
    _repo: tempfile::TempDir,
}

impl Daemon {
    /// Inits a repo, applies `config` (`key`, JSON value) with `cairn config --json`, starts
    /// `cairn daemon --enable-pubsub-experiment` and waits for `Daemon is ready`.
    pub fn start(config: &[(&str, &str)]) -> anyhow::Result<Self> {
        let repo = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target"))?;
        let run = |args: &[&str]| -> anyhow::Result<()> {
            let out = Command::new(BIN)
                .args(args)
                .env("CAIRN_PATH", repo.path())
                .output()?;
            ensure!(
                out.status.success(),
                "cairn {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        run(&["init", "--profile", "test"])?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        run(&[
            "config",
            "Addresses.API",
            &format!("/ip4/127.0.0.1/tcp/{port}"),
        ])?;
        for (key, value) in config {
            run(&["config", "--json", key, value])?;
        }
        let mut child = Command::new(BIN)
            .args(["daemon", "--enable-pubsub-experiment"])
            .env("CAIRN_PATH", repo.path())
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut out = child.stdout.take().context("daemon stdout")?;
        let mut seen = String::new();
        let mut buf = [0u8; 1024];
        while !seen.contains("Daemon is ready") {
            let n = out.read(&mut buf)?;
            if n == 0 {
                bail!("daemon exited during start-up: {seen}");
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        // Keep draining stdout so the daemon never blocks on a full pipe.
        std::thread::spawn(move || while matches!(out.read(&mut buf), Ok(n) if n > 0) {});
        Ok(Daemon {
            child,
            addr: format!("127.0.0.1:{port}"),
            _repo: repo,
        })
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What `/proc` says about the daemon now.
    pub fn sample(&self) -> ProcSample {
        ProcSample::of(self.pid())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One reading of a process from `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// Resident set now, KiB.
    pub rss_kib: u64,
    /// Peak resident set since start or the last [`reset_hwm`], KiB.
    pub hwm_kib: u64,
    /// Anonymous resident memory (heap, stacks), KiB: what a leak grows. The rest of RSS is
    /// file pages (the executable's code as more of it runs) and shared memory.
    pub anon_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// OS threads.
    pub threads: u64,
}

impl ProcSample {
    /// Reads `/proc/PID/status` and counts `/proc/PID/fd`.
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        ProcSample {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
            anon_kib: field("RssAnon:"),
            fds,
            threads: field("Threads:"),
        }
    }
}

/// Resets a process's VmHWM to its current RSS, so the next reading is one phase's own peak.
pub fn reset_hwm(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Raises this process's soft descriptor limit to its hard one (the daemon, a child, inherits
/// it); returns the soft limit now.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Opens one HTTP/1.1 connection to `addr`; its driver runs on a task of its own and ends when
/// the returned sender is dropped.
pub async fn connect(addr: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// A multipart/form-data body with one file part holding `data`, as Kubo's clients send it:
/// (content type, body).
pub fn multipart(data: &[u8]) -> (String, Bytes) {
    const BOUNDARY: &str = "cairnloadboundary7d3f";
    let mut body = Vec::with_capacity(data.len() + 200);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={BOUNDARY}"),
        body.into(),
    )
}

/// A `POST /api/v0/{cmd}` request, with a multipart body when `file` is given.
pub fn request(cmd: &str, file: Option<&[u8]>) -> hyper::Request<Full<Bytes>> {
    let builder = hyper::Request::post(format!("/api/v0/{cmd}")).header("host", "127.0.0.1");
    let req = match file {
        None => builder.body(Full::new(Bytes::new())),
        Some(data) => {
            let (content_type, body) = multipart(data);
            builder
                .header("content-type", content_type)
                .body(Full::new(body))
        }
    };
    req.expect("a valid request")
}

/// Sends `req` on `conn` and reads the whole answer; `Err` for a transport failure or a status
/// other than 200 (with the body, which says why).
pub async fn call(
    conn: &mut SendRequest<Full<Bytes>>,
    req: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<Bytes> {
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    ensure!(
        status == hyper::StatusCode::OK,
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

/// Topics and pubsub data travel multibase base64url on Kubo's RPC (`u` prefix).
pub fn multibase(bytes: &[u8]) -> String {
    format!(
        "u{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Decodes a multibase base64url string (`u…`).
pub fn unmultibase(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.strip_prefix('u')?)
        .ok()
}

/// A gauge or counter's value from the daemon's `/debug/metrics/prometheus` (the first series
/// whose name, labels included, starts with `name`), over a connection of its own.
pub async fn metric(addr: &str, name: &str) -> anyhow::Result<f64> {
    let mut conn = connect(addr).await?;
    let req = hyper::Request::get("/debug/metrics/prometheus")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))?;
    let body = call(&mut conn, req).await?;
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {name} in the metrics"))
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
