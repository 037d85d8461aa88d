//! Interop with a real Kubo 0.22 node (../shared/compat/kubo-peer, go-libp2p 0.29,
//! go-libp2p-kad-dht 0.24): RSA identities both ways (identify, ping, the DHT), and provider
//! records both ways. Needs python3 with cffi and cryptography and the kubo-python library
//! (`scripts/test.sh` installs it); `CAIRN_SKIP_KUBO=1` skips with a message instead of failing.

mod common;

use std::time::Duration;

use anyhow::Context as _;
use cairn_blockstore::{Block, codec::RAW};
use cairn_node_core::dual_dht::LAN_KAD_PROTOCOL;
use cairn_node_core::repo::{KeyAlgorithm, generate_identity};
use cairn_node_core::{Keypair, Node, NodeEvent, PeerId, Profile, parse_multiaddr, parse_peer_id};
use cid::Cid;
use common::kubo::Kubo;
use common::{dial_addr, wait_for};
use futures::StreamExt;
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

    // The DHT, cairn through Kubo: `a` knows only Kubo, and finds `b` through Kubo's answer.
    let b_addrs = retry("cairn finds a peer through Kubo's DHT", || async {
        a.find_peer(b.peer_id()).await.map_err(anyhow::Error::from)
    })
    .await;
    let b_listen = b.listen_addrs().await?[0].to_string();
    assert!(
        b_addrs.iter().any(|a| a.to_string().starts_with(&b_listen)),
        "{b_addrs:?}"
    );

    // The DHT, Kubo through cairn: `c` is connected only to `b`; Kubo finds it by asking `b`.
    let c = cairn(Keypair::generate_ed25519()).await;
    common::link(&c, &b).await;
    let c_addr = c.listen_addrs().await?[0].to_string();
    assert!(!kubo.peers().await?.contains(&c.peer_id().to_base58()));
    let found = kubo
        .call(
            "findpeer",
            json!({"peer": c.peer_id().to_base58(), "timeout": 20}),
        )
        .await?;
    // Kubo learned c's address only from b's answer (its lookup may then dial c itself).
    assert!(found.to_string().contains(&c_addr), "Kubo found {found}");
    kubo.stop().await;
    Ok(())
}

/// Runs `f` until it succeeds, for at most [`common::WAIT`]: for state another process reaches
/// on its own schedule (Kubo adds a peer to its routing table after identify, outside our view).
async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        match f().await {
            Ok(t) => return t,
            Err(e) if tokio::time::Instant::now() >= deadline => panic!("{what}: {e:#}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Kubo adds a file; Kubo's provider record reaches cairn over the LAN DHT (Kubo announces
/// there because its WAN table holds no loopback peers), cairn's `find_providers` finds Kubo with
/// its address, and cairn still answers from its own store after Kubo is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_provides_and_cairn_finds_it() -> anyhow::Result<()> {
    kubo_provides(false).await
}

/// The same with an RSA-keyed Kubo (`Qm...`), as the public bootstrap peers are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_kubo_provides_and_cairn_finds_it() -> anyhow::Result<()> {
    kubo_provides(true).await
}

