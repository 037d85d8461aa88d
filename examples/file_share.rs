//! Sharing a file between two cairn nodes with the embedding API: one node adds a file (Kubo's
//! default UnixFS layout, so the CID is the one `ipfs add` prints), the other, knowing only the
//! first one's address, fetches it by CID over Bitswap and checks it.
//!
//! Both halves in one process, over 127.0.0.1 (nothing leaves the machine):
//!
//!     cargo run --example file_share
//!
//! On two machines of a LAN, mDNS finds the peer, so no address is needed:
//!
//!     machine A: cargo run --release --example file_share -- serve ./video.mp4
//!                (prints the CID and its addresses, then serves until Ctrl-C)
//!     machine B: cargo run --release --example file_share -- fetch <CID> --out video.mp4
//!
//! Across the internet, A and B join the public DHT through Kubo's bootstrap peers (the default
//! config) and B finds A as a provider of the CID; give B A's address to skip the lookup:
//!
//!     machine B: cargo run --release --example file_share -- fetch <CID> /ip4/<A>/tcp/4001/p2p/<id>
//!
//! (`serve` and `fetch` listen on Kubo's default port 4001, TCP and QUIC; open it on A's firewall.)

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cairn::blockstore::{Block, Cid};
use cairn::node::{FetchOptions, Node, Profile};
use futures::StreamExt;
use rust_unixfs::file::adder::FileAdder;
use rust_unixfs::file::visit::IdleFileVisit;
use sha2::Digest;

/// Adds `data` as a UnixFS file with Kubo's defaults (CIDv0, 256 KiB chunks, 174 links) and
/// returns its root CID.
async fn add(node: &Node, data: &[u8]) -> anyhow::Result<Cid> {
    let mut adder = FileAdder::builder()
        .with_cid_version(cid::Version::V0)
        .build();
    let mut blocks = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (out, n) = adder.push(rest);
        blocks.extend(out);
        rest = &rest[n..];
    }
    blocks.extend(adder.finish());
    let mut root = None;
    for (cid, bytes) in blocks {
        let block = Block::new(cid, bytes)?;
        node.put_block(&block).await?; // stored, served over Bitswap, announced in the DHT
        root = Some(cid);
    }
    let root = root.context("an empty import")?;
    node.announce(vec![root], true);
    Ok(root)
}

/// Fetches the file's DAG, then reads the bytes back from the local store.
async fn fetch(node: &Node, root: Cid) -> anyhow::Result<Vec<u8>> {
    let started = Instant::now();
    let mut progress = node.fetch_dag(
        root,
        FetchOptions::with_timeout(Some(Duration::from_secs(600))),
    );
    let mut last = None;
    while let Some(p) = progress.next().await {
        last = Some(p?);
    }
    if let Some(p) = last {
        let secs = started.elapsed().as_secs_f64();
        println!(
            "fetched {} blocks, {} bytes in {secs:.2} s ({:.1} MB/s)",
            p.blocks,
            p.bytes,
            p.bytes as f64 / secs / 1e6
        );
    }
    let store = node.blockstore()?;
    let get = |c: &Cid| -> anyhow::Result<Block> { store.get(c)?.context("a block is missing") };
    let first = get(&root)?;
    let (content, _, _, mut next) = IdleFileVisit::default()
        .start(first.data())
        .map_err(|e| anyhow::anyhow!("{root} is not a UnixFS file: {e}"))?;
    let mut out = content.to_vec();
    let mut cache = None;
    while let Some(walk) = next {
        let link = *walk.pending_links().0;
        let block = get(&link)?;
        let (content, rest) = walk
            .continue_walk(block.data(), &mut cache)
            .map_err(|e| anyhow::anyhow!("reading {root}: {e}"))?;
        out.extend_from_slice(content);
        next = rest;
    }
    Ok(out)
}

fn sha256(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Both halves on 127.0.0.1.
async fn demo() -> anyhow::Result<()> {
    let sharer = Node::builder().profile(Profile::Test).build().await?;
    let fetcher = Node::builder().profile(Profile::Test).build().await?;
    // 16 MiB that does not repeat (xorshift), so no two chunks share a block.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..(16 << 20) / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    let root = add(&sharer, &data).await?;
    println!(
        "sharer {} added {root} ({} bytes)",
        sharer.peer_id(),
        data.len()
    );
    // Either transport works; TCP is the one every IPFS implementation speaks.
    let addr = sharer
        .listen_addrs()
        .await?
        .into_iter()
        .find(|a| a.to_string().contains("/tcp/"))
        .context("a TCP listen address")?
        .with_p2p(sharer.peer_id())
        .map_err(|a| anyhow::anyhow!("address {a} has another peer id"))?;
    fetcher.connect(addr).await?;
    let got = fetch(&fetcher, root).await?;
    if sha256(&got) != sha256(&data) {
        bail!("the fetched file differs");
    }
    println!("fetcher has it: sha256 {} matches", sha256(&got));
    fetcher.shutdown().await?;
    sharer.shutdown().await?;
    Ok(())
}

/// A node on Kubo's default addresses, with mDNS (LAN) and the public bootstrap list (DHT).
async fn network_node() -> anyhow::Result<Node> {
    Ok(Node::builder().mdns(true).build().await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => demo().await,
        Some("serve") => {
            let path = args.get(1).context("usage: file_share serve <file>")?;
            let node = network_node().await?;
            let root = add(&node, &std::fs::read(path)?).await?;
            println!("serving {path} as {root}");
            for a in node.listen_addrs().await? {
                println!("  {a}/p2p/{}", node.peer_id());
            }
            tokio::signal::ctrl_c().await?;
            node.shutdown().await?;
            Ok(())
        }
        Some("fetch") => {
            let root: Cid = args
                .get(1)
                .context("usage: file_share fetch <cid> [addr] [--out file]")?
                .parse()?;
            let node = network_node().await?;
            let mut out = None;
            let mut rest = args[2..].iter();
            while let Some(a) = rest.next() {
                if a == "--out" {
                    out = rest.next().cloned();
                } else {
                    node.connect(a.parse()?).await?;
                }
            }
            let data = fetch(&node, root).await?;
            println!("sha256 {}", sha256(&data));
            if let Some(path) = out {
                std::fs::write(&path, &data)?;
                println!("wrote {path}");
            }
            node.shutdown().await?;
            Ok(())
        }
        Some(other) => bail!("unknown mode {other:?}: use serve or fetch, or nothing for the demo"),
    }
}
