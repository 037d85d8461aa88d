//! `repo/stat` (and `stats/repo`), `repo/gc`, `repo/verify`, `repo/version`, `stats/bw`.
//!
//! The repo commands run the blockstore's streaming walks on the blocking pool and forward each
//! result through a small bounded channel, so a repo of any size is answered in constant memory
//! and a slow client slows the walk down instead of buffering it.

use cairn_blockstore::{Blockstore, BlockstoreError};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::basic::REPO_VERSION;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

pub(crate) use cairn_node_core::config::parse_size;

/// Runs `walk` on the blocking pool with a sender for its lines; the stream ends when the walk
/// returns (its error, if any, ends the stream as Kubo's trailer error).
pub(crate) fn stream_blocking(
    walk: impl FnOnce(&mpsc::Sender<Result<Value, ApiError>>) -> Result<(), ApiError> + Send + 'static,
) -> BoxStream<'static, Result<Value, ApiError>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = walk(&tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }).boxed()
}

/// The store's totals as `repo/stat` and `cairn/status` report them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Totals {
    /// The store's size on disk (sled's files plus the block files), in bytes.
    pub repo_size: u64,
    /// `Datastore.StorageMax` in bytes (Kubo's 10 GB when unset or unreadable).
    pub storage_max: u64,
    /// Blocks in the index (0 when not counted).
    pub blocks: u64,
}

/// Reads the store's [`Totals`] on the blocking pool: the disk usage, and with `count` the
/// index's running block count (constant time either way: no block is read).
pub(crate) async fn totals(state: &ApiState, count: bool) -> Result<Totals, ApiError> {
    let store = state.inner.node.blockstore()?;
    let storage_max =
        parse_size(&state.inner.config.lock().datastore.storage_max).unwrap_or(10_000_000_000);
    let (stat, disk) = tokio::task::spawn_blocking(move || {
        let disk = store.disk_usage();
        let stat = if count {
            store.stat()
        } else {
            Ok(Default::default())
        };
        (stat, disk)
    })
    .await
    .map_err(ApiError::command)?;
    Ok(Totals {
        repo_size: disk?,
        storage_max,
        blocks: stat?.blocks,
    })
}

/// `repo/stat`: Kubo's fields. `NumObjects` and the sizes come from the blockstore's index and
/// `RepoSize` is the store's size on disk (sled's files plus the block files): no block is read.
pub(crate) async fn stat(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let size_only = req.flag(&["size-only", "s"], false)?;
    // `human` only changes the CLI's text; the JSON carries bytes either way, as in Kubo.
    let _human = req.flag(&["human", "H"], false)?;
    let t = totals(state, !size_only).await?;
    if size_only {
        // Kubo answers its whole `Stat` struct with the other fields zero-valued.
        return Ok(Output::Once(json!({
            "RepoSize": t.repo_size,
            "StorageMax": t.storage_max,
            "NumObjects": 0,
            "RepoPath": "",
            "Version": "",
        })));
    }
    Ok(Output::Once(json!({
        "RepoSize": t.repo_size,
        "StorageMax": t.storage_max,
        "NumObjects": t.blocks,
        "RepoPath": state.inner.repo_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "Version": format!("cairn-repo@{REPO_VERSION}"),
    })))
}

/// `repo/gc`: one `{"Key":{"/":cid}}` line per removed block, streamed as GC removes them
/// (`quiet` changes only the CLI's text, `silent` sends nothing). A failure ends the stream with
/// the error; with `stream-errors` it is sent as a `{"Key":null,"Error":...}` line and the stream
/// ends with Kubo's `encountered errors during gc run`.
pub(crate) async fn gc(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let _quiet = req.flag(&["quiet", "q"], false)?;
    let silent = req.flag(&["silent"], false)?;
    let stream_errors = req.flag(&["stream-errors"], false)?;
    let store = state.inner.node.blockstore()?;
    Ok(Output::Stream(stream_blocking(move |tx| {
        let result = store.gc_each(|cid, _| {
            if !silent {
                // A client that went away stops the output, not the collection.
                let _ = tx.blocking_send(Ok(json!({"Key": {"/": cid.to_string()}})));
            }
        });
        match result {
            Ok(_) => Ok(()),
            Err(e) if stream_errors => {
                let _ = tx.blocking_send(Ok(json!({"Key": null, "Error": e.to_string()})));
                Err(ApiError::command("encountered errors during gc run"))
            }
            Err(e) => Err(e.into()),
        }
    })))
}

/// `repo/verify`, as Kubo: `{"Msg":"block <cid> was corrupt (<why>)","Progress":0}` for each
/// damaged block as it is found, `{"Msg":"","Progress":n}` with the number checked, then
/// `verify complete, all blocks validated.`, or the error `verify complete, some blocks were
/// corrupt` if any was.
pub(crate) async fn verify(state: &ApiState) -> Result<Output, ApiError> {
    let store = state.inner.node.blockstore()?;
    Ok(Output::Stream(stream_blocking(move |tx| {
        verify_walk(&store, tx)
    })))
}

fn verify_walk(
    store: &Blockstore,
    tx: &mpsc::Sender<Result<Value, ApiError>>,
) -> Result<(), ApiError> {
    let summary = store.verify_each(|cid, why: BlockstoreError| {
        let msg = format!("block {cid} was corrupt ({why})");
        let _ = tx.blocking_send(Ok(json!({"Msg": msg, "Progress": 0})));
    })?;
    // One progress line with the total, where Kubo sends one per block checked.
    let _ = tx.blocking_send(Ok(json!({"Msg": "", "Progress": summary.checked})));
    if summary.damaged > 0 {
        return Err(ApiError::command(
            "verify complete, some blocks were corrupt",
        ));
    }
    let _ = tx.blocking_send(Ok(
        json!({"Msg": "verify complete, all blocks validated.", "Progress": 0}),
    ));
    Ok(())
}

pub(crate) fn version() -> Result<Output, ApiError> {
    Ok(Output::Once(json!({"Version": REPO_VERSION})))
}

pub(crate) async fn bandwidth(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    if req.opt(&["peer", "p"])?.is_some() && req.opt(&["proto", "t"])?.is_some() {
        return Err(ApiError::client("please only specify peer OR protocol"));
    }
    if req.flag(&["poll"], false)? {
        return Err(ApiError::client(
            "polling bandwidth is not supported by cairn",
        ));
    }
    let (total_in, total_out) = state.inner.node.bandwidth();
    let up = state.inner.started.elapsed().as_secs_f64().max(1e-3);
    let line = json!({
        "TotalIn": total_in,
        "TotalOut": total_out,
        "RateIn": total_in as f64 / up,
        "RateOut": total_out as f64 / up,
    });
    Ok(Output::Stream(futures::stream::iter([Ok(line)]).boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10GB"), Some(10_000_000_000));
        assert_eq!(parse_size("1.5 MiB"), Some(1_572_864));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("lots"), None);
    }
}
