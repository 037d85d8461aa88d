//! Interop with a real Kubo 0.22 node (../shared/compat/kubo-peer, go-libp2p 0.29,
//! go-libp2p-kad-dht 0.24): RSA identities both ways (identify, ping, the DHT), and provider
//! records both ways. Needs python3 with cffi and cryptography and the kubo-python library
//! (`scripts/test.sh` installs it); `CAIRN_SKIP_KUBO=1` skips with a message instead of failing.

mod common;

use cairn_node_core::repo::{KeyAlgorithm, generate_identity};
use cairn_node_core::{Keypair, Node, NodeEvent, PeerId, Profile, parse_multiaddr, parse_peer_id};
use common::kubo::Kubo;
use common::{dial_addr, wait_for};
use serde_json::json;

async fn cairn(key: Keypair) -> Node {
    Node::builder()
        .profile(Profile::Test)
        .keypair(key)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .build()
        .await
        .unwrap()
}

/// Waits until `node` has identified `peer`; returns its agent version and protocols.
async fn identified(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    peer: PeerId,
    what: &str,
) -> (String, Vec<String>) {
    wait_for(events, what, |e| match e {
        NodeEvent::PeerIdentified {
            peer_id,
            agent_version,
            protocols,
        } if *peer_id == peer => Some((agent_version.clone(), protocols.clone())),
        _ => None,
    })
    .await
}

/// An RSA-keyed Kubo (`Qm...` id, like six of the seven default bootstrap peers): an RSA-keyed
/// cairn dials it, and it dials an Ed25519 cairn. Both directions complete the Noise handshake
/// (which carries and verifies the RSA key), identify and ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_kubo_connects_both_ways_with_identify_and_ping() -> anyhow::Result<()> {
    let Some(mut kubo) = Kubo::start_or_skip(true).await else {
        return Ok(());
    };
    assert!(kubo.peer_id.starts_with("Qm"), "{}", kubo.peer_id);
    let kubo_id = parse_peer_id(&kubo.peer_id)?;

    // Outbound, RSA to RSA.
    let (rsa_key, _) = generate_identity(KeyAlgorithm::Rsa { bits: 2048 })?;
    let a = cairn(rsa_key).await;
    let mut ea = a.events();
    assert_eq!(a.connect(parse_multiaddr(&kubo.addr)?).await?, kubo_id);
    let (agent, protocols) = identified(&mut ea, kubo_id, "cairn identifies RSA Kubo").await;
    assert!(agent.starts_with("kubo/0.22"), "{agent}");
    assert!(
        protocols.iter().any(|p| p == "/ipfs/id/1.0.0"),
        "{protocols:?}"
    );
    a.ping(kubo_id).await?;

    // Inbound: Kubo dials an Ed25519 cairn.
    let b = cairn(Keypair::generate_ed25519()).await;
    let mut eb = b.events();
    kubo.call("connect", json!({"addr": dial_addr(&b).await.to_string()}))
        .await?;
    identified(
        &mut eb,
        kubo_id,
        "cairn identifies the Kubo that dialled it",
    )
    .await;
    b.ping(kubo_id).await?;
    let kubo_peers = kubo.peers().await?;
    for n in [&a, &b] {
        assert!(
            kubo_peers.contains(&n.peer_id().to_base58()),
            "Kubo lists {} among {kubo_peers:?}",
            n.peer_id()
        );
    }
    kubo.stop().await;
    Ok(())
}
