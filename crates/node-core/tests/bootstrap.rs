//! Bootstrap with real nodes on 127.0.0.1: retry with backoff until a late peer appears,
//! re-bootstrap after losing peers, bad and unresolvable entries, and pubsub peer discovery.

mod common;

use std::time::{Duration, Instant};

use cairn_bootstrap::{BootstrapConfig, BootstrapPhase};
use cairn_node_core::{Config, Keypair, Multiaddr, Node, NodeEvent, Profile, Repo};
use common::{WAIT, dial_addr, link, wait_for};

/// A port that was free a moment ago (the late peer will listen there).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tcp(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

#[tokio::test]
async fn retries_with_backoff_until_a_late_bootstrap_peer_appears() {
    let b_key = Keypair::generate_ed25519();
    let b_id = b_key.public().to_peer_id();
    let port = free_port();
    let b_addr = tcp(port).with_p2p(b_id).unwrap();

    let a = Node::builder()
        .profile(Profile::Test)
        .listen_addrs([tcp(0)])
        .bootstrap_peers([b_addr])
        .build()
        .await
        .unwrap();
    let mut events = a.events();
    // B is down: A's rounds fail and back off (rounds at about 0, 1 and 3 s).
    let until = wait_for(&mut events, "three failed rounds", |e| match e {
        NodeEvent::BootstrapPhaseChanged(BootstrapPhase::BackingOff {
            until,
            failed_rounds,
        }) if *failed_rounds >= 3 => Some(*until),
        _ => None,
    })
    .await;
    let status = a.bootstrap_status().await.unwrap();
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains(&b_id.to_string()),
        "{status:?}"
    );
    assert!(status.failures >= 3);

    // B starts on the address A knows, about 3 s after A.
    let b = Node::builder()
        .profile(Profile::Test)
        .keypair(b_key)
        .listen_addrs([tcp(port)])
        .build()
        .await
        .unwrap();
    let b_started = Instant::now();
    let interval = until.saturating_duration_since(b_started);
    wait_for(&mut events, "A connects to B", |e| match e {
        NodeEvent::PeerConnected { peer_id, .. } if *peer_id == b_id => Some(()),
        _ => None,
    })
    .await;
    let took = b_started.elapsed();
    assert!(
        took <= interval + Duration::from_secs(2),
        "connected after {took:?}; the backoff interval left was {interval:?}"
    );
    let status = a.bootstrap_status().await.unwrap();
    assert_eq!(status.connected_bootstrap_peers, vec![b_id]);
    assert!(status.successes >= 1);
    // The routing table holds B (kad bootstrap ran as soon as B answered).
    let deadline = Instant::now() + WAIT;
    while !a.routing_table().await.unwrap().contains(&b_id) {
        assert!(
            Instant::now() < deadline,
            "B never entered A's routing table"
        );
        tokio::task::yield_now().await;
    }
    drop(b);
}

#[tokio::test]
async fn rebootstraps_by_itself_after_losing_its_peers() {
    let b = common::node(false).await;
    let b_id = b.peer_id();
    let a = Node::builder()
        .profile(Profile::Test)
        .listen_addrs([tcp(0)])
        .bootstrap_peers([dial_addr(&b).await])
        .build()
        .await
        .unwrap();
    let mut events = a.events();
    let connected = |e: &NodeEvent| {
        matches!(e, NodeEvent::PeerConnected { peer_id, .. } if *peer_id == b_id).then_some(())
    };
    wait_for(&mut events, "first connection", connected).await;
    let attempts = a.bootstrap_status().await.unwrap().attempts;
    // B drops A: A is below the threshold and redials on its own, at once (not after 30 s).
    b.disconnect(a.peer_id()).await.unwrap();
    wait_for(&mut events, "disconnect", |e| {
        matches!(e, NodeEvent::PeerDisconnected { .. }).then_some(())
    })
    .await;
    let t = Instant::now();
    wait_for(&mut events, "reconnection", connected).await;
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert!(a.bootstrap_status().await.unwrap().attempts > attempts);
}

#[tokio::test]
async fn bad_entries_and_unresolvable_dnsaddr_leave_the_node_running_with_the_rest() {
    let good = common::node(false).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config: Config = Repo::init(dir.path(), &[Profile::Test]).unwrap();
    let dead = libp2p::PeerId::random();
    config.bootstrap = vec![
        "garbage".into(),
        "/ip4/127.0.0.1/tcp/4001".into(), // no /p2p/
        format!("/dnsaddr/bootstrap.invalid/p2p/{dead}"),
        dial_addr(&good).await.to_string(),
    ];
    cairn_node_core::repo::write_config(dir.path(), &config).unwrap();
    // No name servers: the dnsaddr lookup fails at once and sends nothing anywhere.
    let no_dns = libp2p::dns::ResolverConfig::from_name_servers(Vec::new());
    let node = Node::builder()
        .repo(dir.path())
        .dns_config(no_dns, libp2p::dns::ResolverOpts::default())
        .build()
        .await
        .expect("bad entries do not stop the node");
    let mut events = node.events();
    let good_id = good.peer_id();
    wait_for(&mut events, "the valid entry connects", |e| {
        matches!(e, NodeEvent::PeerConnected { peer_id, .. } if *peer_id == good_id).then_some(())
    })
    .await;
    // The dnsaddr failure is reported, not fatal.
    let deadline = Instant::now() + WAIT;
    loop {
        let status = node.bootstrap_status().await.unwrap();
        if status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(&dead.to_string()))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no error recorded for the dnsaddr entry: {status:?}"
        );
        wait_for(&mut events, "a bootstrap phase change", |e| {
            matches!(e, NodeEvent::BootstrapPhaseChanged(_)).then_some(())
        })
        .await;
    }
    assert!(node.is_running());
}

#[tokio::test]
async fn backup_peers_are_dialled_when_the_list_fails() {
    let backup = common::node(false).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Repo::init(dir.path(), &[Profile::Test]).unwrap();
    config.bootstrap = vec![
        tcp(free_port())
            .with_p2p(libp2p::PeerId::random())
            .unwrap()
            .to_string(),
    ];
    cairn_node_core::repo::write_config(dir.path(), &config).unwrap();
    std::fs::write(
        dir.path().join("temp_bootstrap_peers"),
        serde_json::to_vec(&[dial_addr(&backup).await.to_string()]).unwrap(),
    )
    .unwrap();
    let node = Node::builder()
        .repo(dir.path())
        .bootstrap_config(
            BootstrapConfig::default().with_connection_timeout(Duration::from_secs(2)),
        )
        .build()
        .await
        .unwrap();
    let mut events = node.events();
    let id = backup.peer_id();
    wait_for(&mut events, "the backup peer connects", |e| {
        matches!(e, NodeEvent::PeerConnected { peer_id, .. } if *peer_id == id).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_discovery_finds_a_peer_two_hops_away() {
    async fn start() -> Node {
        Node::builder()
            .profile(Profile::Test)
            .listen_addrs([tcp(0)])
            .pubsub_discovery(Duration::from_millis(300))
            .build()
            .await
            .unwrap()
    }
    let (a, b, c) = (start().await, start().await, start().await);
    link(&a, &b).await;
    link(&c, &b).await;
    let mut events = c.events();
    let a_id = a.peer_id();
    // C knows only B; A's announcements reach C through B, and C dials A.
    wait_for(&mut events, "C connects to A", |e| {
        matches!(e, NodeEvent::PeerConnected { peer_id, .. } if *peer_id == a_id).then_some(())
    })
    .await;
}
