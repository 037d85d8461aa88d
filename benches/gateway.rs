//! The HTTP gateway (`cairn-gateway`) under load, beside a bare axum handler serving the same
//! bytes from memory with the same response headers, measured in the same run by the same
//! clients (hyper, keep-alive HTTP/1.1, on loopback):
//!
//! - a 1 KiB raw block, `GET /ipfs/<cid>?format=raw`, and a 1 KiB file (Kubo's default import,
//!   CIDv0), `GET /ipfs/<cid>`: requests/s and p50/p99 latency from N concurrent keep-alive
//!   connections for a fixed time, in 1 s slices with the three targets taking turns (so the
//!   slow moments of a shared machine fall on all of them);
//! - a 100 MiB file (Kubo's default import: 256 KiB chunks, balanced DAG, CIDv0),
//!   `GET /ipfs/<cid>`: MB/s of single requests one after another, and the aggregate MB/s of K
//!   requests at once; the baseline streams the same bytes from memory in 256 KiB chunks.
//!
//! Everything runs in this process: a node with an on-disk store (the daemon's defaults: files for
//! blocks ≥ 64 KiB, read verification on) and its gateway router on one port, the bare axum router
//! on another, both served by `axum::serve` on the same runtime as the clients. The baseline
//! copies the headers of cairn's first answer, so both write the same header bytes. Peak RSS is
//! this process's VmHWM, reset (`/proc/self/clear_refs`) before each phase so each peak is that
//! phase's own; the 100 MiB the baseline serves from stays resident throughout.
//!
//! Run: `cargo bench --bench gateway` (release). `CAIRN_LOAD_SECONDS` (default 5: seconds per
//! target per round) and `CAIRN_LOAD_CONNECTIONS` (default 16) tune the 1 KiB load,
//! `CAIRN_BENCH_MIB` (default 100) the large file, `CAIRN_BENCH_CONCURRENT` (default 4) its
//! concurrent requests, and `CAIRN_BENCH_RUNS` (default 3) the rounds (medians are printed; each
//! round runs every target, interleaved). `CAIRN_BENCH_VERIFY=0` turns the store's read
//! verification off (to see what hashing costs); `CAIRN_LOAD_SECONDS=0` skips the 1 KiB load
//! (for profiling the large file). MB/s = 10^6 bytes per second.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, DATE};
use axum::routing::get;
use bytes::Bytes;
use cairn::blockstore::{Block, Blockstore, BlockstoreConfig, codec::RAW};
use cairn::gateway::{Gateway, GatewayConfig};
use cairn::node::add::AddOptions;
use cairn::node::{Node, Profile};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Digest;
use support::{env, mbps, median, reset_hwm, status_kib};

/// Kubo's default chunk size, and the baseline's stream chunks.
const CHUNK: usize = 256 * 1024;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// One keep-alive connection (the pool keeps at most one idle connection per host).
fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build_http()
}

/// `len` xorshift bytes: incompressible, no two chunks alike.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `data` sliced into `CHUNK`-sized pieces (no copies).
fn chunks(data: Bytes) -> impl Iterator<Item = Bytes> + Send + 'static {
    (0..data.len())
        .step_by(CHUNK)
        .map(move |at| data.slice(at..(at + CHUNK).min(data.len())))
}

/// Adds `data` as one file with Kubo's default import (CIDv0, 256 KiB chunks, pinned).
async fn add(node: &Node, data: &Bytes) -> anyhow::Result<cid::Cid> {
    let mut adder = node.adder(AddOptions::new())?;
    let stream = futures::stream::iter(chunks(data.clone()).map(Ok));
    let added = adder.add_file("file", stream, &mut |_| {}).await?;
    adder.finish().await?;
    Ok(added.cid)
}

/// Serves `router` on 127.0.0.1 port 0; returns its base URL.
async fn serve(router: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{addr}"))
}

