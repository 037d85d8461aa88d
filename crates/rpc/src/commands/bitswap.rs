//! `bitswap/stat` (and `stats/bitswap`), `bitswap/wantlist`, `bitswap/ledger`,
//! `bitswap/reprovide`, and `provide/stat` (and `stats/provide`, `stats/reprovide`), with
//! Kubo's field names. CIDs in Bitswap's answers are dag-json links (`{"/":"<cid>"}`), as Kubo's
//! `cid.Cid` values marshal.

use cairn_blockstore::Cid;
use cairn_node_core::parse_peer_id;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

fn links(cids: &[Cid]) -> Vec<Value> {
    cids.iter().map(|c| json!({"/": c.to_string()})).collect()
}

/// `bitswap/stat`: Kubo's `bitswap.Stat` (`human` and `verbose` only change the CLI's text).
pub(crate) async fn stat(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let _human = req.flag(&["human"], false)?;
    let _verbose = req.flag(&["verbose", "v"], false)?;
    let node = &state.inner.node;
    let s = node.bitswap_stat().await?;
    Ok(Output::Once(json!({
        // Kubo's ProvideBufLen is its provider's queue of blocks waiting to be announced.
        "ProvideBufLen": node.provide_stat().queued,
        "Wantlist": links(&s.wantlist),
        "Peers": s.peers.iter().map(|p| p.to_base58()).collect::<Vec<_>>(),
        "BlocksReceived": s.blocks_received,
        "DataReceived": s.data_received,
        "DupBlksReceived": s.dup_blocks_received,
        "DupDataReceived": s.dup_data_received,
        "MessagesReceived": s.messages_received,
        "BlocksSent": s.blocks_sent,
        "DataSent": s.data_sent,
    })))
}

/// `bitswap/wantlist`: what this node is fetching, or with `peer`, what that peer wants from it.
pub(crate) async fn wantlist(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let peer = req.opt(&["peer", "p"])?.map(parse_peer_id).transpose()?;
    let cids = state.inner.node.bitswap_wantlist(peer).await?;
    Ok(Output::Once(json!({ "Keys": links(&cids) })))
}

/// `bitswap/ledger`: Kubo's `{Peer, Value, Sent, Recv, Exchanged}`; `Value` is the debt ratio,
/// bytes sent over bytes received plus one.
pub(crate) async fn ledger(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let peer = parse_peer_id(req.arg(0, "peer")?)?;
    let l = state.inner.node.bitswap_ledger(peer).await?;
    Ok(Output::Once(json!({
        "Peer": l.peer.to_base58(),
        "Value": l.bytes_sent as f64 / (l.bytes_received as f64 + 1.0),
        "Sent": l.bytes_sent,
        "Recv": l.bytes_received,
        "Exchanged": l.exchanged,
    })))
}

/// `bitswap/reprovide`: queues everything the providing strategy selects; answers nothing, as
/// Kubo does.
pub(crate) async fn reprovide(state: &ApiState) -> Result<Output, ApiError> {
    if !state.inner.node.provide_config().enabled {
        return Err(ApiError::command("Provide.Enabled is set to 'false'"));
    }
    state.inner.node.reprovide().await?;
    Ok(Output::Empty)
}

/// `provide/stat`: the fields of Kubo's `stats provide` (`TotalProvides`,
/// `LastReprovideBatchSize`, and durations in nanoseconds as Go's `time.Duration` marshals), and
/// cairn's queue counters (`Queued`, `FailedProvides`, `Dropped`).
pub(crate) async fn provide_stat(state: &ApiState) -> Result<Output, ApiError> {
    let s = state.inner.node.provide_stat();
    let ns = |ms: u64| ms.saturating_mul(1_000_000);
    Ok(Output::Once(json!({
        "TotalProvides": s.total_provides,
        "AvgProvideDuration": ns(s.avg_provide_ms),
        "LastReprovideDuration": ns(s.last_reprovide_ms),
        "LastReprovideBatchSize": s.last_reprovide_size,
        "Queued": s.queued,
        "FailedProvides": s.failed_provides,
        "Dropped": s.dropped,
    })))
}
