//! `swarm/*` and `bootstrap/*` (plus cairn's own `cairn/bootstrap/status`).

use std::collections::BTreeMap;

use cairn_bootstrap::{BootstrapList, BootstrapPeer, BootstrapPhase, DEFAULT_BOOTSTRAP};
use cairn_node_core::{Direction, parse_multiaddr, peer_id_of};
use serde_json::{Value, json};

use super::{go_duration, phase_name, save_config};
use crate::addrs;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

pub(crate) async fn peers(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let verbose = req.flag(&["verbose", "v"], false)?;
    let latency = verbose || req.flag(&["latency"], false)?;
    let direction = verbose || req.flag(&["direction"], false)?;
    let identify = verbose || req.flag(&["identify"], false)?;
    let _streams = req.flag(&["streams"], false)?;
    let mut peers = state.inner.node.peers().await?;
    peers.sort_by_key(|p| addrs::transport(&p.address).to_string());
    if peers.is_empty() {
        return Ok(Output::Once(json!({"Peers": null})));
    }
    let list: Vec<Value> = peers
        .into_iter()
        .map(|p| {
            let mut entry = json!({
                "Addr": addrs::transport(&p.address).to_string(),
                "Peer": p.peer_id.to_base58(),
                "Identify": {"ID": "", "PublicKey": "", "Addresses": null, "AgentVersion": "", "Protocols": null},
            });
            if identify {
                let addrs = addrs::transports(&p.listen_addrs);
                entry["Identify"] = json!({
                    "ID": p.peer_id.to_base58(),
                    "PublicKey": "",
                    "Addresses": if addrs.is_empty() { Value::Null } else { json!(addrs) },
                    "AgentVersion": p.agent_version.unwrap_or_default(),
                    "Protocols": if p.protocols.is_empty() { Value::Null } else { json!(p.protocols) },
                });
            }
            if latency {
                entry["Latency"] = json!(p.latency.map(go_duration).unwrap_or_else(|| "n/a".into()));
            }
            if direction {
                entry["Direction"] = json!(match p.direction {
                    Direction::Inbound => 1,
                    Direction::Outbound => 2,
                });
            }
            entry
        })
        .collect();
    Ok(Output::Once(json!({"Peers": list})))
}

/// A `swarm connect/disconnect` argument: a multiaddr that names its peer with `/p2p/<id>`.
fn peer_address(arg: &str) -> Result<(libp2p::Multiaddr, libp2p::PeerId), ApiError> {
    let addr = parse_multiaddr(arg)?;
    let peer = peer_id_of(&addr).ok_or_else(|| {
        ApiError::client(format!(
            "invalid peer address {arg:?}: it must end in /p2p/<peer id>"
        ))
    })?;
    Ok((addr, peer))
}

pub(crate) async fn connect(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let mut lines = Vec::new();
    for arg in req.args_required("address")? {
        let (addr, peer) = peer_address(arg)?;
        if req.offline() {
            return Err(ApiError::command(format!(
                "connect {peer} failure: {}",
                super::ERR_OFFLINE
            )));
        }
        match state.inner.node.connect(addr).await {
            Ok(_) => lines.push(format!("connect {peer} success")),
            Err(e) => return Err(ApiError::command(format!("connect {peer} failure: {e}"))),
        }
    }
    Ok(Output::Once(json!({"Strings": lines})))
}

pub(crate) async fn disconnect(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let mut lines = Vec::new();
    for arg in req.args_required("address")? {
        let (_, peer) = peer_address(arg)?;
        if req.offline() {
            lines.push(format!("disconnect {peer} failure: {}", super::ERR_OFFLINE));
            continue;
        }
        lines.push(match state.inner.node.disconnect(peer).await {
            Ok(()) => format!("disconnect {peer} success"),
            Err(e) => format!("disconnect {peer} failure: {e}"),
        });
    }
    Ok(Output::Once(json!({"Strings": lines})))
}

pub(crate) async fn addrs(state: &ApiState) -> Result<Output, ApiError> {
    let mut map = BTreeMap::new();
    for p in state.inner.node.peers().await? {
        let mut list = addrs::transports(&p.listen_addrs);
        if list.is_empty() {
            list = addrs::transports([&p.address]);
        }
        map.insert(p.peer_id.to_base58(), list);
    }
    Ok(Output::Once(json!({"Addrs": map})))
}

