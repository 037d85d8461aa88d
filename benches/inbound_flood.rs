//! Inbound flood: a cairn node (a child process: this binary re-executed with
//! `CAIRN_BENCH_ROLE=server`, so its RSS and file descriptors are its own) with Kubo's ConnMgr
//! defaults (`LowWater` 32, `HighWater` 96) first gets 1,000 real libp2p peers dialling in, then
//! 10,000 raw TCP connections that never start the handshake, from 100 loopback addresses. An
//! existing cairn peer pings it and fetches a 1 KiB block over Bitswap, over and over, before and
//! during each flood; the bench prints the peer's latency during a flood against its own latency
//! before it (same run), the node's peers, fds and RSS over time, its peak RSS, and how long the
//! connection manager took to bring the count back under `HighWater`.
//!
//! Run: `cargo bench --bench inbound_flood` (release). Sizes: `CAIRN_FLOOD_PEERS` (default 1000),
//! `CAIRN_FLOOD_HALF_OPEN` (10000), `CAIRN_FLOOD_HIGH_WATER` (96), `CAIRN_FLOOD_LOW_WATER` (32),
//! `CAIRN_FLOOD_GRACE_SECS` (grace period, default 5 instead of Kubo's 20, to keep the run short).
//! Needs an fd limit above `CAIRN_FLOOD_HALF_OPEN` + 1,000 (`ulimit -n`). Loopback only.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn::blockstore::{Block, Cid, codec::RAW};
use cairn::node::{ConnMgrLimits, FetchOptions, Multiaddr, Node, PeerId, Profile};
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, tcp, yamux};
use support::{env, status_kib};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

/// Blocks the server holds; the existing peer fetches them in turn and drops each from its own
/// store afterwards, so every fetch crosses the network.
const BLOCKS: u32 = 256;

fn block(i: u32) -> Block {
    Block::from_data(RAW, [i.to_le_bytes().as_slice(), &[0x5a; 1020]].concat()).unwrap()
}

/// The child: a node that serves until its stdin closes, printing its peer count every 100 ms.
async fn server() -> anyhow::Result<()> {
    let limits = ConnMgrLimits {
        low_water: env("CAIRN_FLOOD_LOW_WATER", 32),
        high_water: env("CAIRN_FLOOD_HIGH_WATER", 96),
        grace_period: Duration::from_secs(env("CAIRN_FLOOD_GRACE_SECS", 5) as u64),
        ..Default::default()
    };
    let node = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse()?])
        .conn_mgr(limits)
        .build()
        .await?;
    for i in 0..BLOCKS {
        node.put_block(&block(i)).await?;
    }
    let addr = node
        .listen_addrs()
        .await?
        .into_iter()
        .next()
        .context("addr")?;
    println!("ADDR {}", addr.with_p2p(node.peer_id()).unwrap());
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {}
    });
    tokio::pin!(stdin_closed);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = &mut stdin_closed => break,
            _ = tick.tick() => {
                let n = node.peers().await?.len();
                println!("PEERS {n}");
                std::io::stdout().flush()?;
            }
        }
    }
    node.shutdown().await?;
    Ok(())
}

