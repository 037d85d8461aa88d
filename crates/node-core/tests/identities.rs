//! Every key type libp2p peers use, between cairn nodes on loopback: a secp256k1, an ECDSA (P-256)
//! and an RSA keyed node each connect to an Ed25519 one over TCP and over QUIC, dialling and being
//! dialled; both sides identify each other (identify carries and checks the public key), kad adds
//! the peer to its routing table, and gossipsub messages signed with each key type verify
//! (the nodes validate strictly, so an unverifiable signature would never be delivered).

mod common;

use std::time::Duration;

use cairn_node_core::repo::{KeyAlgorithm, generate_identity};
use cairn_node_core::{Keypair, Multiaddr, Node, NodeEvent, Profile, Subscription};
use common::wait_for;
use futures::StreamExt;
use libp2p::multiaddr::Protocol;

const TOPIC: &str = "cairn-key-types";

async fn node(key: Keypair) -> Node {
    Node::builder()
        .profile(Profile::Test)
        .keypair(key)
        .listen_addrs([
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
        ])
        .gossipsub(true)
        .build()
        .await
        .expect("node starts")
}

/// The node's address on one transport, with `/p2p/`.
async fn addr_on(node: &Node, quic: bool) -> Multiaddr {
    let addr = node
        .listen_addrs()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::QuicV1)) == quic)
        .expect("a listen address on the transport");
    addr.with(Protocol::P2p(node.peer_id()))
}

/// `dialer` connects to `listener` on the transport; both identify the other; each has the other
/// in its kad routing table.
async fn connect_and_identify(dialer: &Node, listener: &Node, quic: bool, what: &str) {
    let mut ed = dialer.events();
    let mut el = listener.events();
    let (pd, pl) = (dialer.peer_id(), listener.peer_id());
    let got = dialer
        .connect(addr_on(listener, quic).await)
        .await
        .unwrap_or_else(|e| panic!("{what}: dial failed: {e}"));
    assert_eq!(got, pl, "{what}");
    for (events, other, side) in [(&mut ed, pl, "dialer"), (&mut el, pd, "listener")] {
        wait_for(events, &format!("{what}: {side} identifies"), |e| match e {
            NodeEvent::PeerIdentified { peer_id, .. } if *peer_id == other => Some(()),
            _ => None,
        })
        .await;
    }
    // Identify's address reaches kad in the same event-loop turn that emitted the event.
    assert!(
        dialer.routing_table().await.unwrap().contains(&pl),
        "{what}: dialer's kad table"
    );
    assert!(
        listener.routing_table().await.unwrap().contains(&pd),
        "{what}: listener's kad table"
    );
    let peer = dialer
        .peers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.peer_id == pl)
        .expect("connected");
    let on_quic = peer.address.iter().any(|p| matches!(p, Protocol::QuicV1));
    assert_eq!(on_quic, quic, "{what}: connected on {}", peer.address);
}

/// Publishes from `from` until a message arrives at `to` with `from`'s peer id as its author.
async fn signed_message_crosses(from: &Node, to: &mut Subscription, what: &str) {
    for i in 0..30 {
        let body = format!("{what} {i}");
        from.publish(TOPIC, body.clone()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(m) = to.next().await {
                if m.data == body.as_bytes() {
                    return m;
                }
            }
            panic!("{what}: subscription ended");
        })
        .await;
        if let Ok(m) = got {
            assert_eq!(m.from, Some(from.peer_id()), "{what}: author");
            assert!(m.seqno.is_some(), "{what}: signed messages carry a seqno");
            return;
        }
    }
    panic!("{what}: no message crossed");
}

async fn check_key_type(key: impl Fn() -> Keypair, name: &str) {
    for quic in [false, true] {
        let transport = if quic { "QUIC" } else { "TCP" };
        // Outbound from the odd key type, then inbound to it.
        for odd_dials in [true, false] {
            let odd = node(key()).await;
            let ed = node(Keypair::generate_ed25519()).await;
            let what = format!(
                "{name} {} Ed25519 on {transport}",
                if odd_dials { "dials" } else { "is dialled by" }
            );
            if odd_dials {
                connect_and_identify(&odd, &ed, quic, &what).await;
            } else {
                connect_and_identify(&ed, &odd, quic, &what).await;
            }
            let mut ed_events = ed.events();
            let mut sub_odd = odd.subscribe(TOPIC).await.unwrap();
            let mut sub_ed = ed.subscribe(TOPIC).await.unwrap();
            let odd_id = odd.peer_id();
            wait_for(
                &mut ed_events,
                &format!("{what}: subscription"),
                |e| match e {
                    NodeEvent::TopicSubscribed { peer_id, .. } if *peer_id == odd_id => Some(()),
                    _ => None,
                },
            )
            .await;
            signed_message_crosses(&odd, &mut sub_ed, &format!("{what}: {name} signs")).await;
            signed_message_crosses(&ed, &mut sub_odd, &format!("{what}: Ed25519 signs")).await;
            odd.shutdown().await.unwrap();
            ed.shutdown().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secp256k1_peers_connect_identify_and_sign() {
    check_key_type(Keypair::generate_secp256k1, "secp256k1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_peers_connect_identify_and_sign() {
    check_key_type(Keypair::generate_ecdsa, "ECDSA").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_peers_connect_identify_and_sign() {
    // One key for all four pairs: RSA generation is the slow part.
    let (key, _) = generate_identity(KeyAlgorithm::Rsa { bits: 2048 }).unwrap();
    assert!(key.public().to_peer_id().to_base58().starts_with("Qm"));
    check_key_type(|| key.clone(), "RSA").await;
}
