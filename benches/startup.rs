//! Daemon start-up as an operator sees it: the time from `exec` of `cairn daemon` to its RPC
//! answering `/api/v0/id`, and its idle memory (RSS) 10 s later, for a repo with no peers
//! (test profile: loopback, no bootstrap list, mDNS off).
//!
//! Run: `cargo bench --bench startup` (uses the release binary). `CAIRN_STARTS` (default 20) sets
//! how many starts are timed; `CAIRN_IDLE_SECONDS` (default 10) the idle wait before reading RSS.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cairn");

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// POSTs /api/v0/id; true on a 200.
fn rpc_answers(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(
        b"POST /api/v0/id HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    )
    .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(String::from)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let starts = env("CAIRN_STARTS", 20);
    let repo = tempfile::tempdir()?;
    let status = Command::new(BIN)
        .args(["init", "--profile", "test"])
        .env("CAIRN_PATH", repo.path())
        .output()?;
    anyhow::ensure!(status.status.success(), "init failed");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cfg = Command::new(BIN)
        .args([
            "config",
            "Addresses.API",
            &format!("/ip4/127.0.0.1/tcp/{port}"),
        ])
        .env("CAIRN_PATH", repo.path())
        .output()?;
    anyhow::ensure!(cfg.status.success(), "config failed");

    let mut times = Vec::new();
    let mut last = None;
    for i in 0..starts {
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .arg("daemon")
            .env("CAIRN_PATH", repo.path())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Poll until the RPC answers: this is what is being measured.
        while !rpc_answers(port) {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the daemon never answered"
            );
        }
        times.push(started.elapsed());
        if i + 1 == starts {
            last = Some(child);
        } else {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()?;
            child.wait()?;
        }
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let worst = *times.last().expect("at least one start");
    println!(
        "exec to RPC answering: p50 {:.0} ms, max {:.0} ms over {starts} starts",
        p50.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );

    let mut child = last.expect("a running daemon");
    let idle = env("CAIRN_IDLE_SECONDS", 10);
    std::thread::sleep(Duration::from_secs(idle)); // the measurement itself: idle for this long
    let rss = rss_kib(child.id());
    println!("idle RSS after {idle} s: {:.1} MB", rss as f64 / 1024.0);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait()?;
    killed?;
    Ok(())
}
