//! `/api/v0/cairn/events`: a WebSocket client (tokio-tungstenite) sees peer, block, pubsub and
//! log events; the RPC's authorization and Origin rules hold for the upgrade. The slow-client
//! test is in `events_backpressure.rs` (its own process, so its memory is its own).

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use cairn_node_core::LogBus;
use common::Api;
use common::ws::{Ws, command, open, u, until};
use serde_json::json;
use tokio_tungstenite::tungstenite;

/// The process-wide log channel (tracing's subscriber is global to the test binary).
fn logs() -> LogBus {
    static LOGS: OnceLock<LogBus> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::prelude::*;
        let bus = LogBus::new();
        let _ = tracing_subscriber::registry().with(bus.layer()).try_init();
        bus
    })
    .clone()
}

/// A node and its RPC (with the log channel) on port 0.
async fn start() -> Api {
    start_auth(|_| {}).await
}

async fn start_auth(edit: impl FnOnce(&mut cairn_node_core::Config)) -> Api {
    common::start_full(edit, Some(logs())).await
}

#[tokio::test]
async fn peer_events_when_a_second_node_connects() {
    let api = start().await;
    let (mut ws, _) = open(&api, &[]).await.unwrap();
    assert_eq!(
        command(&mut ws, json!({"events": ["peer"]})).await,
        json!({"type": "events_filter", "kinds": ["peer"]})
    );
    let other = common::start().await;
    let addr = format!(
        "{}/p2p/{}",
        api.node.listen_addrs().await.unwrap()[0],
        api.node.peer_id()
    );
    other.node.connect(addr.parse().unwrap()).await.unwrap();
    let them = other.node.peer_id().to_base58();
    let connected = until(&mut ws, "peer_connected", |v| v["type"] == "peer_connected").await;
    assert_eq!(connected["peer"], them);
    assert_eq!(connected["direction"], "inbound");
    assert!(
        connected["address"]
            .as_str()
            .unwrap()
            .starts_with("/ip4/127.0.0.1/")
    );
    let identified = until(&mut ws, "peer_identified", |v| {
        v["type"] == "peer_identified"
    })
    .await;
    assert_eq!(identified["peer"], them);
    assert!(
        identified["agent"].as_str().unwrap().starts_with("cairn/"),
        "{identified}"
    );
    assert!(
        identified["protocols"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/ipfs/bitswap/1.2.0"),
        "{identified}"
    );
    other.node.shutdown().await.unwrap();
    let gone = until(&mut ws, "peer_disconnected", |v| {
        v["type"] == "peer_disconnected"
    })
    .await;
    assert_eq!(gone["peer"], them);
}

#[tokio::test]
async fn block_events_after_block_put_and_add() {
    let api = start().await;
    let (mut ws, _) = open(&api, &[]).await.unwrap();
    command(&mut ws, json!({"events": ["block"]})).await;
    let put = api
        .post_files("/api/v0/block/put", &[b"hello events"])
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let key = put.lines()[0]["Key"].clone();
    let added = until(&mut ws, "block_added (block/put)", |v| {
        v["type"] == "block_added"
    })
    .await;
    assert_eq!(
        added,
        json!({"type": "block_added", "cid": key, "size": 12})
    );

    let add = api
        .post_files("/api/v0/add?cid-version=1", &[b"a file added with add"])
        .await;
    assert_eq!(add.status, 200, "{}", add.text());
    let hash = add.lines().last().unwrap()["Hash"].clone();
    let added = until(&mut ws, "block_added (add)", |v| {
        v["type"] == "block_added" && v["cid"] == hash
    })
    .await;
    assert_eq!(added["size"], 21);
}

#[tokio::test]
async fn bitswap_and_provide_events_between_two_nodes() {
    let api = start().await;
    let other = common::start().await;
    let (mut ws, _) = open(&api, &[]).await.unwrap();
    command(&mut ws, json!({"events": ["block", "bitswap"]})).await;
    let mut other_events = other.node.events();
    let block = cairn_blockstore::Block::from_data(
        cairn_blockstore::codec::RAW,
        &b"fetched over bitswap"[..],
    )
    .unwrap();
    let cid = block.cid().to_string();
    other.node.put_block(&block).await.unwrap();
    let addr = format!(
        "{}/p2p/{}",
        other.node.listen_addrs().await.unwrap()[0],
        other.node.peer_id()
    );
    api.node.connect(addr.parse().unwrap()).await.unwrap();
    let got = api.post(&format!("/api/v0/block/get?arg={cid}")).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(&got.body[..], b"fetched over bitswap");
    let received = until(&mut ws, "bitswap_block_received", |v| {
        v["type"] == "bitswap_block_received"
    })
    .await;
    assert_eq!(
        received,
        json!({"type": "bitswap_block_received", "cid": cid, "from": other.node.peer_id().to_base58(), "size": 20})
    );
    let added = until(&mut ws, "block_added (Bitswap)", |v| {
        v["type"] == "block_added"
    })
    .await;
    assert_eq!(
        added,
        json!({"type": "block_added", "cid": cid, "size": 20})
    );
    // The sender's own bus reports the block it sent.
    let sent = tokio::time::timeout(common::ws::WAIT, async {
        loop {
            if let Ok(cairn_node_core::NodeEvent::BitswapBlockSent { cid, to, size }) =
                other_events.recv().await
            {
                break (cid, to, size);
            }
        }
    })
    .await
    .expect("no bitswap_block_sent on the sender");
    assert_eq!(
        (sent.0.to_string(), sent.1, sent.2),
        (cid.clone(), api.node.peer_id(), 20)
    );
    // `routing/provide` announces it (the other node takes the record).
    let provided = api
        .post(&format!("/api/v0/routing/provide?arg={cid}"))
        .await;
    assert_eq!(provided.status, 200, "{}", provided.text());
    let v = until(&mut ws, "block_provided", |v| v["type"] == "block_provided").await;
    assert_eq!(v, json!({"type": "block_provided", "cid": cid}));
}

#[tokio::test]
async fn pubsub_over_the_socket() {
    let api = start().await;
    let (mut ws, _) = open(&api, &[]).await.unwrap();
    assert_eq!(
        command(
            &mut ws,
            json!({"subscribe": "pubsub", "topic": "chat room"})
        )
        .await,
        json!({"type": "subscribed", "topic": "chat room"})
    );
    let published = api
        .post_files(
            &format!("/api/v0/pubsub/pub?arg={}", u("chat room")),
            &[b"hi over the socket"],
        )
        .await;
    assert_eq!(published.status, 200, "{}", published.text());
    let m = until(&mut ws, "the pubsub message", |v| v["type"] == "pubsub").await;
    assert_eq!(m["topic"], "chat room");
    assert_eq!(m["from"], api.node.peer_id().to_base58());
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(m["data"].as_str().unwrap())
            .unwrap(),
        b"hi over the socket"
    );
    assert_eq!(
        command(
            &mut ws,
            json!({"unsubscribe": "pubsub", "topic": "chat room"})
        )
        .await,
        json!({"type": "unsubscribed", "topic": "chat room"})
    );
    let bad = command(&mut ws, json!({"subscribe": "nonsense"})).await;
    assert_eq!(bad["type"], "error", "{bad}");
}

