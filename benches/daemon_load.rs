//! One daemon under 1,000 concurrent RPC connections: the release `cairn daemon` (a child process
//! on a fresh test-profile repo, pubsub on) held at `CAIRN_LOAD_CONNECTIONS` keep-alive HTTP/1.1
//! connections from this process, each a worker with one connection of its own:
//!
//! - 10% `pubsub/sub` subscribers over 10 topics: long-lived streaming answers, held open the
//!   whole run, each message's delivery latency taken from the timestamp it carries;
//! - 1% `pubsub/pub` publishers, one message per `CAIRN_LOAD_PUB_MS` (default 50) each, so every
//!   subscriber receives and the bench checks that each published message reached every
//!   subscriber of its topic;
//! - the rest split evenly, closed loop (next request as soon as the answer is read), between
//!   `block/get` of a 1 KiB block, `block/put` of a fresh 1 KiB block, and `add` (multipart) of a
//!   fresh 4 KiB file.
//!
//! The same workers then run against a bare axum server in this process with the same routes
//! (fixed answers, a broadcast channel for pubsub): the same-run ceiling. It prints requests
//! served, errors, p50/p99 per operation, the daemon's peak RSS (VmHWM), descriptors and threads,
//! its alive task count, and the RSS each idle connection costs (measured first, with
//! `CAIRN_LOAD_CONNECTIONS` connections open and idle).
//!
//! Run: `cargo bench --bench daemon_load` (release). `CAIRN_LOAD_CONNECTIONS` (default 1000) and
//! `CAIRN_LOAD_SECONDS` (default 20, per target) scale it down or up. The soft descriptor limit is
//! raised to the hard one; it needs about `2 × connections + 100`.

#[path = "support/daemon.rs"]
mod daemon;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use axum::body::Body;
use axum::routing::post;
use bytes::Bytes;
use daemon::{Daemon, ProcSample, call, connect, multibase, quantile, request, unmultibase};
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;

/// Topics the subscribers spread over.
const TOPICS: usize = 10;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The operations a worker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Get,
    Put,
    Add,
    Pub,
    Sub,
}

const OPS: [Op; 5] = [Op::Get, Op::Put, Op::Add, Op::Pub, Op::Sub];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "block/get",
            Op::Put => "block/put",
            Op::Add => "add",
            Op::Pub => "pubsub/pub",
            Op::Sub => "pubsub/sub (delivery)",
        }
    }
}

/// The worker mix for `n` connections: (op, count).
fn mix(n: u64) -> Vec<(Op, u64)> {
    let subs = (n / 10).max(1);
    let pubs = (n / 100).max(1);
    let rest = n.saturating_sub(subs + pubs);
    let (get, put) = (rest / 3, rest / 3);
    vec![
        (Op::Sub, subs),
        (Op::Pub, pubs),
        (Op::Get, get),
        (Op::Put, put),
        (Op::Add, rest - get - put),
    ]
}

/// What one worker did: latencies in µs, errors, and the first error's text.
#[derive(Default)]
struct Tally {
    lat: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    /// Publishers: messages published per topic.
    published: Vec<(usize, u64)>,
}

