//! In-process multi-node tests on 127.0.0.1: connect and identify, gossipsub delivery, DHT
//! providers across a chain, the connection manager, and the shutdown path.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use cairn_blockstore::{Block, PinMode, codec::RAW};
use cairn_node_core::{
    ConnMgrLimits, Direction, Node, NodeError, NodeEvent, Profile, PubsubMessage, Repo,
    parse_multiaddr,
};
use common::{WAIT, dial_addr, link, node, wait_for};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn connect_identify_and_peer_details() {
    let (a, b) = (node(false).await, node(false).await);
    let mut events = a.events();
    let b_id = b.peer_id();
    a.connect(dial_addr(&b).await).await.unwrap();
    let (agent, protocols) = wait_for(&mut events, "identify", |e| match e {
        NodeEvent::PeerIdentified {
            peer_id,
            agent_version,
            protocols,
        } if *peer_id == b_id => Some((agent_version.clone(), protocols.clone())),
        _ => None,
    })
    .await;
    assert_eq!(agent, format!("cairn/{}", env!("CARGO_PKG_VERSION")));
    for p in ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/ipfs/kad/1.0.0"] {
        assert!(
            protocols.iter().any(|x| x == p),
            "missing {p} in {protocols:?}"
        );
    }
    let peers = a.peers().await.unwrap();
    let info = peers.iter().find(|p| p.peer_id == b_id).expect("b listed");
    assert_eq!(info.direction, Direction::Outbound);
    assert_eq!(info.agent_version.as_deref(), Some(agent.as_str()));
    let back = b.peers().await.unwrap();
    assert_eq!(back[0].direction, Direction::Inbound);

    // Connecting again to a connected peer is immediate; disconnect works once.
    a.connect(dial_addr(&b).await).await.unwrap();
    a.disconnect(b_id).await.unwrap();
    wait_for(&mut events, "disconnect", |e| {
        matches!(e, NodeEvent::PeerDisconnected { .. }).then_some(())
    })
    .await;
    assert!(matches!(
        a.disconnect(b_id).await,
        Err(NodeError::NotConnected(_))
    ));
}

