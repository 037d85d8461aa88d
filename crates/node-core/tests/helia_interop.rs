//! Interop with a js-libp2p/Helia peer (../shared/compat/helia-peer): identify, gossipsub both
//! ways, and the DHT (its FIND_NODE and GET_PROVIDERS through cairn; cairn finding its provider
//! record). Needs Node.js and `npm ci --ignore-scripts` in the helia-peer folder (scripts/test.sh).

mod common;

use std::time::Duration;

use cairn_blockstore::{Block, codec::RAW};
use cairn_node_core::{Node, NodeEvent, Profile, parse_multiaddr, parse_peer_id};
use common::helia::Helia;
use common::{WAIT, dial_addr, wait_for};
use futures::StreamExt;
use serde_json::json;

async fn cairn() -> Node {
    Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .gossipsub(true)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helia_interop() -> anyhow::Result<()> {
    let node = cairn().await;
    let mut helia = Helia::start().await?;
    let helia_id = parse_peer_id(&helia.peer_id)?;
    let mut events = node.events();

    // cairn dials helia; both identify each other.
    node.connect(parse_multiaddr(&helia.addr)?).await?;
    let agent = wait_for(&mut events, "cairn identifies helia", |e| match e {
        NodeEvent::PeerIdentified {
            peer_id,
            agent_version,
            ..
        } if *peer_id == helia_id => Some(agent_version.clone()),
        _ => None,
    })
    .await;
    assert!(agent.starts_with("helia/"), "{agent}");
    let seen = helia
        .call(
            "identify",
            json!({"addr": dial_addr(&node).await.to_string()}),
        )
        .await?;
    let their_agent = seen["agentVersion"].as_str().unwrap_or_default();
    assert!(
        their_agent.starts_with("cairn/"),
        "helia saw agent {their_agent}"
    );
    let protocols: Vec<&str> = seen["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    for p in [
        "/ipfs/id/1.0.0",
        "/ipfs/ping/1.0.0",
        "/ipfs/kad/1.0.0",
        "/meshsub/1.1.0",
    ] {
        assert!(
            protocols.contains(&p),
            "helia does not see {p} in {protocols:?}"
        );
    }

    // Gossipsub, both directions.
    const TOPIC: &str = "cairn-helia";
    let mut sub = node.subscribe(TOPIC).await?;
    helia.call("subscribe", json!({"topic": TOPIC})).await?;
    wait_for(&mut events, "helia joins the topic", |e| match e {
        NodeEvent::TopicSubscribed { peer_id, .. } if *peer_id == helia_id => Some(()),
        _ => None,
    })
    .await;
    let mut crossed = false;
    for i in 0..20 {
        let text = format!("from cairn {i}");
        node.publish(TOPIC, text.clone()).await?;
        let got = helia
            .wait_event(Duration::from_millis(500), |v| {
                v["event"] == "message" && v["data"] == json!(text)
            })
            .await;
        if let Ok(m) = got {
            assert_eq!(
                m["from"],
                json!(node.peer_id().to_base58()),
                "signed by cairn"
            );
            assert_eq!(m["topic"], json!(TOPIC));
            crossed = true;
            break;
        }
    }
    assert!(crossed, "no cairn message reached helia");
    let mut crossed = false;
    for i in 0..20 {
        let text = format!("from helia {i}");
        helia
            .call("publish", json!({"topic": TOPIC, "data": text}))
            .await?;
        if let Ok(m) = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                let m = sub.next().await.expect("subscription open");
                if m.data == text.as_bytes() {
                    return m;
                }
            }
        })
        .await
        {
            assert_eq!(m.from, Some(helia_id));
            crossed = true;
            break;
        }
    }
    assert!(crossed, "no helia message reached cairn");

    // DHT: helia's FIND_NODE through cairn is answered.
    let closest = helia
        .call("closest-peers", json!({"key": node.peer_id().to_base58()}))
        .await?;
    let responders: Vec<String> = serde_json::from_value(closest["responses"].clone())?;
    assert!(
        responders.contains(&node.peer_id().to_base58()),
        "cairn did not answer FIND_NODE: {closest}"
    );

    // helia's GET_PROVIDERS finds cairn as the provider of a cairn block.
    let block = Block::from_data(RAW, &b"provided by cairn for helia"[..])?;
    node.put_block(&block).await?;
    node.provide(block.cid()).await?;
    let found = helia
        .call("find-providers", json!({"key": block.cid().to_string()}))
        .await?;
    let ids: Vec<String> = found["found"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_str().map(String::from))
        .collect();
    assert!(
        ids.contains(&node.peer_id().to_base58()),
        "helia did not find cairn as provider: {found}"
    );

    // cairn finds helia's provider record.
    let added = helia
        .call("add", json!({"data": "provided by helia for cairn"}))
        .await?;
    let cid = cairn_blockstore::parse_cid_str(added["cid"].as_str().unwrap())?;
    helia
        .call("provide", json!({"cid": cid.to_string()}))
        .await?;
    let mut providers = node.find_providers(&cid, 1).await?;
    let p = tokio::time::timeout(WAIT, providers.next())
        .await?
        .expect("a provider");
    assert_eq!(p.peer_id, helia_id);

    helia.stop().await;
    node.shutdown().await?;
    Ok(())
}
