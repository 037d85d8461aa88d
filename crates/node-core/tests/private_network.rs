//! Private networks: a shared `swarm.key` and a custom bootstrap list. Nodes with the key connect,
//! gossip and find providers; a node with another key or none cannot connect, and both sides log
//! why. Kubo's public list is refused in private mode; so is a missing key with LIBP2P_FORCE_PNET.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_blockstore::{Block, codec::RAW};
use cairn_node_core::{Multiaddr, Node, NodeError, NodeEvent, Profile, Repo};
use common::{WAIT, dial_addr, wait_for};
use futures::StreamExt;
use libp2p::pnet::PreSharedKey;

/// Collects every log line of this test binary, to check what the nodes say.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

fn logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("cairn_node_core=info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
    .clone()
}

fn tcp0() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

async fn private(key: Option<PreSharedKey>, bootstrap: Vec<Multiaddr>) -> Node {
    let mut b = Node::builder()
        .profile(Profile::Test)
        .listen_addrs([tcp0(), "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()])
        .bootstrap_peers(bootstrap)
        .gossipsub(true);
    if let Some(k) = key {
        b = b.swarm_key(k);
    }
    b.build().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_nodes_with_the_key_connect_gossip_and_find_providers() {
    let logs = logs();
    let key = PreSharedKey::new([0x42; 32]);
    let other = PreSharedKey::new([0x24; 32]);

    let p1 = private(Some(key), Vec::new()).await;
    let addrs = p1.listen_addrs().await.unwrap();
    assert!(
        addrs.iter().all(|a| !a.to_string().contains("quic")),
        "no QUIC in a private network: {addrs:?}"
    );
    let p1_addr = dial_addr(&p1).await;
    let mut p1_events = p1.events();
    let p2 = private(Some(key), vec![p1_addr.clone()]).await;
    let p2_id = p2.peer_id();
    wait_for(&mut p1_events, "p2 joins through its bootstrap list", |e| {
        matches!(e, NodeEvent::PeerIdentified { peer_id, .. } if *peer_id == p2_id).then_some(())
    })
    .await;

    // Gossip between the two.
    let mut s2 = p2.subscribe("private").await.unwrap();
    let _s1 = p1.subscribe("private").await.unwrap();
    let mut crossed = false;
    for i in 0..30 {
        p1.publish("private", format!("m{i}")).await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), s2.next()).await {
            assert_eq!(m.from, Some(p1.peer_id()));
            crossed = true;
            break;
        }
    }
    assert!(crossed, "no message crossed the private network");

    // Providers.
    let block = Block::from_data(RAW, &b"private data"[..]).unwrap();
    p1.put_block(&block).await.unwrap();
    p1.provide(block.cid()).await.unwrap();
    let mut found = p2.find_providers(block.cid(), 1).await.unwrap();
    let p = tokio::time::timeout(WAIT, found.next())
        .await
        .unwrap()
        .expect("a provider");
    assert_eq!(p.peer_id, p1.peer_id());

    // Another key, and no key: neither connects to either node, and they receive nothing. A
    // mismatched handshake cannot fail fast (each side reads noise and waits for the upgrade
    // timeout), so the four dials run at once.
    let outsiders = [
        private(Some(other), Vec::new()).await,
        private(None, Vec::new()).await,
    ];
    let mut subs = Vec::new();
    for o in &outsiders {
        subs.push(o.subscribe("private").await.unwrap());
    }
    let p2_addr = dial_addr(&p2).await;
    let dials = futures::future::join_all(
        outsiders
            .iter()
            .flat_map(|o| [o.connect(p1_addr.clone()), o.connect(p2_addr.clone())]),
    )
    .await;
    for (i, r) in dials.into_iter().enumerate() {
        assert!(matches!(r, Err(NodeError::Dial { .. })), "dial {i}: {r:?}");
    }
    p1.publish("private", "secret").await.unwrap();
    for (o, sub) in outsiders.iter().zip(&mut subs) {
        assert!(
            tokio::time::timeout(Duration::from_secs(1), sub.next())
                .await
                .is_err(),
            "an outsider received a private message"
        );
        assert!(o.peers().await.unwrap().is_empty());
    }
    let peers: Vec<_> = p1
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.peer_id)
        .collect();
    assert_eq!(peers, vec![p2_id], "p1 is connected to p2 only");

    // Both sides said why.
    let text = logs.text();
    assert!(text.contains("Swarm key fingerprint: "), "{text}");
    assert!(
        text.contains("incoming connection failed"),
        "the private node explains: {text}"
    );
    assert!(
        text.contains("outgoing connection failed"),
        "the dialling side explains: {text}"
    );
}

#[tokio::test]
async fn private_mode_refuses_public_bootstrap_and_force_pnet_needs_a_key() {
    let key = PreSharedKey::new([1; 32]);
    let public: Vec<Multiaddr> = cairn_bootstrap::DEFAULT_BOOTSTRAP
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let err = Node::builder()
        .profile(Profile::Test)
        .swarm_key(key)
        .bootstrap_peers(public)
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::PrivateNetwork(_)), "{err}");
    assert!(
        err.to_string().contains("replace them with your own"),
        "{err}"
    );

    let err = Node::builder()
        .profile(Profile::Test)
        .force_private_network(true)
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("LIBP2P_FORCE_PNET"), "{err}");
}

#[tokio::test]
async fn a_malformed_swarm_key_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    Repo::init(dir.path(), &[Profile::Test]).unwrap();
    std::fs::write(
        dir.path().join("swarm.key"),
        "/key/swarm/psk/1.0.0/\n/base16/\nabc\n",
    )
    .unwrap();
    let err = Node::builder().repo(dir.path()).build().await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("swarm.key") && msg.contains("64 hex digits, found 3"),
        "{msg}"
    );
    // A well-formed key in the repo turns private mode on.
    std::fs::write(
        dir.path().join("swarm.key"),
        cairn_bootstrap::format_swarm_key(&[9; 32]),
    )
    .unwrap();
    let node = Node::builder().repo(dir.path()).build().await.unwrap();
    assert!(
        node.listen_addrs()
            .await
            .unwrap()
            .iter()
            .all(|a| !a.to_string().contains("quic"))
    );
}