#[tokio::test]
async fn gossipsub_delivers_every_message_among_three_nodes() {
    const TOPIC: &str = "cairn-test";
    let (a, b, c) = (node(true).await, node(true).await, node(true).await);
    // A line: a - b - c. Messages between a and c must be forwarded by b.
    link(&a, &b).await;
    link(&c, &b).await;
    let mut subs = Vec::new();
    let mut b_events = b.events();
    for n in [&a, &b, &c] {
        subs.push(n.subscribe(TOPIC).await.unwrap());
    }
    let mut joined = HashSet::new();
    wait_for(&mut b_events, "a and c subscribe at b", |e| match e {
        NodeEvent::TopicSubscribed { peer_id, .. } => {
            joined.insert(*peer_id);
            (joined.len() == 2).then_some(())
        }
        _ => None,
    })
    .await;
    let [sa, sb, sc] = <[_; 3]>::try_from(subs).unwrap();
    let (mut sa, mut sb, mut sc) = (sa, sb, sc);

    // The mesh forms on gossipsub's heartbeat: probe until a message crosses each way.
    async fn probe(
        from: &cairn_node_core::Node,
        to: &mut cairn_node_core::Subscription,
        tag: &str,
    ) {
        for i in 0..30 {
            let body = format!("probe {tag} {i}");
            from.publish(TOPIC, body.clone()).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(m) = to.next().await {
                    if m.data == body.as_bytes() {
                        return;
                    }
                }
            })
            .await;
            if got.is_ok() {
                return;
            }
        }
        panic!("no probe crossed {tag}");
    }
    probe(&a, &mut sc, "a->c").await;
    probe(&c, &mut sa, "c->a").await;

    for i in 0..100 {
        a.publish(TOPIC, format!("a{i}")).await.unwrap();
        c.publish(TOPIC, format!("c{i}")).await.unwrap();
    }
    async fn collect(sub: &mut cairn_node_core::Subscription, who: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let want = |s: &HashSet<String>| {
            (0..100).all(|i| s.contains(&format!("a{i}")) && s.contains(&format!("c{i}")))
        };
        tokio::time::timeout(WAIT, async {
            while let Some(PubsubMessage { data, .. }) = sub.next().await {
                seen.insert(String::from_utf8_lossy(&data).to_string());
                if want(&seen) {
                    break;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{who} got only {} messages", seen.len()));
        seen
    }
    for (sub, who) in [(&mut sa, "a"), (&mut sb, "b"), (&mut sc, "c")] {
        let seen = collect(sub, who).await;
        assert!(seen.len() >= 200, "{who}: {}", seen.len());
    }
    // Messages carry their author and a seqno.
    c.publish(TOPIC, "signed").await.unwrap();
    let m = loop {
        let m = tokio::time::timeout(WAIT, sa.next())
            .await
            .unwrap()
            .unwrap();
        if m.data == "signed" {
            break m;
        }
    };
    assert_eq!(m.from, Some(c.peer_id()));
    assert!(m.seqno.is_some());
    assert_eq!(m.topics, vec![TOPIC.to_string()]);
    assert_eq!(b.topic_peers(Some(TOPIC.into())).await.unwrap().len(), 2);
    assert_eq!(a.topics().await.unwrap(), vec![TOPIC.to_string()]);
}

#[tokio::test]
async fn pubsub_off_is_a_typed_error() {
    let a = node(false).await;
    assert!(matches!(
        a.subscribe("t").await,
        Err(NodeError::PubsubDisabled)
    ));
    assert!(matches!(
        a.publish("t", "x").await,
        Err(NodeError::PubsubDisabled)
    ));
}

#[tokio::test]
async fn providers_are_found_across_a_chain_of_five() {
    let mut nodes = Vec::new();
    for _ in 0..5 {
        nodes.push(node(false).await);
    }
    for w in nodes.windows(2) {
        link(&w[0], &w[1]).await;
    }
    let block = Block::from_data(RAW, &b"provided at the far end"[..]).unwrap();
    let provider = &nodes[4];
    provider.put_block(&block).await.unwrap();
    provider.provide(block.cid()).await.unwrap();

    // nodes[0] was only told about nodes[1]; everything else it learns through the DHT.
    let finder = &nodes[0];
    let mut found = finder.find_providers(block.cid(), 1).await.unwrap();
    let p = tokio::time::timeout(WAIT, found.next())
        .await
        .expect("in time")
        .expect("a provider");
    assert_eq!(p.peer_id, provider.peer_id());
    assert!(
        tokio::time::timeout(WAIT, found.next())
            .await
            .unwrap()
            .is_none(),
        "stream ends at the limit"
    );
    // And the provider's address is found too.
    let addrs = finder.find_peer(provider.peer_id()).await.unwrap();
    assert!(!addrs.is_empty());
}

#[tokio::test]
async fn provide_with_no_peers_is_kubos_error() {
    let a = node(false).await;
    let block = Block::from_data(RAW, &b"lonely"[..]).unwrap();
    let err = a.provide(block.cid()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "routing: cannot provide, no connected peers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_manager_trims_a_flood_to_low_water() {
    let limits = ConnMgrLimits {
        low_water: 32,
        high_water: 96,
        grace_period: Duration::from_secs(10),
        silence_period: Duration::from_millis(200),
        enabled: true,
    };
    let target = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .conn_mgr(limits)
        .build()
        .await
        .unwrap();
    let addr = dial_addr(&target).await;
    let mut events = target.events();

    // One peer the target dialled itself: protected.
    let friend = node(false).await;
    target.connect(dial_addr(&friend).await).await.unwrap();

    // The flood: bare libp2p swarms that connect and sit, as a burst of clients would.
    let (mut flood, mut batch) = (Vec::new(), Vec::new());
    for i in 0..120 {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| libp2p::ping::Behaviour::default())
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        swarm.dial(addr.clone()).unwrap();
        let (up, is_up) = tokio::sync::oneshot::channel();
        flood.push(tokio::spawn(async move {
            let mut up = Some(up);
            loop {
                if let libp2p::swarm::SwarmEvent::ConnectionEstablished { .. } =
                    swarm.select_next_some().await
                    && let Some(up) = up.take()
                {
                    let _ = up.send(());
                }
            }
        }));
        batch.push(is_up);
        // Eight handshakes at a time: the node refuses more than 16 at once from one IP address.
        if batch.len() == 8 || i == 119 {
            for up in batch.drain(..) {
                up.await.unwrap();
            }
        }
    }

    // `events` was subscribed before the friend connected, so the friend is counted below too.
    let (mut current, mut max, mut ever) = (0usize, 0usize, HashSet::new());
    wait_for(&mut events, "trim to LowWater", |e| {
        match e {
            NodeEvent::PeerConnected { peer_id, .. } => {
                ever.insert(*peer_id);
                current += 1;
            }
            NodeEvent::PeerDisconnected { .. } => current -= 1,
            _ => return None,
        }
        max = max.max(current);
        // A trim leaves LowWater of the old unprotected peers, with the young ones and the
        // protected friend beside them; it runs while the count is above HighWater.
        (ever.len() >= 121 && current <= limits.high_water).then_some(())
    })
    .await;
    assert!(
        max > limits.high_water,
        "the flood went above HighWater ({max})"
    );
    let peers = target.peers().await.unwrap();
    assert!(
        (limits.low_water + 1..=limits.high_water).contains(&peers.len()),
        "{} peers after the trim",
        peers.len()
    );
    assert!(
        peers.iter().any(|p| p.peer_id == friend.peer_id()),
        "the protected peer survived"
    );
}

#[tokio::test]
async fn shutdown_is_one_path_and_calls_after_it_fail_typed() {
    let a = node(true).await;
    let block = Block::from_data(RAW, &b"x"[..]).unwrap();
    let started = std::time::Instant::now();
    a.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!a.is_running());
    assert!(matches!(a.peers().await, Err(NodeError::NodeStopped)));
    assert!(matches!(
        a.put_block(&block).await,
        Err(NodeError::NodeStopped)
    ));
    assert!(matches!(
        a.subscribe("t").await,
        Err(NodeError::NodeStopped)
    ));
    a.shutdown().await.unwrap();

    // Dropping the last handle stops the node too: its event stream closes.
    let b = node(false).await;
    let mut events = b.events();
    drop(b);
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(tokio::sync::broadcast::error::RecvError::Closed) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the node kept running after its last handle was dropped"
    );
}

#[tokio::test]
async fn a_repo_node_keeps_blocks_and_releases_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    Repo::init(dir.path(), &[Profile::Test]).unwrap();
    let block = Block::from_data(RAW, &b"durable"[..]).unwrap();
    let first = Node::builder().repo(dir.path()).build().await.unwrap();
    let id = first.peer_id();
    first.put_block(&block).await.unwrap();
    first.pin(block.cid(), PinMode::Recursive).await.unwrap();
    // The lock is held while it runs.
    let err = Node::builder().repo(dir.path()).build().await.unwrap_err();
    assert!(err.to_string().contains("is locked by process"), "{err}");
    first.shutdown().await.unwrap();

    let second = Node::builder().repo(dir.path()).build().await.unwrap();
    assert_eq!(second.peer_id(), id, "identity comes from the repo");
    assert_eq!(
        second.local_block(block.cid()).await.unwrap().unwrap(),
        block
    );
    assert_eq!(second.gc().await.unwrap().removed.len(), 0);
}

