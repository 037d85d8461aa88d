//! The connection manager keeps the DHT's peers: when it trims, a peer in the routing table
//! outlasts peers the node has no use for, even when the table peer is the newest connection
//! (go-libp2p-kad-dht tags routing-table peers for go-libp2p's connection manager, and protects
//! those of its two farthest buckets; Kubo trims by those tags).
//!
//! A node with `LowWater` 1 and `HighWater` 2 first gets two bare libp2p peers (no DHT), then a
//! cairn peer that enters its routing table: three peers, one over `HighWater`. Trimming closes the
//! newest first among peers of equal value, so before routing-table peers had a value it closed
//! the cairn peer; now it closes bare peers and keeps the cairn one.
//!
//! Run: `cargo test -p cairn-node-core --test connmgr_dht`.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use cairn_node_core::{ConnMgrLimits, Node, PeerId, Profile};
use common::plain::spawn_peer;
use common::{WAIT, dial_addr, link, poll_peers as poll};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_keeps_the_routing_table_peer_over_newer_valueless_ones() {
    let node = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .conn_mgr(ConnMgrLimits {
            low_water: 1,
            high_water: 2,
            grace_period: Duration::from_secs(1),
            silence_period: Duration::from_millis(500),
            enabled: true,
        })
        .build()
        .await
        .unwrap();
    let addr = dial_addr(&node).await;

    // Two bare peers first: at two peers the node is not over HighWater, so nothing is trimmed.
    let (first, _first_task) = spawn_peer(addr.clone());
    let (second, _second_task) = spawn_peer(addr.clone());
    poll(&node, "both bare peers connect", |peers| {
        peers.contains(&first) && peers.contains(&second)
    })
    .await;

    // Then a cairn peer, newer than both, which the node puts in its routing table.
    let dht_peer = common::node(false).await;
    link(&dht_peer, &node).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !node
        .routing_table()
        .await
        .unwrap()
        .contains(&dht_peer.peer_id())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cairn peer never entered the routing table"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Three peers, HighWater 2: once all are past the 1 s grace period, a trim closes bare peers.
    poll(&node, "a bare peer is trimmed", |peers| {
        !peers.contains(&first) || !peers.contains(&second)
    })
    .await;
    let peers = peer_set(&node).await;
    assert!(
        peers.contains(&dht_peer.peer_id()),
        "the trim closed the routing-table peer and kept {} bare peer(s)",
        [first, second].iter().filter(|p| peers.contains(p)).count()
    );
    assert!(peers.len() <= 2, "still over HighWater: {peers:?}");
}

async fn peer_set(node: &Node) -> HashSet<PeerId> {
    node.peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.peer_id)
        .collect()
}
