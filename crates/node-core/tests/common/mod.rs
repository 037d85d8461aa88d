//! Helpers shared by the node tests: nodes on 127.0.0.1, and waiting on events with a deadline.
#![allow(dead_code)]

pub mod files;
pub mod helia;
pub mod kubo;
pub mod plain;
pub mod rogue;

use std::collections::HashSet;
use std::time::Duration;

use cairn_node_core::{Multiaddr, Node, NodeEvent, PeerId, Profile};
use libp2p::multiaddr::Protocol;
use tokio::sync::broadcast;

/// The longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// A node in memory, listening on 127.0.0.1 TCP port 0.
pub async fn node(gossipsub: bool) -> Node {
    Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .gossipsub(gossipsub)
        .build()
        .await
        .expect("node starts")
}

/// The node's TCP address with its `/p2p/` suffix.
pub async fn dial_addr(node: &Node) -> Multiaddr {
    let addr = node
        .listen_addrs()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
        .expect("a TCP listen address");
    addr.with(Protocol::P2p(node.peer_id()))
}

/// Waits for the first event matching `pred`, failing the test after [`WAIT`].
pub async fn wait_for<T>(
    rx: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    mut pred: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(t) = pred(&ev) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("event stream closed waiting for {what}")
                }
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Connects `a` to `b` and waits until each has identified the other.
pub async fn link(a: &Node, b: &Node) {
    let mut ea = a.events();
    let mut eb = b.events();
    let (pa, pb) = (a.peer_id(), b.peer_id());
    assert_eq!(a.connect(dial_addr(b).await).await.unwrap(), pb);
    wait_for(&mut ea, "a identifies b", |e| match e {
        NodeEvent::PeerIdentified { peer_id, .. } if *peer_id == pb => Some(()),
        _ => None,
    })
    .await;
    wait_for(&mut eb, "b identifies a", |e| match e {
        NodeEvent::PeerIdentified { peer_id, .. } if *peer_id == pa => Some(()),
        _ => None,
    })
    .await;
}

/// Polls the node's connected peers every 50 ms until `done` holds, failing after [`WAIT`].
pub async fn poll_peers(node: &Node, what: &str, mut done: impl FnMut(&HashSet<PeerId>) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let peers: HashSet<PeerId> = node
            .peers()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.peer_id)
            .collect();
        if done(&peers) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what} ({} peers)",
            peers.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
