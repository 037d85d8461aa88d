//! Swarming: a 100 MiB file fetched by one cairn node from 1, 2, 5 and 10 providers at once over
//! Bitswap on loopback, and from 10 providers of which one is slow, with the fetching node's
//! throughput, CPU time, duplicate ratio and peak RSS.
//!
//! Run: `cargo bench --bench swarm` (release), or `cargo bench --bench swarm --profile dev` for a
//! quick debug-build run. `CAIRN_BENCH_MIB` (default 100) sets the size,
//! `CAIRN_BENCH_RUNS` (default 3) the runs per case (medians are printed),
//! `CAIRN_SWARM_PROVIDERS` (default `1,2,5,10`) the provider counts, `CAIRN_SWARM_SLOW_MS`
//! (default 100) how long each block read of the slow provider takes. MB/s = 10^6 B/s.
//!
//! The providers run in this process and share one in-memory store (the file is held once, not
//! ten times); each is a full node with its own Bitswap server. The slow one reads through a
//! wrapper that sleeps on every block read. The fetching node runs in a child process (this
//! binary, re-executed with `CAIRN_BENCH_ROLE=fetcher`) with a memory blockstore, so its CPU time
//! (`/proc/self/stat`) and VmHWM are its own; its VmHWM includes the fetched file it keeps in
//! memory. Each run is a fresh fetcher, so nothing is cached between runs. The fetch starts once
//! every provider is a Bitswap peer of the fetcher and the providers' process has gone quiet
//! (connecting sets off Noise, identify and DHT work among the providers that is not Bitswap's;
//! "settle" is how long that took).
//!
//! Columns: MB/s (median of the runs), x 1 (ratio to 1 provider), secs (the fetch), CPU s and
//! CPU% (the fetcher's, during the fetch), prov s (CPU time of all providers during the fetch),
//! dup% (duplicate blocks / blocks in the file), late (want-blocks sent again because a peer was
//! late, `wants_rerouted`), HWM MB (the fetcher's VmHWM), settle (seconds), then each run's MB/s
//! and the blocks each provider served in the median run.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use cairn::blockstore::engine::{
    BatchOp, EngineIter, EngineResult, Keyspace, MemoryEngine, StorageEngine,
};
use cairn::blockstore::{Blockstore, BlockstoreConfig, Cid};
use cairn::node::{FetchOptions, Multiaddr, Node, Profile};
use futures::StreamExt;
use support::{content, env, median, status_kib, unixfs};

/// The shared store of the providers, seen by one of them: reads of block bodies sleep for
/// `delay` when it is set (the slow provider).
#[derive(Debug)]
struct Shared {
    inner: Arc<dyn StorageEngine>,
    delay: Option<Duration>,
}

impl StorageEngine for Shared {
    fn get(&self, ks: Keyspace, key: &[u8]) -> EngineResult<Option<Bytes>> {
        if ks == Keyspace::Blocks
            && let Some(d) = self.delay
        {
            std::thread::sleep(d);
        }
        self.inner.get(ks, key)
    }
    fn put(&self, ks: Keyspace, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.inner.put(ks, key, value)
    }
    fn has(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool> {
        self.inner.has(ks, key)
    }
    fn delete(&self, ks: Keyspace, key: &[u8]) -> EngineResult<bool> {
        self.inner.delete(ks, key)
    }
    fn iter(&self, ks: Keyspace) -> EngineIter<'_> {
        self.inner.iter(ks)
    }
    fn apply_batch(&self, ks: Keyspace, ops: Vec<BatchOp>) -> EngineResult<()> {
        self.inner.apply_batch(ks, ops)
    }
    fn flush(&self) -> EngineResult<()> {
        self.inner.flush()
    }
}