#[tokio::test]
async fn log_lines_at_the_chosen_level() {
    let api = start().await;
    let (mut debug, _) = open(&api, &[]).await.unwrap();
    let (mut info, _) = open(&api, &[]).await.unwrap();
    for ws in [&mut debug, &mut info] {
        command(ws, json!({"events": []})).await;
    }
    assert_eq!(
        command(&mut debug, json!({"log": "debug"})).await,
        json!({"type": "log_level", "level": "debug"})
    );
    command(&mut info, json!({"log": "info"})).await;
    tracing::debug!(target: "events_test", marker = 1, "a debug marker");
    tracing::info!(target: "events_test", "an info marker");
    let line = until(&mut debug, "the debug marker", |v| {
        v["type"] == "log" && v["target"] == "events_test"
    })
    .await;
    assert_eq!(line["level"], "DEBUG");
    assert_eq!(line["message"], "a debug marker marker=1");
    let line = until(&mut info, "the info marker", |v| {
        v["type"] == "log" && v["target"] == "events_test"
    })
    .await;
    assert_eq!(
        (line["level"].as_str(), line["message"].as_str()),
        (Some("INFO"), Some("an info marker")),
        "the info client must not see the debug line"
    );
    let off = command(&mut debug, json!({"log": "trace"})).await;
    assert_eq!(off["type"], "error", "{off}");
}

