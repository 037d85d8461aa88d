//! `add` and `cat` of a large file through the RPC, as a Kubo RPC user runs them, beside two
//! ceilings measured in the same run on the same file and disk:
//!
//! - `openssl dgst -sha256` of the file (SHA-NI where the CPU has it): hashing is the least work an
//!   importer must do per byte;
//! - the store's own durable put throughput: 256 KiB raw blocks written with `put_many` batches to
//!   a fresh [`Blockstore`] with the daemon's defaults (`Durability::Synced`, group commit).
//!
//! The daemon is the release `cairn` binary in its own process on a fresh repo (test profile), so
//! its peak RSS (VmHWM, reset before each step through `/proc/PID/clear_refs`) is the daemon's own.
//!
//! Run: `cargo bench --bench add` (release). `CAIRN_BENCH_MIB` (default 1024) sets the file size,
//! `CAIRN_BENCH_RUNS` (default 3) the runs per figure (medians are printed). Needs `curl` and
//! `openssl` on `PATH`. MB/s = 10^6 bytes per second; MiB = 2^20 bytes.

#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use cairn::blockstore::{Block, Blockstore, BlockstoreConfig};
use support::{env, mbps, median};

const BIN: &str = env!("CARGO_BIN_EXE_cairn");

/// A `/proc/PID/status` field in KiB (`VmHWM`, `VmRSS`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resets the process's VmHWM to its current RSS, so the next reading is one step's own peak.
fn reset_hwm(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Writes `mib` MiB of xorshift bytes (incompressible, no repeated chunks) to `path`.
fn write_file(path: &Path, mib: usize) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf)?;
    }
    f.flush()?;
    Ok(())
}

/// One `openssl dgst -sha256` of the file; its duration.
fn openssl(path: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256"])
        .arg(path)
        .output()
        .context("running openssl")?;
    ensure!(out.status.success(), "openssl failed");
    Ok(start.elapsed())
}

/// Durable puts of `bytes` in 256 KiB raw blocks, 64 per `put_many` (what one add batch holds);
/// the time from the first put to the last acknowledgement. Hashing the blocks is done before the
/// clock starts: this is the store's share alone.
fn durable_puts(dir: &Path, bytes: u64) -> anyhow::Result<Duration> {
    let store = Blockstore::open_with(dir, BlockstoreConfig::default())?;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    for _ in 0..bytes / (256 << 10) {
        let mut data = vec![0u8; 256 << 10];
        for word in data.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        batch.push(Block::from_data(cairn::blockstore::codec::RAW, data)?);
        if batch.len() == 64 {
            batches.push(std::mem::take(&mut batch));
        }
    }
    batches.push(batch);
    let start = Instant::now();
    for b in batches {
        store.put_many(b)?;
    }
    let took = start.elapsed();
    drop(store);
    Ok(took)
}

/// The daemon under test: the release binary on a fresh test-profile repo.
struct Daemon {
    child: std::process::Child,
    port: u16,
    _repo: tempfile::TempDir,
}

impl Daemon {
    fn start() -> anyhow::Result<Self> {
        let repo = tempfile::tempdir()?;
        let run = |args: &[&str]| -> anyhow::Result<()> {
            let out = Command::new(BIN)
                .args(args)
                .env("CAIRN_PATH", repo.path())
                .output()?;
            ensure!(out.status.success(), "cairn {args:?} failed");
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
        let mut child = Command::new(BIN)
            .arg("daemon")
            .env("CAIRN_PATH", repo.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut out = child.stdout.take().context("daemon stdout")?;
        // "Daemon is ready" is the last line the daemon prints at start-up, as Kubo's.
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
            port,
            _repo: repo,
        })
    }

    fn url(&self, cmd: &str) -> String {
        format!("http://127.0.0.1:{}/api/v0/{cmd}", self.port)
    }

