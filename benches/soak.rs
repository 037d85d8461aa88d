//! Soak: a steady add/get/pubsub load on the release `cairn daemon` (a child process on a fresh
//! test-profile repo, pubsub on) for a long time, watching for what grows when nothing should:
//! the daemon's RSS, open descriptors (`/proc/PID/fd`), OS threads, and alive tokio tasks
//! (`cairn_runtime_alive_tasks` from its Prometheus metrics).
//!
//! The load, paced (not flat out): `CAIRN_SOAK_WORKERS` workers (default 8) share
//! `CAIRN_SOAK_RATE` iterations per second (default 100); an iteration `add`s a fresh 16 KiB file
//! (unpinned), `block/get`s its root and `cat`s it, and every 100th iteration a worker replaces
//! its connection (connection churn). `CAIRN_SOAK_SUBS` subscribers (default 16, over 4 topics)
//! read `pubsub/sub` streams fed by a publisher at 20 messages/s; each subscriber closes its
//! stream and subscribes again every 200 messages (subscription churn). `repo/gc` runs once a
//! minute, so the repo stays small and its growth is not mistaken for a leak.
//!
//! A sample is taken with the load paused (every in-flight iteration finished, subscribers still
//! connected, then 2 s for the daemon to settle): after `CAIRN_SOAK_WARMUP` seconds (default 60)
//! of warm-up, once a minute, and at the end. It prints each, then whether end ≈ start: RSS within
//! 20% (+8 MiB), descriptors within ±8, threads within ±4, alive tasks within ±16 (each margin
//! covers what legitimately varies between two quiet moments: allocator slack, blocking-pool
//! threads that have not yet idled out).
//!
//! Run: `cargo bench --bench soak` (release). `CAIRN_SOAK_SECONDS` (default 1800) is the soak's
//! length after warm-up.

#[path = "support/daemon.rs"]
mod daemon;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use daemon::{Daemon, ProcSample, call, connect, multibase, request};
use http_body_util::BodyExt;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

const TOPICS: usize = 4;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Shared by the load's tasks.
struct Load {
    addr: String,
    /// Held (read) by every iteration; the sampler takes it (write) to pause the load.
    gate: RwLock<()>,
    stop: CancellationToken,
    counter: AtomicU64,
    iterations: AtomicU64,
    published: AtomicU64,
    received: AtomicU64,
    errors: AtomicU64,
}

impl Load {
    fn fail(&self, what: &str, e: impl std::fmt::Display) {
        // Only the first few: a broken daemon would otherwise print for half an hour.
        if self.errors.fetch_add(1, Ordering::Relaxed) < 10 {
            eprintln!("soak error: {what}: {e}");
        }
    }
}

/// One paced worker: add, block/get, cat; a new connection every 100 iterations.
async fn worker(load: Arc<Load>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn = None;
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = load.stop.cancelled() => return,
        }
        let _open = load.gate.read().await;
        if n.is_multiple_of(100) {
            conn = None; // connection churn: the old one closes here
        }
        n += 1;
        if conn.is_none() {
            match connect(&load.addr).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    load.fail("connect", e);
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("just connected");
        let id = load.counter.fetch_add(1, Ordering::Relaxed);
        let mut data = format!("soak {id} ").into_bytes();
        data.resize(16 << 10, b'~');
        let result = async {
            let added = call(c, request("add?pin=false&progress=false", Some(&data))).await?;
            let v: serde_json::Value = serde_json::from_slice(&added)?;
            let cid = v["Hash"].as_str().context("add gave no Hash")?.to_string();
            call(c, request(&format!("block/get?arg={cid}"), None)).await?;
            let cat = call(c, request(&format!("cat?arg={cid}"), None)).await?;
            anyhow::ensure!(cat.len() == data.len(), "cat returned {} bytes", cat.len());
            Ok::<(), anyhow::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                load.iterations.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                load.fail("iteration", format!("{e:#}"));
                conn = None;
            }
        }
    }
}

