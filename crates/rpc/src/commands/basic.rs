//! `id`, `version`, `shutdown`.

use base64::Engine as _;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::addrs;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

/// The repo format version cairn reports (its own; Kubo's repos are not cairn's).
pub(crate) const REPO_VERSION: &str = "1";

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub(crate) fn version(req: &CommandRequest) -> Result<Output, ApiError> {
    for flag in [&["number", "n"][..], &["commit"], &["repo"], &["all"]] {
        req.flag(flag, false)?;
    }
    Ok(Output::Once(json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Commit": "",
        "Repo": REPO_VERSION,
        "System": format!("{}/{}", go_arch(), std::env::consts::OS),
        "Golang": "rust",
    })))
}

pub(crate) async fn id(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let node = &state.inner.node;
    let me = node.peer_id();
    let target = match req.args.first() {
        Some(a) => cairn_node_core::parse_peer_id(a)?,
        None => me,
    };
    if target == me {
        let mine: Vec<_> = node
            .listen_addrs()
            .await?
            .into_iter()
            .chain(node.external_addrs().await?)
            .collect();
        let addrs = addrs::with_peer_sorted(&mine, &me);
        let key = node.public_key().encode_protobuf();
        let mut protocols = node.local_protocols();
        protocols.sort();
        return Ok(Output::Once(json!({
            "ID": me.to_base58(),
            "PublicKey": base64::engine::general_purpose::STANDARD.encode(key),
            "Addresses": addrs,
            "AgentVersion": cairn_node_core::agent_version(),
            "Protocols": protocols,
        })));
    }
    // Another peer: what identify told us if connected, else its addresses from the DHT.
    let peers = node.peers().await?;
    let public_key = public_key_of(&target);
    if let Some(p) = peers.iter().find(|p| p.peer_id == target) {
        // Kubo's `printPeer`: each address once, with the peer's `/p2p/<id>`, sorted.
        let addrs = addrs::with_peer_sorted(&p.listen_addrs, &target);
        let mut protocols = p.protocols.clone();
        protocols.sort();
        return Ok(Output::Once(json!({
            "ID": target.to_base58(),
            "PublicKey": public_key,
            "Addresses": if addrs.is_empty() { Value::Null } else { json!(addrs) },
            "AgentVersion": p.agent_version.clone().unwrap_or_default(),
            "Protocols": if protocols.is_empty() { Value::Null } else { json!(protocols) },
        })));
    }
    let found = node.find_peer(target).await?;
    Ok(Output::Once(json!({
        "ID": target.to_base58(),
        "PublicKey": public_key,
        "Addresses": addrs::with_peer_sorted(&found, &target),
        "AgentVersion": "",
        "Protocols": Value::Null,
    })))
}

/// The public key inlined in an Ed25519 peer id, base64 (empty for hashed ids).
fn public_key_of(peer: &libp2p::PeerId) -> String {
    let mh = peer.as_ref();
    if mh.code() != 0 {
        return String::new();
    }
    libp2p::identity::PublicKey::try_decode_protobuf(mh.digest())
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k.encode_protobuf()))
        .unwrap_or_default()
}

/// `diag/healthy` (Kubo 0.42, for container healthchecks): fails with `daemon is shutting down`
/// once shutdown has begun, even while the RPC still answers; fails when the node (swarm, store)
/// has stopped; else `"ok"`. Kubo also fetches a built-in CID through its DAG pipeline; here the
/// store being open stands for that pipeline.
pub(crate) fn diag_healthy(state: &ApiState) -> Result<Output, ApiError> {
    if state.inner.shutdown.is_cancelled() {
        return Err(ApiError::command("daemon is shutting down"));
    }
    state
        .inner
        .node
        .blockstore()
        .map_err(|e| ApiError::command(format!("probe: {e}")))?;
    Ok(Output::Once(json!("ok")))
}

/// Answers, then trips the shutdown token once the (empty) response has been sent: Kubo's users
/// see `EOF` because Kubo closes first; here the client gets a complete 200.
pub(crate) fn shutdown(state: &ApiState) -> Result<Output, ApiError> {
    if state.inner.shutdown.is_cancelled() {
        return Err(ApiError::client("daemon not running"));
    }
    struct TripOnDrop(tokio_util::sync::CancellationToken);
    impl Drop for TripOnDrop {
        fn drop(&mut self) {
            tracing::info!("shutdown requested over the RPC");
            self.0.cancel();
        }
    }
    let guard = TripOnDrop(state.inner.shutdown.clone());
    // The stream ends at once; it is dropped once hyper has written the response's end.
    let body = futures::stream::empty::<Result<Value, ApiError>>().map(move |v| {
        let _ = &guard;
        v
    });
    Ok(Output::Stream(body.boxed()))
}
