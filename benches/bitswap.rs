//! Bitswap throughput: a 100 MiB file moved between two cairn nodes on loopback, beside three
//! ceilings measured in the same run: raw loopback TCP, one libp2p Noise+Yamux stream, and Kubo to
//! Kubo over Bitswap (two `../shared/compat/kubo-peer` processes), with the receiving node's peak
//! RSS.
//!
//! Run: `cargo bench --bench bitswap` (release). `CAIRN_BENCH_MIB` (default 100) sets the size,
//! `CAIRN_BENCH_RUNS` (default 3) the runs per figure (the median is printed). Kubo is skipped with
//! a note when kubo-peer is not installed (`bash ../shared/compat/kubo-peer/install.sh`).
//!
//! The receiving cairn node runs in a child process (this binary, re-executed with
//! `CAIRN_BENCH_ROLE=receiver`) with an on-disk sled store, so its VmHWM is its own: RSS stays
//! flat when it does not grow with the file. MB/s = 10^6 bytes per second.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cairn::blockstore::{Blockstore, Cid};
use cairn::node::{FetchOptions, Multiaddr, Node, Profile};
use futures::StreamExt;
use support::{content, env, mbps, median, unixfs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

async fn raw_tcp(bytes: usize) -> anyhow::Result<Duration> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while got < bytes {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n;
        }
        anyhow::Ok(got)
    });
    let chunk = vec![7u8; 1 << 20];
    let started = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut sent = 0;
    while sent < bytes {
        s.write_all(&chunk).await?;
        sent += chunk.len();
    }
    let got = reader.await??;
    let took = started.elapsed();
    if got < bytes {
        bail!("raw TCP moved {got} of {bytes} bytes");
    }
    Ok(took)
}

/// One stream over TCP + Noise + Yamux between two bare swarms (the transport cairn uses).
async fn libp2p_stream(bytes: usize) -> anyhow::Result<Duration> {
    use futures::{AsyncReadExt as _, AsyncWriteExt as _};
    use libp2p::{StreamProtocol, noise, swarm::SwarmEvent, tcp, yamux};
    let build = || -> anyhow::Result<libp2p::Swarm<libp2p_stream::Behaviour>> {
        Ok(libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|_| libp2p_stream::Behaviour::new())?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build())
    };
    let proto = StreamProtocol::new("/cairn-bench/1");
    let (mut a, mut b) = (build()?, build()?);
    a.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = a.select_next_some().await {
            break address;
        }
    };
    let a_id = *a.local_peer_id();
    let mut incoming = a.behaviour().new_control().accept(proto.clone())?;
    let mut control = b.behaviour().new_control();
    b.dial(addr.with_p2p(a_id).unwrap())?;
    let drive = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = a.select_next_some() => {}
                _ = b.select_next_some() => {}
            }
        }
    });
    let reader = tokio::spawn(async move {
        let (_, mut s) = incoming.next().await.context("a stream")?;
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        while got < bytes {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n;
        }
        anyhow::Ok(got)
    });
    let mut s = control.open_stream(a_id, proto).await?;
    let chunk = vec![7u8; 1 << 20];
    let started = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        s.write_all(&chunk).await?;
        sent += chunk.len();
    }
    s.flush().await?;
    let got = reader.await??;
    let took = started.elapsed();
    drive.abort();
    if got < bytes {
        bail!("the libp2p stream moved {got} of {bytes} bytes");
    }
    Ok(took)
}

/// The receiving side, in its own process: reads `<addr> <root>` on stdin, fetches the DAG into
/// a sled store in a temporary directory, prints `<seconds> <bytes> <vmhwm_kib>`.
async fn receiver() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse()?])
        .blockstore(Blockstore::open(dir.path().join("blocks"))?)
        .build()
        .await?;
    let idle_kib = vm_hwm_kib();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let addr: Multiaddr = parts.next().context("addr")?.parse()?;
    let root: Cid = parts.next().context("root")?.parse()?;
    node.connect(addr).await?;
    let started = Instant::now();
    let mut fetch = node.fetch_dag(
        root,
        FetchOptions::with_timeout(Some(Duration::from_secs(600))),
    );
    let mut bytes = 0;
    while let Some(p) = fetch.next().await {
        bytes = p?.bytes;
    }
    let took = started.elapsed();
    println!("{} {bytes} {} {idle_kib}", took.as_secs_f64(), vm_hwm_kib());
    node.shutdown().await?;
    Ok(())
}

async fn cairn_to_cairn(bytes: usize, runs: usize) -> anyhow::Result<(Vec<f64>, Vec<(u64, u64)>)> {
    let data = content(0x9E37_79B9_7F4A_7C15, bytes);
    let blocks = unixfs(&data);
    let root = *blocks.last().unwrap().cid();
    let dir = tempfile::tempdir()?;
    let sender = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse()?])
        .blockstore(Blockstore::open(dir.path().join("blocks"))?)
        .build()
        .await?;
    for b in &blocks {
        sender.put_block(b).await?;
    }
    let addr = sender
        .listen_addrs()
        .await?
        .into_iter()
        .next()
        .context("listening")?
        .with_p2p(sender.peer_id())
        .unwrap();
    let (mut speeds, mut rss) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut child = Command::new(std::env::current_exe()?)
            .env("CAIRN_BENCH_ROLE", "receiver")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        writeln!(child.stdin.as_mut().unwrap(), "{addr} {root}")?;
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() != 4 || f[1] as usize != blocks.iter().map(|b| b.len()).sum::<usize>() {
            bail!("receiver said {text:?}");
        }
        speeds.push(bytes as f64 / f[0] / 1e6);
        rss.push((f[3] as u64, f[2] as u64));
    }
    sender.shutdown().await?;
    Ok((speeds, rss))
}