#[derive(NetworkBehaviour)]
struct Peer {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// A bare libp2p peer (identify + ping) that dials `to`; `handshaken` is released once its
/// connection is up or has failed, and the task ends when the node closes the connection.
fn spawn_peer(to: Multiaddr, handshaken: tokio::sync::OwnedSemaphorePermit) {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| Peer {
            identify: identify::Behaviour::new(identify::Config::new(
                "ipfs/0.1.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    swarm.dial(to).unwrap();
    tokio::spawn(async move {
        let mut permit = Some(handshaken);
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => drop(permit.take()),
                SwarmEvent::ConnectionClosed {
                    num_established: 0, ..
                }
                | SwarmEvent::OutgoingConnectionError { .. } => break,
                _ => {}
            }
        }
    });
}

/// The existing peer's ping and fetch latencies, measured in a loop while `run` holds.
struct Probe {
    ping: Vec<Duration>,
    fetch: Vec<Duration>,
    failures: usize,
}

async fn probe(
    worker: Node,
    server: PeerId,
    next: Arc<AtomicUsize>,
    run: Arc<AtomicBool>,
) -> Probe {
    let mut p = Probe {
        ping: Vec::new(),
        fetch: Vec::new(),
        failures: 0,
    };
    let opts = FetchOptions::with_timeout(Some(Duration::from_secs(30)));
    while run.load(Ordering::SeqCst) {
        let i = next.fetch_add(1, Ordering::SeqCst) as u32 % BLOCKS;
        let cid: Cid = *block(i).cid();
        let t = Instant::now();
        match worker.get_block_with(&cid, opts).await {
            Ok(_) => p.fetch.push(t.elapsed()),
            Err(_) => p.failures += 1,
        }
        let _ = worker.remove_block(&cid).await;
        let t = Instant::now();
        match worker.ping(server).await {
            Ok(_) => p.ping.push(t.elapsed()),
            Err(_) => p.failures += 1,
        }
    }
    p
}

fn percentile(v: &[Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(label: &str, before: &Probe, during: &Probe) {
    for (what, b, d) in [
        ("ping", &before.ping, &during.ping),
        ("fetch", &before.fetch, &during.fetch),
    ] {
        let (b50, d50) = (percentile(b, 0.5), percentile(d, 0.5));
        let (b99, d99) = (percentile(b, 0.99), percentile(d, 0.99));
        println!(
            "  {label} {what}: before p50 {:.2} ms p99 {:.2} ms (n={}); during p50 {:.2} ms p99 {:.2} ms (n={}); p50 ratio {:.2}x, p99 ratio {:.2}x",
            ms(b50),
            ms(b99),
            b.len(),
            ms(d50),
            ms(d99),
            d.len(),
            d50.as_secs_f64() / b50.as_secs_f64().max(1e-9),
            d99.as_secs_f64() / b99.as_secs_f64().max(1e-9),
        );
    }
    println!("  {label} failures during: {}", during.failures);
}

/// The child's state, sampled by the parent.
struct Child {
    pid: String,
    peers: Arc<AtomicUsize>,
}

impl Child {
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |d| d.count())
    }
    fn line(&self, t0: Instant) -> String {
        format!(
            "t={:6.1}s peers {:4} fds {:5} RSS {:6.1} MB",
            t0.elapsed().as_secs_f64(),
            self.peers.load(Ordering::SeqCst),
            self.fds(),
            status_kib(&self.pid, "VmRSS:") as f64 * 1024.0 / 1e6
        )
    }
}

/// Prints the child's state every second until `run` clears; returns the highest peer and fd
/// counts seen (sampled every 100 ms).
async fn sampler(child: Arc<Child>, run: Arc<AtomicBool>, t0: Instant) -> (usize, usize) {
    let (mut peers, mut fds) = (0, 0);
    let mut i = 0u64;
    while run.load(Ordering::SeqCst) {
        peers = peers.max(child.peers.load(Ordering::SeqCst));
        fds = fds.max(child.fds());
        if i.is_multiple_of(10) {
            println!("    {}", child.line(t0));
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (peers, fds)
}

/// Waits until the child's peer count satisfies `ok`, for at most `limit`.
async fn wait_peers(
    child: &Child,
    limit: Duration,
    ok: impl Fn(usize) -> bool,
) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if ok(child.peers.load(Ordering::SeqCst)) {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::var("CAIRN_BENCH_ROLE").as_deref() == Ok("server") {
        return rt.block_on(server());
    }
    let n_peers = env("CAIRN_FLOOD_PEERS", 1000);
    let n_half = env("CAIRN_FLOOD_HALF_OPEN", 10_000);
    let high_water = env("CAIRN_FLOOD_HIGH_WATER", 96);
    let mut child = Command::new(std::env::current_exe()?)
        .env("CAIRN_BENCH_ROLE", "server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr: Multiaddr = loop {
        let line = lines.next().context("server exited")??;
        if let Some(a) = line.strip_prefix("ADDR ") {
            break a.parse()?;
        }
    };
    let state = Arc::new(Child {
        pid: child.id().to_string(),
        peers: Arc::new(AtomicUsize::new(0)),
    });
    {
        let peers = state.peers.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("PEERS ").and_then(|n| n.parse().ok()) {
                    peers.store(n, Ordering::SeqCst);
                }
            }
        });
    }
    let result = rt.block_on(flood(addr, state.clone(), n_peers, n_half, high_water));
    drop(child.stdin.take());
    let _ = child.wait();
    result
}

async fn flood(
    addr: Multiaddr,
    child: Arc<Child>,
    n_peers: usize,
    n_half: usize,
    high_water: usize,
) -> anyhow::Result<()> {
    let server_id = match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(id)) => id,
        _ => anyhow::bail!("no peer id in {addr}"),
    };
    println!(
        "inbound flood bench: {n_peers} peers, {n_half} half-open connections, HighWater {high_water}"
    );
    let t0 = Instant::now();
    let worker = Node::builder()
        .profile(Profile::Test)
        .listen_addrs([])
        .build()
        .await?;
    worker.connect(addr.clone()).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let idle = status_kib(&child.pid, "VmRSS:");
    println!(
        "  server idle: RSS {:.1} MB, fds {}",
        idle as f64 * 1024.0 / 1e6,
        child.fds()
    );

    // Baseline: the existing peer alone, 200 fetch+ping rounds.
    let run = Arc::new(AtomicBool::new(true));
    let base = tokio::spawn(probe(worker.clone(), server_id, next.clone(), run.clone()));
    while next.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.store(false, Ordering::SeqCst);
    let before = base.await?;

    // ---- 1. peers ---------------------------------------------------------------------------
    println!(
        "  1. {n_peers} peers dial in (at most 8 handshakes in flight, under the per-IP cap):"
    );
    let (run, sampling) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(true)),
    );
    let during = tokio::spawn(probe(worker.clone(), server_id, next.clone(), run.clone()));
    let sample = tokio::spawn(sampler(child.clone(), sampling.clone(), t0));
    let in_flight = Arc::new(Semaphore::new(8));
    let started = Instant::now();
    for _ in 0..n_peers {
        let permit = in_flight.clone().acquire_owned().await?;
        spawn_peer(addr.clone(), permit);
    }
    let dialled = started.elapsed();
    // The connection manager trims once the flood's peers leave their grace period.
    let trimmed = wait_peers(&child, Duration::from_secs(120), |n| n <= high_water).await;
    run.store(false, Ordering::SeqCst);
    let during_peers = during.await?;
    sampling.store(false, Ordering::SeqCst);
    let (peak_peers, peak_fds) = sample.await?;
    let hwm_peers = status_kib(&child.pid, "VmHWM:");
    let connected = worker.peers().await?.iter().any(|p| p.peer_id == server_id);
    println!(
        "  all {n_peers} dialled in {:.1} s; peak {peak_peers} peers, {peak_fds} fds; back under HighWater {:?} after the flood started ({:.1} s after the last dial)",
        dialled.as_secs_f64(),
        trimmed.map(|t| t + dialled),
        trimmed.map_or(f64::NAN, |t| t.as_secs_f64()),
    );
    println!(
        "  server peak RSS (VmHWM) {:.1} MB (idle {:.1} MB); existing peer still connected: {connected}",
        hwm_peers as f64 * 1024.0 / 1e6,
        idle as f64 * 1024.0 / 1e6,
    );
    report("peer flood", &before, &during_peers);

    // ---- 2. half-open ------------------------------------------------------------------------
    let fds_before = child.fds();
    println!(
        "  2. {n_half} half-open TCP connections from 100 addresses (127.0.1.1-100), silent; server fds before {fds_before}:"
    );
    let (run, sampling) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(true)),
    );
    let during = tokio::spawn(probe(worker.clone(), server_id, next.clone(), run.clone()));
    let sample = tokio::spawn(sampler(child.clone(), sampling.clone(), t0));
    let port = addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .context("tcp port")?;
    let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let held = Arc::new(AtomicUsize::new(0));
    let connecting = Arc::new(Semaphore::new(256));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n_half);
    for i in 0..n_half {
        let from = Ipv4Addr::new(127, 0, 1, 1 + (i % 100) as u8);
        let permit = connecting.clone().acquire_owned().await?;
        let held = held.clone();
        tasks.push(tokio::spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4().ok()?;
            socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).ok()?;
            let mut s = socket.connect(to).await.ok()?;
            drop(permit);
            let opened = Instant::now();
            let mut buf = [0u8; 64];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            let kept = opened.elapsed();
            if kept >= Duration::from_secs(5) {
                held.fetch_add(1, Ordering::SeqCst);
            }
            Some(kept)
        }));
    }
    let opened = started.elapsed();
    let mut failed = 0;
    let mut longest = Duration::ZERO;
    for t in tasks {
        match t.await? {
            Some(kept) => longest = longest.max(kept),
            None => failed += 1,
        }
    }
    let all_closed = started.elapsed();
    // The server's fds return to where they were.
    let settle = Instant::now();
    while child.fds() > fds_before + 8 && settle.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.store(false, Ordering::SeqCst);
    let during_half = during.await?;
    sampling.store(false, Ordering::SeqCst);
    let (_, peak_fds) = sample.await?;
    println!(
        "  {n_half} connects issued in {:.1} s ({failed} failed to connect); held until the handshake timeout: {}; longest held {:.1} s; all closed after {:.1} s",
        opened.as_secs_f64(),
        held.load(Ordering::SeqCst),
        longest.as_secs_f64(),
        all_closed.as_secs_f64(),
    );
    println!(
        "  server fds: before {fds_before}, peak {peak_fds}, after {}; server VmHWM {:.1} MB; existing peer still connected: {}",
        child.fds(),
        status_kib(&child.pid, "VmHWM:") as f64 * 1024.0 / 1e6,
        worker.peers().await?.iter().any(|p| p.peer_id == server_id),
    );
    report("half-open flood", &before, &during_half);
    worker.shutdown().await?;
    Ok(())
}