fn auth(secret: &str) -> cairn_node_core::config::Authorization {
    cairn_node_core::config::Authorization {
        auth_secret: secret.into(),
        allowed_paths: vec!["/api/v0".into()],
        ..Default::default()
    }
}

fn refused_with(result: Result<(Ws, Option<String>), tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("refused without an HTTP answer: {e}"),
        Ok(_) => panic!("accepted"),
    }
}

#[tokio::test]
async fn authorization_in_the_header_or_a_subprotocol() {
    let api = start_auth(|c| {
        c.api.authorizations = BTreeMap::from([("alice".to_string(), auth("bearer:s3cret"))]);
    })
    .await;
    assert_eq!(refused_with(open(&api, &[]).await), 403);
    assert_eq!(
        refused_with(open(&api, &[("authorization", "Bearer nope")]).await),
        403
    );
    assert_eq!(
        refused_with(
            open(
                &api,
                &[("sec-websocket-protocol", "cairn-events, bearer.nope")]
            )
            .await
        ),
        403
    );
    let (_ws, protocol) = open(&api, &[("authorization", "Bearer s3cret")])
        .await
        .unwrap();
    assert_eq!(protocol, None);
    // A browser's way: the token as a subprotocol; the server echoes the one it chose.
    let (_ws, protocol) = open(
        &api,
        &[("sec-websocket-protocol", "cairn-events, bearer.s3cret")],
    )
    .await
    .unwrap();
    assert_eq!(protocol.as_deref(), Some("cairn-events"));
    let (_ws, protocol) = open(&api, &[("sec-websocket-protocol", "bearer.s3cret")])
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("bearer.s3cret"));
}

#[tokio::test]
async fn origins_are_checked_as_for_the_rpc() {
    let api = start().await;
    assert_eq!(
        refused_with(open(&api, &[("origin", "http://evil.example")]).await),
        403
    );
    let own = format!("http://127.0.0.1:{}", api.port);
    open(&api, &[("origin", &own)]).await.unwrap();
    // Not an upgrade: 400 for GET, 405 for POST.
    let get = api
        .send("GET", "/api/v0/cairn/events", &[], Default::default())
        .await;
    assert_eq!(get.status, 400, "{}", get.text());
    let post = api.post("/api/v0/cairn/events").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
}

/// The daemon's supervisor publishes service state changes on the node's bus; a client that
/// asks for `service` events sees them, failures with their cause.
#[tokio::test]
async fn service_state_changes_reach_the_stream() {
    use cairn_rpc::supervisor::{ServiceState, Services};
    let api = start().await;
    let (mut ws, _) = open(&api, &[]).await.unwrap();
    command(&mut ws, json!({"events": ["service"]})).await;
    let services = Services::new();
    services.publish_to(api.node.clone());
    services.set("metrics /ip4/127.0.0.1/tcp/9", ServiceState::Ok);
    let ok = until(&mut ws, "service ok", |v| v["type"] == "service_state").await;
    assert_eq!(
        ok,
        json!({"type": "service_state", "service": "metrics /ip4/127.0.0.1/tcp/9", "state": "ok"})
    );
    services.fail(
        "metrics /ip4/127.0.0.1/tcp/9",
        "accept: Invalid argument",
        ServiceState::Restarting,
    );
    let failed = until(&mut ws, "service restarting", |v| {
        v["type"] == "service_state" && v["state"] == "restarting"
    })
    .await;
    assert_eq!(failed["error"], "accept: Invalid argument");
    // The same state again is no change: nothing is sent for it.
    services.set("metrics /ip4/127.0.0.1/tcp/9", ServiceState::Restarting);
    services.set("metrics /ip4/127.0.0.1/tcp/9", ServiceState::Ok);
    let back = until(&mut ws, "service ok again", |v| {
        v["type"] == "service_state"
    })
    .await;
    assert_eq!(back["state"], "ok");
    assert!(back.get("error").is_none(), "{back}");
}
