//! `routing/findprovs`, `routing/findpeer`, `routing/provide` (and their `dht/` aliases), and
//! `ping`. Routing answers are Kubo's QueryEvent stream: `{"ID","Type","Responses","Extra"}` with
//! integer types (2 FinalPeer, 3 QueryError, 4 Provider).

use std::time::Duration;

use cairn_blockstore::Cid;
use cairn_node_core::{FetchOptions, Multiaddr, NodeError, PeerId, parse_peer_id};
use futures::StreamExt;
use serde_json::{Value, json};

use super::parse_cid_arg;
use crate::addrs;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

fn event(kind: u8, peer: Option<(&PeerId, &[Multiaddr])>, extra: &str) -> Value {
    json!({
        "ID": "",
        "Type": kind,
        "Responses": peer.map(|(id, known)| json!([{
            "ID": id.to_base58(),
            "Addrs": addrs::transports(known),
        }])),
        "Extra": extra,
    })
}

pub(crate) async fn findprovs(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let cid = parse_cid_arg(req.arg(0, "key")?)?;
    let n = req.int(&["num-providers", "n"], 20)?;
    if n < 1 {
        return Err(ApiError::client(
            "number of providers must be greater than 0",
        ));
    }
    let providers = state.inner.node.find_providers(&cid, n as usize).await?;
    let events = providers.map(|p| Ok(event(4, Some((&p.peer_id, &p.addresses)), "")));
    Ok(Output::Stream(events.boxed()))
}

pub(crate) async fn findpeer(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let peer = parse_peer_id(req.arg(0, "peerID")?)?;
    if peer == state.inner.node.peer_id() {
        return Err(ApiError::command(
            "finding your own node in the DHT is currently not supported",
        ));
    }
    let out = match state.inner.node.find_peer(peer).await {
        Ok(addrs) => vec![Ok(event(2, Some((&peer, &addrs)), ""))],
        Err(e) => vec![
            Ok(event(3, None, &e.to_string())),
            Err(ApiError::command("routing: not found")),
        ],
    };
    Ok(Output::Stream(futures::stream::iter(out).boxed()))
}

/// `routing/provide`: announces CIDs that are stored here; with `recursive`, every block of
/// their DAGs, each of which must be stored (Kubo's `block <cid> not found locally, cannot
/// provide`). The roots are announced before this answers; the rest of a DAG goes to the
/// provider's queue (roots first, as Kubo's provider orders them).
pub(crate) async fn provide(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let recursive = req.flag(&["recursive", "r"], false)?;
    let _verbose = req.flag(&["verbose", "v"], false)?;
    let cids = req
        .args_required("key")?
        .iter()
        .map(|a| parse_cid_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let node = &state.inner.node;
    if !node.provide_config().enabled {
        return Err(ApiError::command("Provide.Enabled is set to 'false'"));
    }
    let not_local =
        |cid: &Cid| ApiError::command(format!("block {cid} not found locally, cannot provide"));
    let mut rest = Vec::new();
    for cid in &cids {
        if !node.has_block(cid).await? {
            return Err(not_local(cid));
        }
        if recursive {
            // An offline walk: it reads only the store and stops at the first missing block.
            let mut walk = node.fetch_dag(*cid, FetchOptions::offline());
            while let Some(step) = walk.next().await {
                match step {
                    Ok(p) if p.cid != *cid => rest.push(p.cid),
                    Ok(_) => {}
                    Err(NodeError::BlockNotFound(missing)) => return Err(not_local(&missing)),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    for cid in &cids {
        node.provide(cid).await?;
    }
    node.announce(rest, false);
    Ok(Output::stream_of(Vec::new()))
}

pub(crate) async fn ping(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let target = req.arg(0, "peer ID")?;
    // Kubo takes a peer id or a multiaddr ending in /p2p/<id>.
    let peer = match cairn_node_core::parse_multiaddr(target) {
        Ok(addr) => {
            let peer = cairn_node_core::peer_id_of(&addr)
                .ok_or_else(|| ApiError::client("multiaddr has no /p2p/ part"))?;
            state.inner.node.add_peer_address(peer, addr).await?;
            peer
        }
        Err(_) => parse_peer_id(target)?,
    };
    let count = req.int(&["count", "n"], 10)?;
    if count <= 0 {
        return Err(ApiError::client("ping count must be greater than 0"));
    }
    if peer == state.inner.node.peer_id() {
        return Err(ApiError::client("can't ping self"));
    }
    let node = state.inner.node.clone();
    let stream = async_stream(node, peer, count as u32);
    Ok(Output::Stream(stream))
}

fn async_stream(
    node: cairn_node_core::Node,
    peer: PeerId,
    count: u32,
) -> futures::stream::BoxStream<'static, Result<Value, ApiError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    super::spawn_producer(tx, |tx| async move {
        let send = |v: Value| {
            let tx = tx.clone();
            async move { tx.send(Ok(v)).await.is_ok() }
        };
        if !send(json!({"Success": true, "Time": 0, "Text": format!("PING {peer}.")})).await {
            return;
        }
        let mut total = Duration::ZERO;
        let mut ok = 0u32;
        for i in 0..count {
            if i > 0 {
                // Kubo pings once a second.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let line = match node.ping(peer).await {
                Ok(rtt) => {
                    total += rtt;
                    ok += 1;
                    json!({"Success": true, "Time": rtt.as_nanos() as u64, "Text": ""})
                }
                Err(e) => json!({"Success": false, "Time": 0, "Text": format!("Ping error: {e}")}),
            };
            if !send(line).await {
                return;
            }
        }
        let last = if ok == 0 {
            json!({"Success": false, "Time": 0, "Text": format!("Ping error: no pings to {peer} succeeded")})
        } else {
            let avg = total / ok;
            json!({"Success": true, "Time": 0, "Text": format!("Average latency: {:.2}ms", avg.as_secs_f64() * 1e3)})
        };
        let _ = send(last).await;
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }).boxed()
}