/// Two kubo-peer processes: one adds the file, the other fetches it over Bitswap.
fn kubo_to_kubo(bytes: usize, runs: usize) -> anyhow::Result<Vec<f64>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/compat/kubo-peer");
    let lib = std::env::var("KUBO_PEER_LIB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.join("lib"));
    if !lib.join("libkubo.so").exists() {
        bail!(
            "kubo-peer is not installed (bash {}/install.sh)",
            dir.display()
        );
    }
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), content(0x9E37_79B9_7F4A_7C15, bytes))?;
    struct Peer {
        child: std::process::Child,
        out: std::io::BufReader<std::process::ChildStdout>,
        n: u64,
    }
    impl Peer {
        fn start(script: &std::path::Path) -> anyhow::Result<(Self, serde_json::Value)> {
            let mut child = Command::new("python3")
                .arg(script)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line)?;
            let ready: serde_json::Value = serde_json::from_str(&line)?;
            Ok((Peer { child, out, n: 0 }, ready))
        }
        fn call(&mut self, cmd: serde_json::Value) -> anyhow::Result<serde_json::Value> {
            self.n += 1;
            let mut cmd = cmd;
            cmd["id"] = self.n.into();
            writeln!(self.child.stdin.as_mut().unwrap(), "{cmd}")?;
            loop {
                let mut line = String::new();
                if self.out.read_line(&mut line)? == 0 {
                    bail!("kubo-peer exited");
                }
                let v: serde_json::Value = serde_json::from_str(&line)?;
                if v["id"] == self.n {
                    if v["ok"] != true {
                        bail!("kubo-peer: {}", v["error"]);
                    }
                    return Ok(v["result"].clone());
                }
            }
        }
    }
    impl Drop for Peer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
    let script = dir.join("kubo_peer.py");
    let mut speeds = Vec::new();
    for _ in 0..runs {
        let (mut a, ready) = Peer::start(&script)?;
        let (mut b, _) = Peer::start(&script)?;
        let cid = a.call(serde_json::json!({"cmd": "add", "path": file.path()}))?;
        let addr = format!(
            "{}/p2p/{}",
            ready["addrs"][0].as_str().context("addr")?,
            ready["peerId"].as_str().context("id")?
        );
        b.call(serde_json::json!({"cmd": "connect", "addr": addr}))?;
        let r = b.call(serde_json::json!({"cmd": "fetch", "cid": cid}))?;
        speeds.push(bytes as f64 / r["seconds"].as_f64().context("seconds")? / 1e6);
    }
    Ok(speeds)
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::var("CAIRN_BENCH_ROLE").as_deref() == Ok("receiver") {
        return rt.block_on(receiver());
    }
    let mib = env("CAIRN_BENCH_MIB", 100);
    let runs = env("CAIRN_BENCH_RUNS", 3).max(1);
    let bytes = mib << 20;
    println!("bitswap bench: {mib} MiB, {runs} runs each (medians; MB/s = 10^6 B/s)");
    rt.block_on(async {
        let mut tcp = Vec::new();
        let mut stream = Vec::new();
        for _ in 0..runs {
            tcp.push(mbps(bytes as u64, raw_tcp(bytes).await?));
            stream.push(mbps(bytes as u64, libp2p_stream(bytes).await?));
        }
        let (tcp, stream) = (median(tcp), median(stream));
        println!("raw loopback TCP:          {tcp:8.1} MB/s");
        println!("libp2p Noise+Yamux stream: {stream:8.1} MB/s");
        let (speeds, rss) = cairn_to_cairn(bytes, runs).await?;
        let cairn = median(speeds.clone());
        println!("cairn -> cairn (bitswap):  {cairn:8.1} MB/s  runs {speeds:.1?}");
        for (idle, peak) in &rss {
            println!(
                "  receiver VmHWM: idle {:.1} MB, peak {:.1} MB",
                *idle as f64 * 1024.0 / 1e6,
                *peak as f64 * 1024.0 / 1e6
            );
        }
        println!(
            "  cairn / raw TCP: {:.1}%   cairn / libp2p stream: {:.1}%",
            100.0 * cairn / tcp,
            100.0 * cairn / stream
        );
        match tokio::task::spawn_blocking(move || kubo_to_kubo(bytes, runs)).await? {
            Ok(k) => {
                let kubo = median(k.clone());
                println!("kubo -> kubo (bitswap):    {kubo:8.1} MB/s  runs {k:.1?}");
                println!("  cairn / kubo: {:.2}x", cairn / kubo);
            }
            Err(e) => println!("kubo -> kubo: skipped ({e})"),
        }
        anyhow::Ok(())
    })
}