#[tokio::test]
async fn bad_input_is_typed_and_garbage_on_the_wire_does_not_hurt() {
    assert!(matches!(
        parse_multiaddr("/ip4/1.2.3/tcp/1"),
        Err(NodeError::InvalidMultiaddr { .. })
    ));
    let a = node(true).await;
    let b = node(false).await;
    // A dial to the right address but the wrong peer id fails cleanly.
    let mut wrong = dial_addr(&b).await;
    wrong.pop();
    let wrong = wrong.with(libp2p::multiaddr::Protocol::P2p(libp2p::PeerId::random()));
    assert!(matches!(
        a.connect(wrong).await,
        Err(NodeError::Dial { .. })
    ));
    // A bootstrap entry without /p2p/ is refused at build.
    let err = Node::builder()
        .profile(Profile::Test)
        .bootstrap_peers(["/ip4/127.0.0.1/tcp/1".parse().unwrap()])
        .build()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("ending in /p2p/<peer id>"),
        "{err}"
    );

    // Raw garbage, a half handshake and an oversized multistream header at the TCP listener.
    let tcp = dial_addr(&a).await;
    let port = tcp.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::Tcp(p) => Some(p),
        _ => None,
    });
    for payload in [
        vec![0xffu8; 4096],
        b"\x13/multistream/1.0.0\n\x07/noise\n\x00\x00".to_vec(),
        [vec![0x80, 0x80, 0x80, 0x80, 0x0f], vec![b'a'; 1000]].concat(),
        Vec::new(),
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port.unwrap()))
            .await
            .unwrap();
        let _ = s.write_all(&payload).await;
        drop(s);
    }
    // Still serving.
    a.connect(dial_addr(&b).await).await.unwrap();
    assert_eq!(a.peers().await.unwrap().len(), 1);
}