async fn kubo_provides(rsa: bool) -> anyhow::Result<()> {
    let Some(mut kubo) = Kubo::start_or_skip(rsa).await else {
        return Ok(());
    };
    let kubo_id = parse_peer_id(&kubo.peer_id)?;
    let a = cairn(Keypair::generate_ed25519()).await;
    let mut ea = a.events();
    a.connect(parse_multiaddr(&kubo.addr)?).await?;
    let (_, protocols) = identified(&mut ea, kubo_id, "cairn identifies Kubo").await;
    assert!(
        protocols.iter().any(|p| p == LAN_KAD_PROTOCOL.as_ref()),
        "Kubo serves its LAN DHT: {protocols:?}"
    );

    let text = format!("provided by Kubo {:?}", std::time::SystemTime::now());
    let cid: Cid = kubo
        .call("add", json!({"data": text}))
        .await?
        .as_str()
        .context("cid")?
        .parse()?;
    let key = cid.hash().to_bytes();
    let lan = wait_for(
        &mut ea,
        "Kubo's provider record stored at cairn",
        |e| match e {
            NodeEvent::ProviderRecordStored {
                key: k,
                provider,
                lan,
            } if *k == key && *provider == kubo_id => Some(*lan),
            _ => None,
        },
    )
    .await;
    assert!(lan, "Kubo announced over its LAN DHT");

    let first = |node: Node| async move {
        let mut found = node.find_providers(&cid, 10).await?;
        let p = tokio::time::timeout(common::WAIT, found.next())
            .await
            .context("find_providers timed out")?
            .context("no provider")?;
        anyhow::Ok(p)
    };
    let p = first(a.clone()).await?;
    assert_eq!(p.peer_id, kubo_id);
    let kubo_tcp = parse_multiaddr(kubo.addr.split("/p2p/").next().unwrap())?;
    assert!(p.addresses.contains(&kubo_tcp), "{:?}", p.addresses);

    // Kubo gone: the record is cairn's own now.
    kubo.stop().await;
    let p = first(a.clone()).await?;
    assert_eq!(p.peer_id, kubo_id);
    Ok(())
}

/// cairn provides a block; its record reaches Kubo (over Kubo's LAN DHT, the only one Kubo
/// serves on loopback). Shown without Bitswap: the providing node shuts down, and a second cairn
/// node connected only to Kubo still finds it as the provider, so the answer came from Kubo's
/// provider store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_provides_and_kubo_serves_the_record() -> anyhow::Result<()> {
    cairn_provides(false).await
}

/// The same with an RSA-keyed Kubo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_provides_and_rsa_kubo_serves_the_record() -> anyhow::Result<()> {
    cairn_provides(true).await
}

async fn cairn_provides(rsa: bool) -> anyhow::Result<()> {
    let Some(kubo) = Kubo::start_or_skip(rsa).await else {
        return Ok(());
    };
    let kubo_id = parse_peer_id(&kubo.peer_id)?;
    let a = cairn(Keypair::generate_ed25519()).await;
    let mut ea = a.events();
    a.connect(parse_multiaddr(&kubo.addr)?).await?;
    identified(&mut ea, kubo_id, "cairn identifies Kubo").await;

    let block = Block::from_data(
        RAW,
        format!("provided by cairn {:?}", std::time::SystemTime::now()),
    )?;
    a.put_block(&block).await?;
    a.provide(block.cid()).await?;
    let a_id = a.peer_id();
    let a_addr = a.listen_addrs().await?[0].clone();
    let cid = *block.cid();

    // `c` knows only Kubo. A provider lookup from it finds `a` (through Kubo, or by asking `a`,
    // which Kubo names as a closer peer) ...
    let c = cairn(Keypair::generate_ed25519()).await;
    c.connect(parse_multiaddr(&kubo.addr)?).await?;
    let find_a = || {
        let c = c.clone();
        async move {
            let mut found = c.find_providers(&cid, 10).await?;
            while let Some(p) = tokio::time::timeout(common::WAIT, found.next()).await? {
                if p.peer_id == a_id {
                    return Ok(p);
                }
            }
            anyhow::bail!("cairn's provider record not found")
        }
    };
    retry("c finds a as the provider", find_a).await;
    // ... and once `a` is gone, only Kubo's provider store can still name it. (`provide` returns
    // when the ADD_PROVIDER messages are queued, not delivered: the lookup above is what gives
    // them time to arrive before `a` closes its connection.)
    a.shutdown().await?;
    let p = retry("Kubo answers with cairn's provider record", find_a).await;
    // With the addresses cairn put in the record (Kubo's answer carries them), so a fetcher can
    // dial the provider.
    let a_listen = a_addr.to_string();
    assert!(
        p.addresses
            .iter()
            .any(|x| x.to_string().starts_with(&a_listen)),
        "{:?}",
        p.addresses
    );
    assert_eq!(p.peer_id, a_id);
    kubo.stop().await;
    Ok(())
}
