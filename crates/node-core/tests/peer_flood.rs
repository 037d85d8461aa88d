//! A steady inbound flood of 120 real libp2p peers (identify + ping over TCP+Noise+Yamux) against a
//! node with `LowWater` 10, `HighWater` 20, a 1 s grace period and a hard cap of 40 established
//! connections, while a protected cairn peer fetches blocks over Bitswap and pings, and an older
//! unprotected peer just stays connected.
//!
//! It checks that the hard cap holds, that the connection manager trims while the flood is still
//! arriving, that it closes no peer younger than the grace period and neither the protected peer
//! nor the peer connected before the flood, that the count settles under `HighWater`, and that
//! every fetch and ping of the protected peer succeeded. The earlier rule, which counted young and
//! protected peers against `LowWater`, closed the peer connected before the flood here: with nine
//! flooders in their grace period it closed every older peer to make room for them.
//!
//! Run: `cargo test -p cairn-node-core --test peer_flood`.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cairn_blockstore::{Block, codec::RAW};
use cairn_node_core::{ConnMgrLimits, FetchOptions, Node, PeerId, Profile};
use common::plain::spawn_peer;
use common::{WAIT, dial_addr, link, poll_peers as poll};

const LOW_WATER: usize = 10;
const HIGH_WATER: usize = 20;
const HARD_LIMIT: u32 = 40;
const GRACE: Duration = Duration::from_secs(1);
const FLOODERS: usize = 120;
/// Between two flooders: 25 a second, so about 25 are always in their 1 s grace period, more
/// than `LOW_WATER`.
const PACE: Duration = Duration::from_millis(40);

/// What the sampler saw of the node's peers.
#[derive(Default)]
struct Seen {
    max_peers: usize,
    /// Each peer ever seen: when the node says it connected, and the first sample without it.
    peers: HashMap<PeerId, (SystemTime, Option<SystemTime>)>,
    /// Peers the node had closed while flooders were still arriving.
    closed_during_flood: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flood_is_trimmed_and_existing_peers_keep_working() {
    let node = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .conn_mgr(ConnMgrLimits {
            low_water: LOW_WATER,
            high_water: HIGH_WATER,
            grace_period: GRACE,
            silence_period: Duration::from_millis(500),
            enabled: true,
        })
        .max_connections(HARD_LIMIT)
        .build()
        .await
        .unwrap();
    let addr = dial_addr(&node).await;
    let blocks: Vec<Block> = (0..500u32)
        .map(|i| Block::from_data(RAW, [i.to_le_bytes().as_slice(), &[7; 1020]].concat()).unwrap())
        .collect();
    for b in &blocks {
        node.put_block(b).await.unwrap();
    }

    // A protected cairn peer doing real work, and an unprotected peer older than every flooder.
    let worker = common::node(false).await;
    link(&worker, &node).await;
    node.protect(worker.peer_id(), true).await.unwrap();
    let (elder, _elder_task) = spawn_peer(addr.clone());
    poll(&node, "the elder peer connects", |peers| {
        peers.contains(&elder)
    })
    .await;

    let flooding = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sampler = {
        let (node, flooding, seen) = (node.clone(), flooding.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let peers = node.peers().await.unwrap();
                let now = SystemTime::now();
                {
                    let mut s = seen.lock().unwrap();
                    s.max_peers = s.max_peers.max(peers.len());
                    let during = flooding.load(Ordering::SeqCst);
                    let current: HashMap<PeerId, SystemTime> = peers
                        .iter()
                        .map(|p| (p.peer_id, p.connected_since))
                        .collect();
                    for (id, since) in &current {
                        s.peers.entry(*id).or_insert((*since, None));
                    }
                    let mut newly_closed = 0;
                    for (id, (_, gone)) in s.peers.iter_mut() {
                        if gone.is_none() && !current.contains_key(id) {
                            *gone = Some(now);
                            newly_closed += 1;
                        }
                    }
                    if during {
                        s.closed_during_flood += newly_closed;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // The worker fetches a new block and pings, over and over, until the flood has settled.
    let (fetched, pinged) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let working = Arc::new(AtomicBool::new(true));
    let work = {
        let (worker, node_id, cids) = (
            worker.clone(),
            node.peer_id(),
            blocks.iter().map(|b| *b.cid()).collect::<Vec<_>>(),
        );
        let (fetched, pinged, working) = (fetched.clone(), pinged.clone(), working.clone());
        tokio::spawn(async move {
            let opts = FetchOptions::with_timeout(Some(WAIT));
            for cid in cids {
                if !working.load(Ordering::SeqCst) {
                    break;
                }
                let block = worker.get_block_with(&cid, opts).await.expect("fetch");
                assert_eq!(block.cid(), &cid);
                fetched.fetch_add(1, Ordering::SeqCst);
                worker.ping(node_id).await.expect("ping");
                pinged.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let mut flooders = Vec::new();
    for _ in 0..FLOODERS {
        flooders.push(spawn_peer(addr.clone()));
        tokio::time::sleep(PACE).await;
    }
    flooding.store(false, Ordering::SeqCst);
    let fetched_during = fetched.load(Ordering::SeqCst);

    // Once every flooder has aged past the grace period, a trim brings the count under HighWater.
    poll(&node, "the count settles under HighWater", |peers| {
        peers.len() <= HIGH_WATER
    })
    .await;
    working.store(false, Ordering::SeqCst);
    work.await
        .expect("every fetch and ping of the worker succeeded");
    sampler.abort();

    let s = std::mem::take(&mut *seen.lock().unwrap());
    println!(
        "peak {} peers; {} closed during the flood; worker: {} fetches during the flood, {} in all, {} pings",
        s.max_peers,
        s.closed_during_flood,
        fetched_during,
        fetched.load(Ordering::SeqCst),
        pinged.load(Ordering::SeqCst),
    );
    assert!(
        s.max_peers <= HARD_LIMIT as usize,
        "{} peers at once, above the hard limit {HARD_LIMIT}",
        s.max_peers
    );
    assert!(
        s.closed_during_flood > 0,
        "the connection manager trimmed nothing while the flood kept arriving"
    );
    for (id, (since, gone)) in &s.peers {
        if let Some(gone) = gone {
            // `gone` is at or after the close, so this cannot fail for a peer closed when old.
            let age = gone.duration_since(*since).unwrap_or_default();
            assert!(age >= GRACE, "{id} was closed {age:?} after it connected");
        }
    }
    assert!(
        fetched_during > 0,
        "the worker fetched nothing during the flood"
    );
    let peers = node.peers().await.unwrap();
    let ids: Vec<PeerId> = peers.iter().map(|p| p.peer_id).collect();
    assert!(ids.contains(&worker.peer_id()), "the protected peer stays");
    assert!(ids.contains(&elder), "the oldest unprotected peer stays");

    // After the flood the worker still fetches and pings.
    let late = Block::from_data(RAW, b"after the flood".to_vec()).unwrap();
    node.put_block(&late).await.unwrap();
    worker
        .get_block_with(late.cid(), FetchOptions::with_timeout(Some(WAIT)))
        .await
        .unwrap();
    worker.ping(node.peer_id()).await.unwrap();
    drop(flooders);
}