impl Tally {
    fn fail(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

/// Shared by the workers of one run.
struct Run {
    addr: String,
    /// The 1 KiB block `block/get` asks for, as its CID.
    get_cid: String,
    started: Instant,
    /// Workers stop starting requests when this is cancelled.
    stop: CancellationToken,
    /// Subscribers stop reading when this is cancelled (after delivery is checked).
    stop_subs: CancellationToken,
    /// Subscribers whose stream is open (answer head received).
    subscribed: AtomicU64,
    /// Messages received, per topic, summed over its subscribers.
    received: Vec<AtomicU64>,
    /// Unique bytes for puts and adds.
    counter: AtomicU64,
}

impl Run {
    fn fresh(&self, len: usize) -> Vec<u8> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut data = format!("cairn-load {n} {:?} ", self.started.elapsed()).into_bytes();
        data.resize(len, b'.');
        data
    }
}

/// One closed-loop worker on a connection of its own.
async fn worker(run: Arc<Run>, op: Op, index: usize) -> Tally {
    let mut tally = Tally::default();
    let mut conn = match connect(&run.addr).await {
        Ok(c) => c,
        Err(e) => {
            tally.fail(format!("connect: {e}"));
            return tally;
        }
    };
    if op == Op::Sub {
        return subscriber(run, conn, index, tally).await;
    }
    let topic = index % TOPICS;
    let mut published = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(env("CAIRN_LOAD_PUB_MS", 50)));
    while !run.stop.is_cancelled() {
        let req = match op {
            Op::Get => request(&format!("block/get?arg={}", run.get_cid), None),
            Op::Put => request("block/put", Some(&run.fresh(1024))),
            Op::Add => request("add?pin=false&progress=false", Some(&run.fresh(4096))),
            Op::Pub => {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = run.stop.cancelled() => break,
                }
                let sent = run.started.elapsed().as_micros().to_string();
                request(
                    &format!(
                        "pubsub/pub?arg={}",
                        multibase(format!("t{topic}").as_bytes())
                    ),
                    Some(sent.as_bytes()),
                )
            }
            Op::Sub => unreachable!(),
        };
        let start = Instant::now();
        match call(&mut conn, req).await {
            Ok(body) => {
                if op == Op::Get && body.len() != 1024 {
                    tally.fail(format!("block/get returned {} bytes", body.len()));
                    continue;
                }
                tally.lat.push(start.elapsed().as_micros() as u32);
                if op == Op::Pub {
                    published += 1;
                }
            }
            Err(e) => {
                tally.fail(format!("{}: {e:#}", op.name()));
                // A failed connection stays failed: open another, as a client would.
                if conn.is_closed() {
                    match connect(&run.addr).await {
                        Ok(c) => conn = c,
                        Err(e) => {
                            tally.fail(format!("reconnect: {e}"));
                            break;
                        }
                    }
                }
            }
        }
    }
    if op == Op::Pub {
        tally.published.push((topic, published));
    }
    tally
}

/// A subscriber: opens the stream, then counts the lines (messages) until told to stop; each
/// message's latency is now minus the publish time it carries.
async fn subscriber(
    run: Arc<Run>,
    mut conn: hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>,
    index: usize,
    mut tally: Tally,
) -> Tally {
    let topic = index % TOPICS;
    let req = request(
        &format!(
            "pubsub/sub?arg={}",
            multibase(format!("t{topic}").as_bytes())
        ),
        None,
    );
    let resp = match async {
        conn.ready().await?;
        conn.send_request(req).await
    }
    .await
    {
        Ok(r) if r.status() == hyper::StatusCode::OK => r,
        Ok(r) => {
            tally.fail(format!("pubsub/sub: {}", r.status()));
            return tally;
        }
        Err(e) => {
            tally.fail(format!("pubsub/sub: {e}"));
            return tally;
        }
    };
    run.subscribed.fetch_add(1, Ordering::Relaxed);
    let mut body = resp.into_body();
    let mut pending = Vec::new();
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            () = run.stop_subs.cancelled() => break,
        };
        match frame {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                pending.extend_from_slice(&data);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    match message_sent_at(&line) {
                        Some(sent) => {
                            let now = run.started.elapsed().as_micros() as u64;
                            tally.lat.push(now.saturating_sub(sent) as u32);
                            run.received[topic].fetch_add(1, Ordering::Relaxed);
                        }
                        None => tally.fail(format!(
                            "pubsub/sub: unexpected line {}",
                            String::from_utf8_lossy(&line)
                        )),
                    }
                }
            }
            Some(Err(e)) => {
                tally.fail(format!("pubsub/sub stream: {e}"));
                break;
            }
            None => {
                tally.fail("pubsub/sub stream ended early");
                break;
            }
        }
    }
    tally
}

