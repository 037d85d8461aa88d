//! The two DHTs between cairn nodes: a provide goes out on both the WAN (`/ipfs/kad/1.0.0`) and
//! the LAN (`/ipfs/lan/kad/1.0.0`) DHT, the peer stores the record on each, and a provider lookup
//! that hears of the same provider from both reports it once. (Kubo's side of the two DHTs, and
//! its check that a peer answers FIND_NODE for its own id, are tested in kubo_interop.rs.)

mod common;

use std::collections::HashSet;

use cairn_blockstore::{Block, codec::RAW};
use cairn_node_core::NodeEvent;
use common::{WAIT, link, node, wait_for};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provide_reaches_both_dhts_and_lookups_report_each_provider_once() {
    let (a, b) = (node(false).await, node(false).await);
    link(&a, &b).await;
    let mut eb = b.events();
    let block = Block::from_data(RAW, &b"on both DHTs"[..]).unwrap();
    a.put_block(&block).await.unwrap();
    a.provide(block.cid()).await.unwrap();

    // b stores a's record once per DHT.
    let key = block.cid().hash().to_bytes();
    let mut dhts = HashSet::new();
    wait_for(&mut eb, "a's record on both of b's DHTs", |e| match e {
        NodeEvent::ProviderRecordStored {
            key: k,
            provider,
            lan,
        } if *k == key => {
            assert_eq!(*provider, a.peer_id());
            dhts.insert(*lan);
            (dhts.len() == 2).then_some(())
        }
        _ => None,
    })
    .await;

    // b knows a from both DHTs' stores (and a answers on both); the stream names a once and ends.
    let found: Vec<_> = tokio::time::timeout(
        WAIT,
        b.find_providers(block.cid(), 10).await.unwrap().collect(),
    )
    .await
    .expect("the lookup ends when both DHTs' queries end");
    let ids: Vec<_> = found.iter().map(|p| p.peer_id).collect();
    assert_eq!(ids, vec![a.peer_id()]);
    assert!(
        !found[0].addresses.is_empty(),
        "a connected provider has addresses"
    );

    // find_peer runs on both as well; a connected peer answers from the connection.
    assert!(!b.find_peer(a.peer_id()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_on_an_empty_node_ends_with_nothing() {
    let a = node(false).await;
    let block = Block::from_data(RAW, &b"nobody has this"[..]).unwrap();
    let found: Vec<_> = tokio::time::timeout(
        WAIT,
        a.find_providers(block.cid(), 10).await.unwrap().collect(),
    )
    .await
    .expect("both queries end at once with empty tables");
    assert!(found.is_empty());
}

/// A node on the memory transport, whose addresses are neither private nor loopback.
async fn memory_node() -> (cairn_node_core::Node, libp2p::Multiaddr) {
    let node = cairn_node_core::Node::builder()
        .profile(cairn_node_core::config::Profile::Test)
        .memory_transport(true)
        .mdns(false)
        .build()
        .await
        .expect("node starts");
    let addr = node
        .listen_addrs()
        .await
        .unwrap()
        .into_iter()
        .find(|a| {
            a.iter()
                .any(|p| matches!(p, libp2p::multiaddr::Protocol::Memory(_)))
        })
        .expect("a memory listen address")
        .with(libp2p::multiaddr::Protocol::P2p(node.peer_id()));
    (node, addr)
}

/// Polls `table` until it holds `peer`, failing after [`WAIT`].
async fn wait_in_table<F, Fut>(what: &str, peer: libp2p::PeerId, table: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<libp2p::PeerId>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !table().await.contains(&peer) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Kubo's LAN DHT keeps only peers seen on private or loopback addresses
/// (go-libp2p-kad-dht's `PrivateRoutingTableFilter`). rust-libp2p's kad would put every peer it
/// dialled into the LAN table too, which doubled the bootstrap work of a 200-node join
/// (BENCHMARKS.md "DHT at scale"); this fails if it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lan_table_takes_only_peers_on_lan_addresses() {
    // Loopback TCP is a LAN address: each node's LAN table takes the other.
    let (a, b) = (node(false).await, node(false).await);
    link(&a, &b).await;
    wait_in_table("b in a's LAN table", b.peer_id(), || async {
        a.lan_routing_table().await.unwrap()
    })
    .await;
    wait_in_table("a in b's LAN table", a.peer_id(), || async {
        b.lan_routing_table().await.unwrap()
    })
    .await;

    // The memory transport has no IP address: the WAN tables take the peer, the LAN ones do not.
    let ((c, _), (d, d_addr)) = (memory_node().await, memory_node().await);
    let mut ec = c.events();
    assert_eq!(c.connect(d_addr).await.unwrap(), d.peer_id());
    wait_for(&mut ec, "c identifies d", |e| match e {
        NodeEvent::PeerIdentified { peer_id, .. } if *peer_id == d.peer_id() => Some(()),
        _ => None,
    })
    .await;
    // c dialled d: kad puts d into c's WAN table when d confirms the protocol, the moment it
    // would have put it into the LAN table too.
    wait_in_table("d in c's WAN table", d.peer_id(), || async {
        c.routing_table().await.unwrap()
    })
    .await;
    // A WAN lookup answered by d over the same connection: its answer comes after the LAN
    // protocol's confirmation on that connection, so by now an insertion would have happened.
    c.closest_peers(b"after the confirmations".to_vec())
        .await
        .unwrap();
    assert!(
        !c.lan_routing_table().await.unwrap().contains(&d.peer_id()),
        "a peer without a LAN address entered the LAN table"
    );
    assert!(d.lan_routing_table().await.unwrap().is_empty());
}