pub(crate) async fn addrs_local(
    state: &ApiState,
    req: &CommandRequest,
) -> Result<Output, ApiError> {
    let with_id = req.flag(&["id"], false)?;
    let node = &state.inner.node;
    let me = node.peer_id();
    let mut addrs: Vec<String> = node
        .listen_addrs()
        .await?
        .into_iter()
        .chain(node.external_addrs().await?)
        .map(|a| {
            if with_id {
                addrs::with_peer(&a, &me)
            } else {
                addrs::transport(&a).to_string()
            }
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    Ok(Output::Once(json!({"Strings": addrs})))
}

pub(crate) async fn addrs_listen(state: &ApiState) -> Result<Output, ApiError> {
    let mut addrs: Vec<String> = state
        .inner
        .node
        .listen_addrs()
        .await?
        .iter()
        .map(|a| a.to_string())
        .collect();
    addrs.sort();
    Ok(Output::Once(json!({"Strings": addrs})))
}

pub(crate) fn bootstrap_list(state: &ApiState) -> Result<Output, ApiError> {
    let peers = state.inner.config.lock().bootstrap.clone();
    Ok(Output::Once(json!({"Peers": peers})))
}

/// Saves the list and hands it to the running node (the next round uses it, as in Kubo).
async fn apply_list(state: &ApiState, list: Vec<String>) -> Result<(), ApiError> {
    let config = {
        let mut config = state.inner.config.lock();
        config.bootstrap = list;
        config.clone()
    };
    save_config(state, &config)?;
    let (parsed, _) = BootstrapList::parse_lenient(&config.bootstrap);
    state.inner.node.set_bootstrap_list(parsed).await?;
    Ok(())
}

pub(crate) async fn bootstrap_add(
    state: &ApiState,
    req: &CommandRequest,
    default: bool,
) -> Result<Output, ApiError> {
    let default = default || req.flag(&["default"], false)?;
    let wanted: Vec<String> = if default {
        DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect()
    } else {
        if req.args.is_empty() {
            return Err(ApiError::client("no bootstrap peers to add"));
        }
        req.args
            .iter()
            .map(|a| {
                BootstrapPeer::parse(a)
                    .map(|p| p.addr.to_string())
                    .map_err(|e| ApiError::client(format!("invalid bootstrap address: {e}")))
            })
            .collect::<Result<_, _>>()?
    };
    let mut list = state.inner.config.lock().bootstrap.clone();
    let added: Vec<String> = wanted.into_iter().filter(|a| !list.contains(a)).collect();
    let mut unique = Vec::new();
    for a in added {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    list.extend(unique.iter().cloned());
    apply_list(state, list).await?;
    Ok(Output::Once(json!({"Peers": unique})))
}

pub(crate) async fn bootstrap_rm(
    state: &ApiState,
    req: &CommandRequest,
    all: bool,
) -> Result<Output, ApiError> {
    let all = all || req.flag(&["all"], false)?;
    let list = state.inner.config.lock().bootstrap.clone();
    let (removed, kept): (Vec<String>, Vec<String>) = if all {
        (list, Vec::new())
    } else {
        if req.args.is_empty() {
            return Err(ApiError::client("no bootstrap peers to remove"));
        }
        let targets: Vec<String> = req
            .args
            .iter()
            .map(|a| {
                BootstrapPeer::parse(a)
                    .map(|p| p.addr.to_string())
                    .map_err(|e| ApiError::client(format!("invalid bootstrap address: {e}")))
            })
            .collect::<Result<_, _>>()?;
        list.into_iter().partition(|a| targets.contains(a))
    };
    apply_list(state, kept).await?;
    Ok(Output::Once(json!({"Peers": removed})))
}

/// cairn's extension (Kubo has no such command): the bootstrapper's state.
pub(crate) async fn bootstrap_status(state: &ApiState) -> Result<Output, ApiError> {
    Ok(Output::Once(bootstrap_json(state).await?))
}

/// The bootstrapper's state as `cairn/bootstrap/status` answers it (and `cairn/status` embeds
/// it): `Phase`, `Attempt`, `RetryInMs`, `Attempts`, `Successes`, `Failures`, `ConnectedPeers`,
/// `ConnectedBootstrapPeers`, `LastError`.
pub(crate) async fn bootstrap_json(state: &ApiState) -> Result<Value, ApiError> {
    let s = state.inner.node.bootstrap_status().await?;
    let retry_in_ms = match &s.phase {
        BootstrapPhase::BackingOff { until, .. } => Some(
            until
                .saturating_duration_since(std::time::Instant::now())
                .as_millis() as u64,
        ),
        _ => None,
    };
    let attempt = match &s.phase {
        BootstrapPhase::Connecting { attempt, .. } => Some(*attempt),
        BootstrapPhase::BackingOff { failed_rounds, .. } => Some(*failed_rounds),
        _ => None,
    };
    Ok(json!({
        "Phase": phase_name(&s.phase),
        "Attempt": attempt,
        "RetryInMs": retry_in_ms,
        "Attempts": s.attempts,
        "Successes": s.successes,
        "Failures": s.failures,
        "ConnectedPeers": s.connected_peers,
        "ConnectedBootstrapPeers": s.connected_bootstrap_peers.iter().map(|p| p.to_base58()).collect::<Vec<_>>(),
        "LastError": s.last_error,
    }))
}
