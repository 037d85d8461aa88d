//! Node latency figures: gossipsub publish-to-deliver between two local nodes (p50, p99) and the
//! time from `Node::builder().build()` to listening (p50, p99).
//!
//! Run: `cargo bench --bench node` (release). Set `CAIRN_BENCH_MESSAGES` (default 1000) and
//! `CAIRN_BENCH_STARTS` (default 50) to change the sample counts. For scale, the run also times a
//! bare TCP echo on loopback (one way = half a round trip) as a same-run floor.

use std::time::{Duration, Instant};

use cairn::node::{Multiaddr, Node, NodeEvent, Profile};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

fn report(name: &str, samples: &mut [Duration]) {
    let (p50, p99) = (percentile(samples, 0.50), percentile(samples, 0.99));
    println!(
        "{name}: n={} p50={:.3} ms p99={:.3} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

async fn start() -> anyhow::Result<Node> {
    let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
    Ok(Node::builder()
        .profile(Profile::Test)
        .listen_addrs([listen])
        .gossipsub(true)
        .build()
        .await?)
}

async fn startup(n: usize) -> anyhow::Result<()> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let node = start().await?;
        samples.push(t.elapsed());
        node.shutdown().await?;
    }
    report("node start-to-listening", &mut samples);
    Ok(())
}

async fn gossip(n: usize) -> anyhow::Result<()> {
    const TOPIC: &str = "bench";
    let (a, b) = (start().await?, start().await?);
    let mut events = b.events();
    let addr = a
        .listen_addrs()
        .await?
        .remove(0)
        .with_p2p(a.peer_id())
        .expect("no p2p suffix yet");
    b.connect(addr).await?;
    let _sa = a.subscribe(TOPIC).await?;
    let mut sb = b.subscribe(TOPIC).await?;
    while let Ok(e) = events.recv().await {
        if matches!(e, NodeEvent::TopicSubscribed { .. }) {
            break;
        }
    }
    // Warm up until the first message crosses.
    loop {
        a.publish(TOPIC, "warm-up").await?;
        if tokio::time::timeout(Duration::from_millis(500), sb.next())
            .await
            .is_ok()
        {
            break;
        }
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let body = format!("m{i}");
        let t = Instant::now();
        a.publish(TOPIC, body.clone()).await?;
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), sb.next())
                .await?
                .expect("subscription open");
            if m.data == body.as_bytes() {
                break;
            }
        }
        samples.push(t.elapsed());
    }
    report(
        "gossipsub publish-to-deliver (2 nodes, loopback)",
        &mut samples,
    );
    a.shutdown().await?;
    b.shutdown().await?;
    Ok(())
}

async fn tcp_floor(n: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 64];
        while let Ok(k) = s.read(&mut buf).await {
            if k == 0 || s.write_all(&buf[..k]).await.is_err() {
                break;
            }
        }
    });
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut samples = Vec::with_capacity(n);
    let mut buf = [0u8; 8];
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(b"ping1234").await?;
        s.read_exact(&mut buf).await?;
        samples.push(t.elapsed() / 2);
    }
    report(
        "baseline: bare TCP one way (half an echo round trip)",
        &mut samples,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` runs bench targets with `--bench`-less args; keep that quick.
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let messages = env("CAIRN_BENCH_MESSAGES", 1000);
        tcp_floor(messages).await?;
        gossip(messages).await?;
        startup(env("CAIRN_BENCH_STARTS", 50)).await
    })
}