/// GETs `url` and streams the body; returns the headers, the byte count and the sha256 of the
/// body if `hash`.
async fn fetch(
    client: &HttpClient,
    url: &str,
    hash: bool,
) -> anyhow::Result<(HeaderMap, u64, Option<Vec<u8>>)> {
    let req = hyper::Request::get(url).body(Empty::new())?;
    let resp = client.request(req).await?;
    ensure!(resp.status() == 200, "{url}: {}", resp.status());
    let (parts, mut body) = resp.into_parts();
    let (mut n, mut sha) = (0u64, sha2::Sha256::new());
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
            if hash {
                sha.update(&data);
            }
        }
    }
    Ok((parts.headers, n, hash.then(|| sha.finalize().to_vec())))
}

/// What the fixed-time loads of one target measured.
#[derive(Clone, Copy)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// The latency of every request one target answered, and the time spent loading it.
#[derive(Default)]
struct Samples {
    took: Vec<Duration>,
    secs: f64,
}

impl Samples {
    fn load(mut self) -> Load {
        self.took.sort();
        let n = self.took.len();
        let at = |q: f64| match n {
            0 => f64::NAN,
            _ => self.took[((n - 1) as f64 * q) as usize].as_secs_f64() * 1e3,
        };
        Load {
            rps: n as f64 / self.secs,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
        }
    }
}

/// GETs `url` through `clients` (one keep-alive connection each, kept open between calls) for
/// `time`, checking every body against `expect`; adds the latencies and the time to `into`.
async fn load(
    url: &str,
    clients: &[HttpClient],
    time: Duration,
    expect: &Bytes,
    into: &mut Samples,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + time;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in clients {
        let (url, expect, client) = (url.to_string(), expect.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let req = hyper::Request::get(&url).body(Empty::new())?;
                let resp = client.request(req).await?;
                ensure!(resp.status() == 200, "{url}: {}", resp.status());
                let body = resp.into_body().collect().await?.to_bytes();
                took.push(t.elapsed());
                ensure!(body == expect, "{url}: wrong body ({} bytes)", body.len());
            }
            anyhow::Ok(took)
        }));
    }
    for t in tasks {
        into.took.extend(t.await??);
    }
    into.secs += started.elapsed().as_secs_f64();
    Ok(())
}

/// `parallel` simultaneous GETs of the large file, each on its own connection; returns the
/// aggregate MB/s.
async fn concurrent(url: &str, parallel: usize, size: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let (_, n, _) = fetch(&client(), &url, false).await?;
            ensure!(n == size, "{url}: {n} bytes of {size}");
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(mbps(size * parallel as u64, started.elapsed()))
}

/// One sequential GET of the large file; returns its MB/s.
async fn single(url: &str, size: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let (_, n, _) = fetch(&client(), url, false).await?;
    ensure!(n == size, "{url}: {n} bytes of {size}");
    Ok(mbps(size, started.elapsed()))
}