    /// `add` of the file (curl streams it from disk in a multipart body); the root CID and the
    /// time until the last line of the answer arrived.
    fn add(&self, path: &Path) -> anyhow::Result<(String, Duration)> {
        let start = Instant::now();
        let out = Command::new("curl")
            .args(["-sS", "--fail", "-X", "POST", "-F"])
            .arg(format!("file=@{}", path.display()))
            .arg(self.url("add?pin=true&progress=false"))
            .output()
            .context("running curl")?;
        let took = start.elapsed();
        ensure!(
            out.status.success(),
            "add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let last = String::from_utf8(out.stdout)?;
        let last = last.lines().last().context("add answered nothing")?;
        let v: serde_json::Value = serde_json::from_str(last)?;
        Ok((v["Hash"].as_str().context("no Hash")?.to_string(), took))
    }

    /// `cat` of the root into a counter; the bytes read and the time.
    fn cat(&self, cid: &str) -> anyhow::Result<(u64, Duration)> {
        let start = Instant::now();
        let mut child = Command::new("curl")
            .args(["-sS", "--fail", "-X", "POST"])
            .arg(self.url(&format!("cat?arg={cid}")))
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = child.stdout.take().context("curl stdout")?;
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let got = out.read(&mut buf)?;
            if got == 0 {
                break;
            }
            n += got as u64;
        }
        ensure!(child.wait()?.success(), "cat failed");
        Ok((n, start.elapsed()))
    }

    fn gc(&self, cid: &str) -> anyhow::Result<()> {
        for cmd in [format!("pin/rm?arg={cid}"), "repo/gc".to_string()] {
            let out = Command::new("curl")
                .args(["-sS", "--fail", "-X", "POST"])
                .arg(self.url(&cmd))
                .output()?;
            ensure!(out.status.success(), "{cmd} failed");
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let mib = env("CAIRN_BENCH_MIB", 1024);
    let runs = env("CAIRN_BENCH_RUNS", 3).max(1);
    let bytes = (mib as u64) << 20;
    let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/target"))?;
    let file = dir.path().join("input.bin");
    write_file(&file, mib)?;
    println!("add/cat bench: {mib} MiB file, {runs} runs per figure (medians), MB/s = 10^6 B/s");

    let mut hash = Vec::new();
    let mut store = Vec::new();
    for i in 0..runs {
        hash.push(mbps(bytes, openssl(&file)?));
        let store_dir = dir.path().join(format!("store-{i}"));
        store.push(mbps(bytes, durable_puts(&store_dir, bytes)?));
        std::fs::remove_dir_all(&store_dir)?;
    }
    let (hash, store) = (median(hash), median(store));

    let daemon = Daemon::start()?;
    let pid = daemon.child.id();
    let idle = status_kib(pid, "VmRSS:");
    let (mut adds, mut cats, mut add_peak, mut cat_peak) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..runs {
        reset_hwm(pid);
        let (cid, took) = daemon.add(&file)?;
        adds.push(mbps(bytes, took));
        add_peak = add_peak.max(status_kib(pid, "VmHWM:"));
        reset_hwm(pid);
        let (n, took) = daemon.cat(&cid)?;
        ensure!(n == bytes, "cat returned {n} bytes of {bytes}");
        cats.push(mbps(bytes, took));
        cat_peak = cat_peak.max(status_kib(pid, "VmHWM:"));
        daemon.gc(&cid)?;
    }
    let (add, cat) = (median(adds), median(cats));
    println!("openssl dgst -sha256     {hash:8.1} MB/s");
    println!("durable put_many (256K)  {store:8.1} MB/s");
    println!(
        "add via RPC              {add:8.1} MB/s  = {:.1}% of openssl, {:.1}% of durable puts",
        100.0 * add / hash,
        100.0 * add / store
    );
    println!("cat via RPC              {cat:8.1} MB/s");
    println!(
        "daemon RSS: idle {:.1} MiB, peak during add {:.1} MiB, during cat {:.1} MiB",
        idle as f64 / 1024.0,
        add_peak as f64 / 1024.0,
        cat_peak as f64 / 1024.0
    );
    Ok(())
}
