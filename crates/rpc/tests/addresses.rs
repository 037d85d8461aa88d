//! Issue 12 item 3: every multiaddr the RPC returns has Kubo's shape. A connection dialled with
//! `/p2p/<id>` (as bootstrap and `swarm connect` dial) used to show `Addr` with the peer id, so
//! the CLI printed `/ip4/…/tcp/N/p2p/ID/p2p/ID`; routing answers listed an address twice.

mod common;

use std::collections::HashSet;

use common::start;
use serde_json::Value;

/// The strings of a JSON array, asserting each is present once and has no `/p2p/` component.
fn transport_list(v: &Value) -> Vec<String> {
    let list: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    for a in &list {
        assert!(!a.contains("/p2p/"), "{a} in {list:?}");
    }
    assert_eq!(
        list.iter().collect::<HashSet<_>>().len(),
        list.len(),
        "{list:?}"
    );
    list
}

#[tokio::test]
async fn addresses_carry_no_peer_id_or_exactly_one_and_appear_once() {
    let (a, b) = (start().await, start().await);
    let b_id = b.node.peer_id().to_base58();
    let b_listen = b.node.listen_addrs().await.unwrap()[0].to_string();
    // Identify runs after the connection is up: wait for a's event before reading its view.
    let mut events = a.node.events();
    // An outbound dial to a `/p2p/` address, as bootstrap makes.
    let connect = a
        .post(&format!("/api/v0/swarm/connect?arg={b_listen}/p2p/{b_id}"))
        .await;
    assert_eq!(connect.status, 200, "{}", connect.text());
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(cairn_node_core::NodeEvent::PeerIdentified { peer_id, .. })
                    if peer_id == b.node.peer_id() =>
                {
                    break;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await
    .expect("b identified within 30 s");

    let peers = a.post("/api/v0/swarm/peers?verbose=true").await.json();
    let p = &peers["Peers"][0];
    assert_eq!(p["Peer"], b_id.as_str());
    assert_eq!(p["Direction"], 2);
    // Kubo's `Addr` is the transport address: what the CLI prints is `<Addr>/p2p/<Peer>`.
    assert_eq!(p["Addr"], b_listen.as_str());
    transport_list(&p["Identify"]["Addresses"]);

    let addrs = a.post("/api/v0/swarm/addrs").await.json();
    let of_b = transport_list(&addrs["Addrs"][&b_id]);
    assert!(of_b.contains(&b_listen), "{of_b:?}");

    let findpeer = a
        .post(&format!("/api/v0/routing/findpeer?arg={b_id}"))
        .await
        .lines();
    assert_eq!(findpeer[0]["Type"], 2, "{findpeer:?}");
    let found = transport_list(&findpeer[0]["Responses"][0]["Addrs"]);
    assert!(found.contains(&b_listen), "{found:?}");

    let cid = b
        .post_files("/api/v0/block/put", &[b"addressed once"])
        .await
        .lines()[0]["Key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        b.post(&format!("/api/v0/routing/provide?arg={cid}"))
            .await
            .status,
        200
    );
    let provs = a
        .post(&format!(
            "/api/v0/routing/findprovs?arg={cid}&num-providers=1"
        ))
        .await
        .lines();
    let provider = provs
        .iter()
        .find(|e| e["Type"] == 4)
        .unwrap_or_else(|| panic!("{provs:?}"));
    assert_eq!(provider["Responses"][0]["ID"], b_id.as_str());
    transport_list(&provider["Responses"][0]["Addrs"]);

    // Peer addresses: exactly one `/p2p/<id>` each, each once (Kubo's `AddrInfoToP2pAddrs`).
    for (id, api) in [(&b_id, &a), (&b_id, &b)] {
        let answer = api.post(&format!("/api/v0/id?arg={id}")).await.json();
        let list: Vec<&str> = answer["Addresses"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(!list.is_empty());
        for addr in &list {
            assert_eq!(addr.matches("/p2p/").count(), 1, "{addr}");
            assert!(addr.ends_with(&format!("/p2p/{id}")), "{addr}");
        }
        assert_eq!(list.iter().collect::<HashSet<_>>().len(), list.len());
        assert!(
            list.contains(&format!("{b_listen}/p2p/{b_id}").as_str()),
            "{list:?}"
        );
    }
    let local = a.post("/api/v0/swarm/addrs/local?id=true").await.json();
    for addr in local["Strings"].as_array().unwrap() {
        assert_eq!(addr.as_str().unwrap().matches("/p2p/").count(), 1, "{addr}");
    }
    transport_list(&a.post("/api/v0/swarm/addrs/local").await.json()["Strings"]);
    transport_list(&a.post("/api/v0/swarm/addrs/listen").await.json()["Strings"]);
}