/// User + system CPU time of this process, from `/proc/self/stat` (in clock ticks of 1/100 s,
/// the value on every Linux this runs on).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// The fetching side, in its own process: reads `<root> <addr>...` on stdin, connects to every
/// address, prints `ready` once every provider is a Bitswap peer, waits for a line on stdin (the
/// parent sends it once the providers are quiet), fetches the DAG into memory and prints
/// `<seconds> <bytes> <cpu seconds> <vmhwm kib> <blocks received> <duplicates> <late> <served...>`.
async fn fetcher() -> anyhow::Result<()> {
    let node = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse()?])
        .build()
        .await?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let root: Cid = parts.next().context("root")?.parse()?;
    let mut peers = Vec::new();
    for a in parts {
        let addr: Multiaddr = a.parse()?;
        peers.push(node.connect(addr).await?);
    }
    // Wait until Bitswap knows every provider (identify has run on each connection), so each is a
    // Bitswap peer from the start.
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.bitswap_stat().await?.peers.len() < peers.len() {
        if Instant::now() > deadline {
            bail!("the providers never all became Bitswap peers");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("ready");
    std::io::stdout().flush()?;
    line.clear();
    std::io::stdin().lock().read_line(&mut line)?;
    let cpu0 = cpu_time();
    let started = Instant::now();
    let mut fetch = node.fetch_dag(
        root,
        FetchOptions::with_timeout(Some(Duration::from_secs(900))),
    );
    let mut bytes = 0;
    while let Some(p) = fetch.next().await {
        bytes = p?.bytes;
    }
    let took = started.elapsed();
    let cpu = cpu_time() - cpu0;
    let stat = node.bitswap_stat().await?;
    let mut served = Vec::new();
    for p in &peers {
        served.push(node.bitswap_ledger(*p).await?.blocks_received.to_string());
    }
    println!(
        "{} {bytes} {} {} {} {} {} {}",
        took.as_secs_f64(),
        cpu.as_secs_f64(),
        status_kib("self", "VmHWM:"),
        stat.blocks_received,
        stat.dup_blocks_received,
        stat.wants_rerouted,
        served.join(" ")
    );
    node.shutdown().await?;
    Ok(())
}

/// One fetch's figures.
struct Run {
    mbps: f64,
    secs: f64,
    cpu_secs: f64,
    /// CPU time of this process (every provider) while the fetcher ran, its start and
    /// connections included.
    prov_cpu_secs: f64,
    /// How long the providers took to go quiet after the fetcher connected.
    settle_secs: f64,
    hwm_kib: u64,
    received: u64,
    dups: u64,
    late: u64,
    served: Vec<u64>,
}

/// Starts `n` providers over the shared store (the last one slow when `slow` is set) and runs the
/// fetcher `runs` times against all of them.
async fn case(
    engine: &Arc<dyn StorageEngine>,
    root: Cid,
    bytes: u64,
    n: usize,
    slow: Option<Duration>,
    runs: usize,
) -> anyhow::Result<Vec<Run>> {
    let mut providers = Vec::new();
    for i in 0..n {
        let delay = if i + 1 == n { slow } else { None };
        let store = Blockstore::with_engine(
            Arc::new(Shared {
                inner: engine.clone(),
                delay,
            }),
            BlockstoreConfig::default(),
        );
        providers.push(
            Node::builder()
                .profile(Profile::Test)
                .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse()?])
                .blockstore(store)
                .build()
                .await?,
        );
    }
    let mut addrs = Vec::new();
    for p in &providers {
        let a = p
            .listen_addrs()
            .await?
            .into_iter()
            .next()
            .context("listening")?
            .with_p2p(p.peer_id())
            .unwrap();
        addrs.push(a.to_string());
    }
    let mut out = Vec::new();
    for _ in 0..runs {
        let mut child = Command::new(std::env::current_exe()?)
            .env("CAIRN_BENCH_ROLE", "fetcher")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        writeln!(child.stdin.as_mut().unwrap(), "{root} {}", addrs.join(" "))?;
        // Connecting sets off work that is not Bitswap's (Noise handshakes, identify, and the
        // DHT: the providers learn of each other through the fetcher and connect to each other,
        // about 8 CPU-seconds for 10 providers in a debug build). Start the fetch once the
        // providers' process is quiet, so the figures are the fetch's own.
        let mut stdout = std::io::BufReader::new(child.stdout.take().context("stdout")?);
        let mut ready = String::new();
        stdout.read_line(&mut ready)?;
        if ready.trim() != "ready" {
            bail!("fetcher said {ready:?}");
        }
        let settle = quiet().await;
        let prov0 = cpu_time();
        writeln!(child.stdin.as_mut().unwrap(), "go")?;
        let o = tokio::task::spawn_blocking(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut text)?;
            child.wait()?;
            anyhow::Ok(text)
        })
        .await??;
        let prov_cpu = cpu_time() - prov0;
        let text = o;
        let f: Vec<f64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() != 7 + n || f[1] as u64 != bytes {
            bail!("fetcher said {text:?}");
        }
        out.push(Run {
            mbps: bytes as f64 / f[0] / 1e6,
            secs: f[0],
            cpu_secs: f[2],
            prov_cpu_secs: prov_cpu.as_secs_f64(),
            settle_secs: settle.as_secs_f64(),
            hwm_kib: f[3] as u64,
            received: f[4] as u64,
            dups: f[5] as u64,
            late: f[6] as u64,
            served: f[7..].iter().map(|x| *x as u64).collect(),
        });
    }
    for p in providers {
        p.shutdown().await?;
    }
    Ok(out)
}

