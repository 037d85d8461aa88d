//! cairn-bitswap on its own: two bare libp2p swarms, an in-memory store and a routing stub, no
//! node. A block and a small DAG cross; a want for a block nobody has waits until one peer gets it,
//! then is answered; ledgers and counters add up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_bitswap::{Bitswap, BlockStore, BoxError, Config, Routing};
use cairn_blockstore::{Block, Cid, codec::RAW};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, Swarm, noise, tcp, yamux};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct MemStore(Mutex<HashMap<Cid, Block>>);

impl BlockStore for MemStore {
    fn get(&self, cid: &Cid) -> Result<Option<Block>, BoxError> {
        Ok(self.0.lock().get(cid).cloned())
    }
    fn size(&self, cid: &Cid) -> Result<Option<usize>, BoxError> {
        Ok(self.0.lock().get(cid).map(|b| b.len()))
    }
    fn put_many(&self, blocks: Vec<Block>) -> Result<(), BoxError> {
        let mut m = self.0.lock();
        for b in blocks {
            m.insert(*b.cid(), b);
        }
        Ok(())
    }
}

/// Knows no providers; connections are made by the test.
struct NoRouting;

impl Routing for NoRouting {
    fn find_providers(&self, _: Cid, _: usize) -> BoxStream<'static, PeerId> {
        futures::stream::empty().boxed()
    }
    fn connect(&self, _: PeerId) -> BoxFuture<'static, Result<(), BoxError>> {
        Box::pin(async { Err("no routing".into()) })
    }
    fn disconnect(&self, _: PeerId) {}
}

struct Side {
    bitswap: Bitswap,
    store: Arc<MemStore>,
    /// The other side's peer id.
    peer: PeerId,
}

/// What each test swarm runs: libp2p-stream for Bitswap's outbound streams, and Bitswap's own
/// acceptor for inbound ones.
#[derive(libp2p::swarm::NetworkBehaviour)]
struct Streams {
    stream: libp2p_stream::Behaviour,
    inbound: cairn_bitswap::Inbound,
}

/// Two swarms connected over TCP, each with a Bitswap told about the other.
async fn pair() -> (Side, Side) {
    let build = || -> Swarm<Streams> {
        libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| Streams {
                stream: libp2p_stream::Behaviour::new(),
                inbound: cairn_bitswap::Inbound::new(),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build()
    };
    let (mut a, mut b) = (build(), build());
    a.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = a.select_next_some().await {
            break address;
        }
    };
    let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());
    let side = |swarm: &mut Swarm<Streams>, peer| {
        let store = Arc::new(MemStore::default());
        let bitswap = Bitswap::new(
            Config::default(),
            store.clone(),
            Arc::new(NoRouting),
            swarm.behaviour().stream.new_control(),
            swarm.behaviour_mut().inbound.take_streams().unwrap(),
            CancellationToken::new(),
        )
        .unwrap();
        Side {
            bitswap,
            store,
            peer,
        }
    };
    let (sa, sb) = (side(&mut a, b_id), side(&mut b, a_id));
    b.dial(addr).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            tokio::select! {
                e = a.select_next_some() => drop(e),
                e = b.select_next_some() => if let SwarmEvent::ConnectionEstablished { .. } = e
                    && let Some(tx) = tx.take() { let _ = tx.send(()); },
            }
        }
    });
    rx.await.unwrap();
    sa.bitswap.peer_connected(sa.peer);
    sb.bitswap.peer_connected(sb.peer);
    (sa, sb)
}

#[tokio::test]
async fn blocks_and_dags_cross_between_two_swarms() {
    let (a, b) = pair().await;
    // A single block.
    let block = Block::from_data(RAW, vec![9u8; 300_000]).unwrap();
    a.store.put_many(vec![block.clone()]).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), b.bitswap.get(block.cid()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, block);
    assert!(
        b.store.get(block.cid()).unwrap().is_some(),
        "stored on receipt"
    );

    // A dag-pb node linking two raw leaves, fetched as a DAG.
    let leaves: Vec<Block> = (0..2u8)
        .map(|i| Block::from_data(RAW, vec![i; 1000]).unwrap())
        .collect();
    let node = ipld_dagpb::PbNode {
        links: leaves
            .iter()
            .map(|l| ipld_dagpb::PbLink {
                cid: *l.cid(),
                name: None,
                size: Some(1000),
            })
            .collect(),
        data: None,
    };
    let root = Block::from_data(cairn_blockstore::codec::DAG_PB, node.into_bytes()).unwrap();
    a.store
        .put_many(leaves.iter().cloned().chain([root.clone()]).collect())
        .unwrap();
    let links: cairn_bitswap::LinksFn = Arc::new(|b: &Block| {
        cairn_blockstore::codec::links(b.cid(), b.data()).map_err(|e| e.to_string())
    });
    let progress: Vec<_> = b
        .bitswap
        .session()
        .fetch_dag(*root.cid(), links)
        .collect()
        .await;
    assert_eq!(progress.len(), 3);
    assert_eq!(
        progress.last().unwrap().as_ref().unwrap().bytes,
        root.len() as u64 + 2000
    );

    let ledger = a.bitswap.ledger(a.peer).await.unwrap();
    assert_eq!(ledger.blocks_sent, 4);
    let stat = b.bitswap.stat().await.unwrap();
    assert_eq!(stat.blocks_received - stat.dup_blocks_received, 4);
    assert_eq!(stat.peers, vec![b.peer]);
}

/// Waits (at most 10 s) until `side`'s ledger of the other peer's wants is exactly `cids`.
async fn ledger_becomes(side: &Side, cids: Vec<Cid>, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while side.bitswap.wantlist(Some(side.peer)).await.unwrap() != cids {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect(what);
}

#[tokio::test]
async fn a_want_is_answered_when_the_block_arrives_later() {
    let (a, b) = pair().await;
    let block = Block::from_data(RAW, &b"arrives later"[..]).unwrap();
    let cid = *block.cid();
    let bs = b.bitswap.clone();
    let pending = tokio::spawn(async move { bs.get(&cid).await });
    // A keeps B's want in its ledger until it has the block.
    ledger_becomes(&a, vec![cid], "B's want reaches A's ledger").await;
    assert_eq!(b.bitswap.wantlist(None).await.unwrap(), vec![cid]);
    a.store.put_many(vec![block.clone()]).unwrap();
    a.bitswap.blocks_added(vec![(cid, block.len())]);
    let got = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, block);
}

/// A want whose future is dropped (a timeout, a client gone) leaves the wantlist at once, as
/// Kubo's does when its context is cancelled, and the peer asked gets the cancel: its ledger
/// empties without waiting for a tick or a rebroadcast.
#[tokio::test]
async fn a_dropped_want_leaves_the_wantlist_and_the_peer_gets_a_cancel() {
    let (a, b) = pair().await;
    let cid = *Block::from_data(RAW, &b"nobody has this"[..])
        .unwrap()
        .cid();
    let bs = b.bitswap.clone();
    let pending = tokio::spawn(async move { bs.get(&cid).await });
    ledger_becomes(&a, vec![cid], "B's want reaches A's ledger").await;
    pending.abort();
    assert!(pending.await.unwrap_err().is_cancelled());
    // Asked right after the drop: already gone.
    assert_eq!(b.bitswap.wantlist(None).await.unwrap(), Vec::<Cid>::new());
    ledger_becomes(&a, Vec::new(), "the cancel reaches A").await;
}