/// The headers of an answer as the baseline repeats them (the server adds its own `Date`, and the
/// length where the body knows it).
fn repeatable(mut headers: HeaderMap, keep_length: bool) -> HeaderMap {
    headers.remove(DATE);
    if !keep_length {
        headers.remove(CONTENT_LENGTH);
    }
    headers
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Tracks the peak RSS of each phase: reset before, read after.
#[derive(Default)]
struct Peaks(Vec<(&'static str, u64)>);

impl Peaks {
    fn start() {
        reset_hwm("self");
    }

    fn end(&mut self, phase: &'static str) {
        let hwm = status_kib("self", "VmHWM:");
        match self.0.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, peak)) => *peak = (*peak).max(hwm),
            None => self.0.push((phase, hwm)),
        }
    }
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let seconds = env("CAIRN_LOAD_SECONDS", 5) as u64;
    let connections = env("CAIRN_LOAD_CONNECTIONS", 16).max(1);
    let big_mib = env("CAIRN_BENCH_MIB", 100).max(1);
    let parallel = env("CAIRN_BENCH_CONCURRENT", 4).max(1);
    let rounds = env("CAIRN_BENCH_RUNS", 3).max(1);
    let verify = env("CAIRN_BENCH_VERIFY", 1) != 0;
    println!(
        "gateway bench: 1 KiB with {connections} keep-alive connections, {seconds} s per target; \
         {big_mib} MiB file 3× one at a time and {parallel} at once; {rounds} rounds (medians); \
         store read verification {}",
        if verify { "on" } else { "off" }
    );

    // cairn: a node with an on-disk store and the daemon's store defaults, and its gateway.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let node = Node::builder()
        .profile(Profile::Test)
        .listen_addrs([])
        .blockstore(Blockstore::open_with(
            dir.path().join("blocks"),
            BlockstoreConfig::default().with_verify_on_read(verify),
        )?)
        .build()
        .await?;
    let small = Bytes::from(content(1024, 1));
    let block = Block::from_data(RAW, small.clone())?;
    node.put_block(&block).await?;
    let small_file = add(&node, &small).await?;
    let big = Bytes::from(content(big_mib << 20, 2));
    let size = big.len() as u64;
    let big_sha = sha2::Sha256::digest(&big).to_vec();
    let big_file = add(&node, &big).await?;
    let setup_hwm = status_kib("self", "VmHWM:");
    let gateway = serve(Gateway::new(node.clone(), GatewayConfig::default()).router()).await?;
    let raw_url = format!("{gateway}/ipfs/{}?format=raw", block.cid());
    let file_url = format!("{gateway}/ipfs/{small_file}");
    let big_url = format!("{gateway}/ipfs/{big_file}");

    // cairn's answers, checked; the baseline repeats their headers.
    let (raw_headers, n, _) = fetch(&client(), &raw_url, false).await?;
    ensure!(n == 1024, "raw block: {n} bytes");
    let (big_headers, n, sha) = fetch(&client(), &big_url, true).await?;
    ensure!(
        n == size && sha.as_deref() == Some(&big_sha[..]),
        "the large file differs"
    );
    let (raw_headers, big_headers) = (
        Arc::new(repeatable(raw_headers, false)),
        Arc::new(repeatable(big_headers, true)),
    );
    println!(
        "cairn answers with {} headers (raw block) and {} (file); the baseline sends the same",
        raw_headers.len(),
        big_headers.len()
    );

    // The baseline: bare axum handlers over the same bytes in memory.
    let (b, h) = (small.clone(), raw_headers.clone());
    let (f, fh) = (big.clone(), big_headers.clone());
    let bare = serve(
        axum::Router::new()
            .route(
                "/block",
                get(move || {
                    let (b, h) = (b.clone(), h.clone());
                    async move { ((*h).clone(), b) }
                }),
            )
            .route(
                "/file",
                get(move || {
                    let stream =
                        futures::stream::iter(chunks(f.clone()).map(Ok::<_, std::io::Error>));
                    let h = (*fh).clone();
                    async move { (h, Body::from_stream(stream)) }
                }),
            ),
    )
    .await?;
    let bare_url = format!("{bare}/block");
    let bare_big = format!("{bare}/file");
    let (_, n, sha) = fetch(&client(), &bare_big, true).await?;
    ensure!(
        n == size && sha.as_deref() == Some(&big_sha[..]),
        "baseline file differs"
    );

    let rss_ready = status_kib("self", "VmRSS:");
    let small_urls = [&bare_url, &raw_url, &file_url];
    let pools: Vec<Vec<HttpClient>> = small_urls
        .iter()
        .map(|_| (0..connections).map(|_| client()).collect())
        .collect();
    let slice = Duration::from_secs(1);
    for (url, pool) in small_urls.iter().zip(&pools).filter(|_| seconds > 0) {
        load(url, pool, slice, &small, &mut Samples::default()).await?;
    }

    let (mut small_runs, mut seq, mut par) = (
        vec![Vec::new(), Vec::new(), Vec::new()],
        vec![Vec::new(), Vec::new()],
        vec![Vec::new(), Vec::new()],
    );
    let mut peaks = Peaks::default();
    let small_phases = [
        "1 KiB load, bare axum",
        "1 KiB load, cairn raw",
        "1 KiB load, cairn file",
    ];
    for round in 0..rounds {
        // 1 s slices, the targets taking turns: a shared machine's slow moments fall on all three.
        let mut samples = [Samples::default(), Samples::default(), Samples::default()];
        for _ in 0..seconds {
            for (i, url) in small_urls.into_iter().enumerate() {
                Peaks::start();
                load(url, &pools[i], slice, &small, &mut samples[i]).await?;
                peaks.end(small_phases[i]);
            }
        }
        for (i, s) in samples.into_iter().enumerate() {
            small_runs[i].push(s.load());
        }
        for _ in 0..3 {
            for (i, url) in [&bare_big, &big_url].into_iter().enumerate() {
                Peaks::start();
                seq[i].push(single(url, size).await?);
                peaks.end(
                    [
                        "large file one at a time, bare axum",
                        "large file one at a time, cairn",
                    ][i],
                );
            }
        }
        for (i, url) in [&bare_big, &big_url].into_iter().enumerate() {
            Peaks::start();
            par[i].push(concurrent(url, parallel, size).await?);
            peaks.end(
                [
                    "large file, concurrent, bare axum",
                    "large file, concurrent, cairn",
                ][i],
            );
        }
        let l = |i: usize| small_runs[i][round].rps;
        println!(
            "round {}: 1 KiB req/s bare {:.0}, raw {:.0}, file {:.0}; {big_mib} MiB MB/s bare {:.0}, \
             cairn {:.0} (median of 3); {parallel} at once bare {:.0}, cairn {:.0}",
            round + 1,
            l(0),
            l(1),
            l(2),
            median(seq[0][3 * round..].to_vec()),
            median(seq[1][3 * round..].to_vec()),
            par[0][round],
            par[1][round]
        );
    }

    let med = |runs: &[Load], f: fn(&Load) -> f64| median(runs.iter().map(f).collect());
    let names = [
        "bare axum, same 1 KiB and headers",
        "cairn GET /ipfs/<raw cid>?format=raw",
        "cairn GET /ipfs/<CIDv0 1 KiB file>",
    ];
    if seconds > 0 {
        let base_rps = med(&small_runs[0], |l| l.rps);
        println!(
            "\n{:<40} {:>9} {:>8} {:>8} {:>6}",
            "1 KiB", "req/s", "p50 ms", "p99 ms", "ratio"
        );
        for (name, runs) in names.iter().zip(&small_runs) {
            let rps = med(runs, |l| l.rps);
            println!(
                "{name:<40} {rps:>9.0} {:>8.3} {:>8.3} {:>5.0}%",
                med(runs, |l| l.p50_ms),
                med(runs, |l| l.p99_ms),
                100.0 * rps / base_rps
            );
        }
    }
    let (s0, s1) = (median(seq[0].clone()), median(seq[1].clone()));
    let (p0, p1) = (median(par[0].clone()), median(par[1].clone()));
    println!(
        "\n{:<40} {:>12} {:>16}",
        format!("{big_mib} MiB file, MB/s"),
        "one request",
        format!("{parallel} at once (sum)")
    );
    println!(
        "{:<40} {s0:>12.1} {p0:>16.1}",
        "bare axum, 256 KiB chunks from memory"
    );
    println!(
        "{:<40} {s1:>12.1} {p1:>16.1}",
        "cairn GET /ipfs/<CIDv0 file>"
    );
    println!(
        "{:<40} {:>11.0}% {:>15.0}%",
        "ratio",
        100.0 * s1 / s0,
        100.0 * p1 / p0
    );

    println!(
        "\nRSS: peak during setup (generating and adding the file) {:.1} MiB; {:.1} MiB when ready, \
         of which {:.1} MiB is the file held in memory for the baseline",
        mib(setup_hwm),
        mib(rss_ready),
        size as f64 / (1 << 20) as f64
    );
    for (phase, kib) in &peaks.0 {
        println!("  peak during {phase:<38} {:.1} MiB", mib(*kib));
    }
    let overall = peaks
        .0
        .iter()
        .map(|p| p.1)
        .chain([setup_hwm])
        .max()
        .unwrap_or(0);
    println!(
        "  process peak (VmHWM over the run)            {:.1} MiB",
        mib(overall)
    );
    node.shutdown().await.context("node shutdown")?;
    Ok(())
}
