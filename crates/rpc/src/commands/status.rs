//! `cairn/status`: one JSON snapshot of the node's state for the status page
//! (`GET /cairn/status`, see [`crate::status`]) and for any other client that wants the whole
//! picture in one call. A cairn extension: Kubo has no such command.
//!
//! It gathers what Kubo's `id`, `swarm/peers?verbose=true`, `cairn/bootstrap/status`,
//! `stats/bw`, `repo/stat`, `pin/ls`, `bitswap/stat` and `/health?verbose` answer, through the
//! same [`Node`](cairn_node_core::Node) methods, so a page can refresh its counters with one
//! request instead of eight. Nothing in it walks the store: the repo totals are the index's
//! running counts, and the pins are counted from the pin records (recursive roots and direct
//! pins; indirect pins would need a walk of every pinned DAG).
//!
//! ## JSON
//!
//! ```json
//! {
//!   "ID": "12D3KooW…",
//!   "AgentVersion": "cairn/0.1.0",
//!   "Addresses": ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…"],
//!   "Peers": [{"Peer": "12D3KooW…", "Addr": "/ip4/10.0.0.2/tcp/4001", "Direction": "outbound",
//!              "AgentVersion": "kubo/0.37.0/", "LatencyMs": 1.25, "ConnectedSinceMs": 1700000000000}],
//!   "Bootstrap": {"Phase": "connected", "Attempt": null, "RetryInMs": null, "Attempts": 1,
//!                 "Successes": 1, "Failures": 0, "ConnectedPeers": 4,
//!                 "ConnectedBootstrapPeers": ["Qm…"], "LastError": null},
//!   "Bandwidth": {"TotalIn": 123456, "TotalOut": 65432},
//!   "Repo": {"RepoSize": 1048576, "NumObjects": 42, "StorageMax": 10000000000},
//!   "Pins": {"Recursive": 3, "Direct": 1},
//!   "Bitswap": {"BlocksReceived": 10, "DataReceived": 2048, "DupBlksReceived": 0,
//!               "DupDataReceived": 0, "BlocksSent": 5, "DataSent": 1024,
//!               "MessagesReceived": 20, "WantlistLength": 0, "Peers": 4},
//!   "Services": {"Status": "ok", "Services": [{"Name": "swarm", "State": "ok", "Restarts": 0,
//!                                              "LastError": null}]},
//!   "Watch": {"Dir": "/srv/drop", "Counts": {"Settling": 1, "Importing": 0, "Imported": 7,
//!             "Failed": 0}, "Recent": [{"Path": "a.iso", "Kind": "file", "State": "imported",
//!             "Cid": "bafy…", "Size": 4700000000, "ImportedAt": 1764480000000, "Error": null}]},
//!   "UptimeMs": 5000
//! }
//! ```
//!
//! - `Peers` is sorted by peer id; `AgentVersion` and `LatencyMs` are `null` until identify and
//!   ping have answered; `Direction` is `inbound` or `outbound`; `ConnectedSinceMs` is Unix time
//!   in milliseconds.
//! - `Bootstrap` is exactly `cairn/bootstrap/status`'s answer.
//! - `Bandwidth` holds the byte totals of every libp2p connection since start (as `stats/bw`'s
//!   `TotalIn`/`TotalOut`); rates are left to the client, which samples them.
//! - `Repo` is `repo/stat`'s `RepoSize`, `NumObjects` and `StorageMax` (`Datastore.StorageMax`
//!   in bytes).
//! - `Services` is `/health?verbose`'s body: the node's overall state and every supervised
//!   service (the daemon's listeners, the swarm; whatever the daemon registers).
//! - `Watch` is `null` unless the daemon watches an import folder; then it holds the folder, its
//!   entries counted by state (as `cairn/watch/ls`), and the last 5 imports, newest first.
//! - `UptimeMs` counts from the RPC's start.

use std::time::UNIX_EPOCH;

use cairn_blockstore::PinFilter;
use cairn_node_core::Direction;
use serde_json::{Value, json};

use super::network::bootstrap_json;
use super::repo::totals;
use crate::addrs;
use crate::error::ApiError;
use crate::response::Output;
use crate::server::{ApiState, overall_state};

/// `cairn/status`: the snapshot described in the [module docs](self).
pub(crate) async fn status(state: &ApiState) -> Result<Output, ApiError> {
    let node = &state.inner.node;
    let me = node.peer_id();
    let mine: Vec<_> = node
        .listen_addrs()
        .await?
        .into_iter()
        .chain(node.external_addrs().await?)
        .collect();
    let mut peers = node.peers().await?;
    peers.sort_by_key(|p| p.peer_id.to_base58());
    let peers: Vec<Value> = peers
        .into_iter()
        .map(|p| {
            json!({
                "Peer": p.peer_id.to_base58(),
                "Addr": addrs::transport(&p.address).to_string(),
                "Direction": match p.direction {
                    Direction::Inbound => "inbound",
                    Direction::Outbound => "outbound",
                },
                "AgentVersion": p.agent_version,
                "LatencyMs": p.latency.map(|d| d.as_secs_f64() * 1e3),
                "ConnectedSinceMs": p
                    .connected_since
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or_default(),
            })
        })
        .collect();
    let (total_in, total_out) = node.bandwidth();
    let repo = totals(state, true).await?;
    let recursive = node.pins(PinFilter::Recursive).await?.len();
    let direct = node.pins(PinFilter::Direct).await?.len();
    let bitswap = node.bitswap_stat().await?;
    Ok(Output::Once(json!({
        "ID": me.to_base58(),
        "AgentVersion": cairn_node_core::agent_version(),
        "Addresses": addrs::with_peer_sorted(&mine, &me),
        "Peers": peers,
        "Bootstrap": bootstrap_json(state).await?,
        "Bandwidth": {"TotalIn": total_in, "TotalOut": total_out},
        "Repo": {
            "RepoSize": repo.repo_size,
            "NumObjects": repo.blocks,
            "StorageMax": repo.storage_max,
        },
        "Pins": {"Recursive": recursive, "Direct": direct},
        "Bitswap": {
            "BlocksReceived": bitswap.blocks_received,
            "DataReceived": bitswap.data_received,
            "DupBlksReceived": bitswap.dup_blocks_received,
            "DupDataReceived": bitswap.dup_data_received,
            "BlocksSent": bitswap.blocks_sent,
            "DataSent": bitswap.data_sent,
            "MessagesReceived": bitswap.messages_received,
            "WantlistLength": bitswap.wantlist.len(),
            "Peers": bitswap.peers.len(),
        },
        "Services": {
            "Status": overall_state(state),
            "Services": state.inner.services.snapshot(),
        },
        "Watch": state.inner.watch.as_ref().map(watch_json),
        "UptimeMs": state.inner.started.elapsed().as_millis() as u64,
    })))
}

/// The status page's view of the watched folder: counts and the last few imports.
fn watch_json(watch: &cairn_watch::WatchHandle) -> Value {
    /// How many recent imports the page shows.
    const RECENT: usize = 5;
    let mut recent: Vec<_> = watch
        .entries()
        .into_iter()
        .filter(|e| e.imported_at.is_some())
        .collect();
    recent.sort_by_key(|e| std::cmp::Reverse(e.imported_at));
    recent.truncate(RECENT);
    json!({
        "Dir": watch.dir(),
        "Counts": super::watch::counts(watch),
        "Recent": recent,
    })
}