/// Publishes 20 messages/s round the topics.
async fn publisher(load: Arc<Load>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut conn = None;
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = load.stop.cancelled() => return,
        }
        let _open = load.gate.read().await;
        if conn.is_none() {
            conn = connect(&load.addr).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            load.fail("publisher", "cannot connect");
            continue;
        };
        let topic = multibase(format!("soak{}", n % TOPICS).as_bytes());
        n += 1;
        let req = request(&format!("pubsub/pub?arg={topic}"), Some(b"soak message"));
        match call(c, req).await {
            Ok(_) => {
                load.published.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                load.fail("pubsub/pub", e);
                conn = None;
            }
        }
    }
}

/// Subscribes, reads 200 messages, closes, subscribes again on a new connection. Opening and
/// closing happen with the load's gate held, so a paused sample never sees one half done.
async fn subscriber(load: Arc<Load>, index: usize) {
    let topic = multibase(format!("soak{}", index % TOPICS).as_bytes());
    while !load.stop.is_cancelled() {
        let opened = async {
            let _open = load.gate.read().await;
            let mut c = connect(&load.addr).await?;
            c.ready().await?;
            let resp = c
                .send_request(request(&format!("pubsub/sub?arg={topic}"), None))
                .await?;
            anyhow::ensure!(resp.status() == hyper::StatusCode::OK, "{}", resp.status());
            Ok::<_, anyhow::Error>((c, resp.into_body()))
        }
        .await;
        let (c, mut body) = match opened {
            Ok(o) => o,
            Err(e) => {
                load.fail("pubsub/sub", format!("{e:#}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut lines = 0;
        while lines < 200 {
            let frame = tokio::select! {
                f = body.frame() => f,
                () = load.stop.cancelled() => return,
            };
            match frame {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        let n = d.iter().filter(|&&b| b == b'\n').count();
                        lines += n;
                        load.received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                Some(Err(e)) => {
                    load.fail("pubsub/sub stream", e);
                    break;
                }
                None => {
                    load.fail("pubsub/sub stream", "ended early");
                    break;
                }
            }
        }
        let _open = load.gate.read().await;
        drop(body);
        drop(c);
    }
}

/// One quiet reading of the daemon.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    proc: ProcSample,
    tasks: f64,
    iterations: u64,
}

/// Pauses the load, lets the daemon settle, reads it, and resumes. A daemon that has stopped
/// answering (in-flight requests never end) fails the soak after two minutes instead of hanging it.
async fn sample(load: &Load, d: &Daemon, since: Instant) -> anyhow::Result<Sample> {
    tokio::time::timeout(Duration::from_secs(120), sample_now(load, d, since))
        .await
        .map_err(|_| {
            let stacks = dump_stacks(d.pid());
            anyhow::anyhow!(
                "the daemon stopped answering: requests in flight for 2 min; its threads' stacks: {stacks}"
            )
        })?
}

/// Writes every thread's stack of process `pid` (gdb, if installed) to a file before the daemon
/// is killed, so a stall can be diagnosed after the run; returns the file's path or why not.
fn dump_stacks(pid: u32) -> String {
    let path = std::env::temp_dir().join(format!("cairn-soak-stacks-{pid}.txt"));
    let out = std::process::Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .output();
    match out {
        Ok(o) => match std::fs::write(&path, [o.stdout, o.stderr].concat()) {
            Ok(()) => path.display().to_string(),
            Err(e) => format!("not written ({e})"),
        },
        Err(e) => format!("not taken (gdb: {e})"),
    }
}

async fn sample_now(load: &Load, d: &Daemon, since: Instant) -> anyhow::Result<Sample> {
    let _paused = load.gate.write().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tasks = daemon::metric(&load.addr, "cairn_runtime_alive_tasks").await?;
    // That scrape's connection was closed when `metric` returned; the daemon closes its end a
    // moment later, and /proc should not count it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(Sample {
        at: since.elapsed(),
        proc: d.sample(),
        tasks,
        iterations: load.iterations.load(Ordering::Relaxed),
    })
}

fn show(label: &str, s: &Sample) {
    println!(
        "{label:>7} t={:>6.0}s  RSS {:>7.1} MiB (anon {:>7.1})  fds {:>4}  threads {:>3}  \
         tasks {:>5.0}  iterations {}",
        s.at.as_secs_f64(),
        s.proc.rss_kib as f64 / 1024.0,
        s.proc.anon_kib as f64 / 1024.0,
        s.proc.fds,
        s.proc.threads,
        s.tasks,
        s.iterations
    );
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let seconds = env("CAIRN_SOAK_SECONDS", 1800);
    let warmup = env("CAIRN_SOAK_WARMUP", 60);
    let workers = env("CAIRN_SOAK_WORKERS", 8).max(1);
    let rate = env("CAIRN_SOAK_RATE", 100).max(1);
    let subs = env("CAIRN_SOAK_SUBS", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let d = Daemon::start(&[])?;
        let load = Arc::new(Load {
            addr: d.addr.clone(),
            gate: RwLock::new(()),
            stop: CancellationToken::new(),
            counter: AtomicU64::new(0),
            iterations: AtomicU64::new(0),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        println!(
            "soak: {seconds} s after {warmup} s warm-up; {workers} workers at {rate} iterations/s \
             in all (add 16 KiB + block/get + cat), {subs} subscribers, 20 pubs/s, gc each minute"
        );
        let began = Instant::now();
        let period = Duration::from_secs_f64(workers as f64 / rate as f64);
        let mut tasks = Vec::new();
        for _ in 0..workers {
            tasks.push(tokio::spawn(worker(load.clone(), period)));
        }
        for i in 0..subs as usize {
            tasks.push(tokio::spawn(subscriber(load.clone(), i)));
        }
        tasks.push(tokio::spawn(publisher(load.clone())));
        let gc_load = load.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = gc_load.stop.cancelled() => return,
                }
                let result = async {
                    let mut c = connect(&gc_load.addr).await?;
                    call(&mut c, request("repo/gc", None)).await
                }
                .await;
                if let Err(e) = result {
                    gc_load.fail("repo/gc", e);
                }
            }
        }));

        tokio::time::sleep(Duration::from_secs(warmup)).await;
        let start = sample(&load, &d, began).await?;
        show("start", &start);
        let end_at = Instant::now() + Duration::from_secs(seconds);
        let mut peak_rss = start.proc.rss_kib;
        loop {
            let left = end_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(left.min(Duration::from_secs(60))).await;
            let s = sample(&load, &d, began).await?;
            peak_rss = peak_rss.max(s.proc.rss_kib);
            if Instant::now() < end_at {
                show("", &s);
            }
        }
        let end = sample(&load, &d, began).await?;
        show("end", &end);
        load.stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
        let hwm = d.sample().hwm_kib;
        let soaked = end.at - start.at;
        let rss_ok = end.proc.rss_kib as f64 <= start.proc.rss_kib as f64 * 1.2 + 8192.0;
        let fds_ok = end.proc.fds.abs_diff(start.proc.fds) <= 8;
        let threads_ok = end.proc.threads.abs_diff(start.proc.threads) <= 4;
        let tasks_ok = (end.tasks - start.tasks).abs() <= 16.0;
        let verdict = |ok: bool| if ok { "ok" } else { "GREW" };
        println!(
            "soaked {:.0} s: {} iterations ({:.1}/s), {} published, {} received by subscribers, \
             {} errors",
            soaked.as_secs_f64(),
            end.iterations - start.iterations,
            (end.iterations - start.iterations) as f64 / soaked.as_secs_f64(),
            load.published.load(Ordering::Relaxed),
            load.received.load(Ordering::Relaxed),
            load.errors.load(Ordering::Relaxed)
        );
        println!(
            "end vs start: RSS {:.1} -> {:.1} MiB [{}; margin 20% + 8 MiB], fds {} -> {} [{}; ±8], \
             threads {} -> {} [{}; ±4], tasks {:.0} -> {:.0} [{}; ±16]",
            start.proc.rss_kib as f64 / 1024.0,
            end.proc.rss_kib as f64 / 1024.0,
            verdict(rss_ok),
            start.proc.fds,
            end.proc.fds,
            verdict(fds_ok),
            start.proc.threads,
            end.proc.threads,
            verdict(threads_ok),
            start.tasks,
            end.tasks,
            verdict(tasks_ok)
        );
        println!(
            "daemon VmHWM {:.1} MiB, highest sampled RSS {:.1} MiB; load average {}",
            hwm as f64 / 1024.0,
            peak_rss as f64 / 1024.0,
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        println!(
            "steady: {}",
            if rss_ok && fds_ok && threads_ok && tasks_ok {
                "yes (end ≈ start within the margins)"
            } else {
                "NO"
            }
        );
        Ok(())
    })
}