/// Waits until this process (the providers) has used under 5% of a core over 500 ms, at most
/// 60 s; returns how long that took.
async fn quiet() -> Duration {
    let started = Instant::now();
    let mut last = cpu_time();
    while started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cpu_time();
        if now - last < Duration::from_millis(25) {
            break;
        }
        last = now;
    }
    started.elapsed()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::var("CAIRN_BENCH_ROLE").as_deref() == Ok("fetcher") {
        return rt.block_on(fetcher());
    }
    let mib = env("CAIRN_BENCH_MIB", 100);
    let runs = env("CAIRN_BENCH_RUNS", 3).max(1);
    let slow_ms = env("CAIRN_SWARM_SLOW_MS", 100) as u64;
    let counts: Vec<usize> = std::env::var("CAIRN_SWARM_PROVIDERS")
        .unwrap_or_else(|_| "1,2,5,10".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    println!(
        "swarm bench: {mib} MiB, {runs} runs each (medians; MB/s = 10^6 B/s); load {} at start",
        loadavg()
    );
    rt.block_on(async {
        let data = content(0x2545_F491_4F6C_DD1D, mib << 20);
        let blocks = unixfs(&data);
        drop(data);
        let root = *blocks.last().unwrap().cid();
        let bytes: u64 = blocks.iter().map(|b| b.len() as u64).sum();
        let nblocks = blocks.len() as u64;
        let engine: Arc<dyn StorageEngine> = Arc::new(MemoryEngine::new());
        {
            let store = Blockstore::with_engine(engine.clone(), BlockstoreConfig::default());
            store.put_many(blocks)?;
        }
        let mut cases: Vec<(usize, Option<Duration>)> = counts.iter().map(|n| (*n, None)).collect();
        let max = counts.iter().copied().max().unwrap_or(10);
        cases.push((max, Some(Duration::from_millis(slow_ms))));
        println!(
            "{:<28} {:>6} {:>6} {:>6} {:>7} {:>5} {:>7} {:>6} {:>5} {:>7} {:>7}  runs MB/s; blocks per provider (median run)",
            "case", "MB/s", "x 1", "secs", "CPU s", "CPU%", "prov s", "dup%", "late", "HWM MB", "settle"
        );
        let mut base = None;
        for (n, slow) in cases {
            let r = case(&engine, root, bytes, n, slow, runs).await?;
            let mut order: Vec<usize> = (0..r.len()).collect();
            order.sort_by(|a, b| r[*a].mbps.total_cmp(&r[*b].mbps));
            let m = &r[order[order.len() / 2]];
            let speeds: Vec<f64> = r.iter().map(|x| x.mbps).collect();
            let mbps = median(speeds.clone());
            if n == 1 && slow.is_none() {
                base = Some(mbps);
            }
            let name = match slow {
                Some(d) => format!("{n} providers, 1 slow ({}ms)", d.as_millis()),
                None => format!("{n} provider{}", if n == 1 { "" } else { "s" }),
            };
            println!(
                "{name:<28} {mbps:>6.1} {:>6} {:>6.2} {:>7.2} {:>5.0} {:>7.2} {:>6.2} {:>5} {:>7.1} {:>7.1}  {speeds:.1?}; {:?}",
                base.map(|b| format!("{:.2}", mbps / b)).unwrap_or_default(),
                m.secs,
                m.cpu_secs,
                100.0 * m.cpu_secs / m.secs,
                m.prov_cpu_secs,
                100.0 * m.dups as f64 / nblocks as f64,
                m.late,
                m.hwm_kib as f64 * 1024.0 / 1e6,
                m.settle_secs,
                m.served,
            );
            debug_assert!(m.received >= nblocks);
        }
        println!("load {} at end", loadavg());
        anyhow::Ok(())
    })
}