/// The publish time (µs since the run started) a pubsub line carries in its `data`.
fn message_sent_at(line: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let data = unmultibase(v["data"].as_str()?)?;
    std::str::from_utf8(&data).ok()?.parse().ok()
}

/// What a run measured.
struct Report {
    served: u64,
    errors: u64,
    first_error: Option<String>,
    /// Per op: (count, p50 µs, p99 µs).
    per_op: Vec<(Op, usize, u32, u32)>,
    /// Requests per second, subscriptions' deliveries excluded.
    rps: f64,
    published: u64,
    expected_deliveries: u64,
    deliveries: u64,
    /// The daemon's peaks while loaded (zero for the bare server).
    peak: ProcSample,
    alive_tasks: Option<f64>,
}

/// Runs the mix against `addr` for `seconds`; `pid` is the daemon to watch, if any.
async fn load(
    addr: &str,
    get_cid: &str,
    connections: u64,
    seconds: u64,
    pid: Option<u32>,
) -> anyhow::Result<Report> {
    let run = Arc::new(Run {
        addr: addr.to_string(),
        get_cid: get_cid.to_string(),
        started: Instant::now(),
        stop: CancellationToken::new(),
        stop_subs: CancellationToken::new(),
        subscribed: AtomicU64::new(0),
        received: (0..TOPICS).map(|_| AtomicU64::new(0)).collect(),
        counter: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    // Subscribers first, and all of them open before anything is published, so every message
    // has all its subscribers.
    let mixes = mix(connections);
    let subs = mixes[0].1;
    for i in 0..subs as usize {
        let run = run.clone();
        tasks.push((Op::Sub, tokio::spawn(worker(run, Op::Sub, i))));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while run.subscribed.load(Ordering::Relaxed) < subs {
        ensure!(
            Instant::now() < deadline,
            "only {} of {subs} subscriptions opened",
            run.subscribed.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for &(op, count) in &mixes[1..] {
        for i in 0..count as usize {
            tasks.push((op, tokio::spawn(worker(run.clone(), op, i))));
        }
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut peak = ProcSample::default();
    let mut alive_tasks = None;
    while Instant::now() < until {
        if let Some(pid) = pid {
            let s = ProcSample::of(pid);
            peak.fds = peak.fds.max(s.fds);
            peak.threads = peak.threads.max(s.threads);
            peak.hwm_kib = peak.hwm_kib.max(s.hwm_kib);
            if alive_tasks.is_none() && started.elapsed() > Duration::from_secs(seconds / 2) {
                alive_tasks = daemon::metric(addr, "cairn_runtime_alive_tasks").await.ok();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    run.stop.cancel();
    let mut tallies: Vec<(Op, Tally)> = Vec::new();
    let mut subs_tasks = Vec::new();
    for (op, t) in tasks {
        if op == Op::Sub {
            subs_tasks.push(t);
        } else {
            tallies.push((op, t.await?));
        }
    }
    let elapsed = started.elapsed();
    // Every published message must reach every subscriber of its topic; wait for the last ones.
    let mut expected = [0u64; TOPICS];
    for (_, t) in &tallies {
        for &(topic, n) in &t.published {
            expected[topic] += n;
        }
    }
    let subs_per_topic: Vec<u64> = (0..TOPICS)
        .map(|t| (0..subs as usize).filter(|i| i % TOPICS == t).count() as u64)
        .collect();
    let expected_deliveries: u64 = (0..TOPICS).map(|t| expected[t] * subs_per_topic[t]).sum();
    let received =
        |run: &Run| -> u64 { run.received.iter().map(|r| r.load(Ordering::Relaxed)).sum() };
    let drain = Instant::now() + Duration::from_secs(30);
    while received(&run) < expected_deliveries && Instant::now() < drain {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deliveries = received(&run);
    run.stop_subs.cancel();
    for t in subs_tasks {
        tallies.push((Op::Sub, t.await?));
    }
    if let Some(pid) = pid {
        peak.hwm_kib = peak.hwm_kib.max(ProcSample::of(pid).hwm_kib);
    }
    let mut report = Report {
        served: 0,
        errors: 0,
        first_error: None,
        per_op: Vec::new(),
        rps: 0.0,
        published: expected.iter().sum(),
        expected_deliveries,
        deliveries,
        peak,
        alive_tasks,
    };
    for op in OPS {
        let mut lat = Vec::new();
        for (o, t) in tallies.iter_mut().filter(|(o, _)| *o == op) {
            report.errors += t.errors;
            if report.first_error.is_none() {
                report.first_error = t.first_error.take();
            }
            if *o != Op::Sub {
                report.served += t.lat.len() as u64;
            }
            lat.append(&mut t.lat);
        }
        lat.sort_unstable();
        report
            .per_op
            .push((op, lat.len(), quantile(&lat, 0.5), quantile(&lat, 0.99)));
    }
    report.rps = report.served as f64 / elapsed.as_secs_f64();
    Ok(report)
}

/// The ceiling: a bare axum server with the same routes, answering without a node behind them.
async fn bare_server() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let topics: Arc<Vec<tokio::sync::broadcast::Sender<Bytes>>> = Arc::new(
        (0..TOPICS)
            .map(|_| tokio::sync::broadcast::channel(4096).0)
            .collect(),
    );
    let topic_of = |query: &str| -> usize {
        query
            .strip_prefix("arg=")
            .and_then(unmultibase)
            .and_then(|t| String::from_utf8(t).ok())
            .and_then(|t| t.strip_prefix('t').and_then(|n| n.parse().ok()))
            .unwrap_or(0)
            % TOPICS
    };
    let block = Bytes::from(vec![0x5a; 1024]);
    let (pubs, subs) = (topics.clone(), topics);
    let app = axum::Router::new()
        .route(
            "/api/v0/block/get",
            post(move || async move { block.clone() }),
        )
        .route(
            "/api/v0/block/put",
            post(
                |body: Bytes| async move { format!("{{\"Key\":\"x\",\"Size\":{}}}\n", body.len()) },
            ),
        )
        .route(
            "/api/v0/add",
            post(|body: Bytes| async move {
                format!(
                    "{{\"Name\":\"x\",\"Hash\":\"x\",\"Size\":\"{}\"}}\n",
                    body.len()
                )
            }),
        )
        .route(
            "/api/v0/pubsub/pub",
            post(move |uri: axum::http::Uri, body: Bytes| async move {
                // The data part's payload: between the part's blank line and the closing boundary.
                let start = body
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(0, |p| p + 4);
                let end = body[start..]
                    .windows(4)
                    .position(|w| w == b"\r\n--")
                    .map_or(body.len(), |p| start + p);
                let line = format!("{{\"data\":\"{}\"}}\n", multibase(&body[start..end]));
                let _ = pubs[topic_of(uri.query().unwrap_or(""))].send(Bytes::from(line));
            }),
        )
        .route(
            "/api/v0/pubsub/sub",
            post(move |uri: axum::http::Uri| async move {
                let rx = subs[topic_of(uri.query().unwrap_or(""))].subscribe();
                let stream = futures::stream::unfold(rx, |mut rx| async move {
                    loop {
                        match rx.recv().await {
                            Ok(line) => return Some((Ok::<_, std::io::Error>(line), rx)),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return None,
                        }
                    }
                });
                Body::from_stream(stream)
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn print(label: &str, r: &Report) {
    println!("{label}:");
    println!(
        "  requests served {} ({:.0} req/s, deliveries excluded), errors {}",
        r.served, r.rps, r.errors
    );
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
    for &(op, n, p50, p99) in &r.per_op {
        println!(
            "  {:<22} n={n:<8} p50 {:>8.2} ms  p99 {:>8.2} ms",
            op.name(),
            f64::from(p50) / 1000.0,
            f64::from(p99) / 1000.0
        );
    }
    println!(
        "  pubsub: {} published, {} of {} deliveries received",
        r.published, r.deliveries, r.expected_deliveries
    );
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let connections = env("CAIRN_LOAD_CONNECTIONS", 1000);
    let seconds = env("CAIRN_LOAD_SECONDS", 20);
    let fd_limit = daemon::raise_fd_limit();
    ensure!(
        fd_limit >= 2 * connections + 100,
        "the descriptor limit ({fd_limit}) is too low for {connections} connections"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let d = Daemon::start(&[])?;
        let pid = d.pid();
        // The block every block/get asks for.
        let mut conn = connect(&d.addr).await?;
        let put = call(&mut conn, request("block/put", Some(&[0x5a_u8; 1024][..]))).await?;
        let v: serde_json::Value = serde_json::from_slice(&put)?;
        let get_cid = v["Key"]
            .as_str()
            .context("block/put gave no Key")?
            .to_string();
        drop(conn);

        // The cost of an idle connection: open them all, one `version` each, then read RSS.
        let before = d.sample();
        let mut idle = Vec::new();
        for _ in 0..connections {
            let mut c = connect(&d.addr).await?;
            call(&mut c, request("version", None)).await?;
            idle.push(c);
        }
        let held = d.sample();
        drop(idle);
        let per_conn =
            (held.rss_kib.saturating_sub(before.rss_kib)) as f64 * 1024.0 / connections as f64;

        let bare = bare_server().await?;
        println!(
            "daemon load: {connections} connections, {seconds} s per target, mix {:?}",
            mix(connections)
        );
        load(&bare, "x", connections.min(100), 1, None).await?; // warm-up
        let bare_report = load(&bare, "x", connections, seconds, None).await?;
        load(&d.addr, &get_cid, connections.min(100), 1, Some(pid)).await?; // warm-up
        daemon::reset_hwm(pid);
        let report = load(&d.addr, &get_cid, connections, seconds, Some(pid)).await?;
        let after = d.sample();
        let load_avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

        print("bare axum, same routes and mix (ceiling)", &bare_report);
        let profile = if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release"
        };
        print(&format!("cairn daemon ({profile})"), &report);
        println!(
            "  ratio: {:.1}% of the bare server's req/s",
            100.0 * report.rps / bare_report.rps
        );
        println!(
            "  daemon: VmHWM {:.1} MiB under load (idle {:.1} MiB), peak fds {}, peak threads {}, \
             alive tasks mid-run {}",
            report.peak.hwm_kib as f64 / 1024.0,
            before.rss_kib as f64 / 1024.0,
            report.peak.fds,
            report.peak.threads,
            report
                .alive_tasks
                .map_or("n/a".to_string(), |t| format!("{t:.0}"))
        );
        println!(
            "  idle connections: {connections} held, daemon fds {} -> {}, RSS {:.1} -> {:.1} MiB \
             = {:.1} KiB per connection",
            before.fds,
            held.fds,
            before.rss_kib as f64 / 1024.0,
            held.rss_kib as f64 / 1024.0,
            per_conn / 1024.0
        );
        println!(
            "  after the run: RSS {:.1} MiB, fds {}, threads {}; load average {}",
            after.rss_kib as f64 / 1024.0,
            after.fds,
            after.threads,
            load_avg.trim()
        );
        ensure!(report.errors == 0, "cairn: {} errors", report.errors);
        ensure!(
            report.deliveries == report.expected_deliveries,
            "cairn: pubsub delivered {} of {}",
            report.deliveries,
            report.expected_deliveries
        );
        Ok(())
    })
}
