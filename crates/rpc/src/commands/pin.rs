//! `pin/add` (fetching what is missing, with Kubo's progress stream), `pin/rm`, `pin/ls`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_blockstore::{Cid, PinFilter, PinMode, PinState};
use futures::StreamExt;
use serde_json::{Value, json};

use super::dag::{fetch_error, receiver_stream};
use super::parse_cid_arg;
use crate::error::ApiError;
use crate::request::{CommandRequest, fetch_options_for};
use crate::response::Output;
use crate::server::ApiState;

/// Blocks and bytes handled so far by a `pin/add` (Kubo's `ProgressTracker`).
#[derive(Default)]
struct Progress {
    blocks: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    /// Kubo's `AddPinOutput` progress line: both fields are `omitempty`.
    fn line(&self) -> Value {
        let mut v = json!({});
        let (blocks, bytes) = (
            self.blocks.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        );
        if blocks != 0 {
            v["Progress"] = json!(blocks);
        }
        if bytes != 0 {
            v["Bytes"] = json!(bytes);
        }
        v
    }
}

/// What one `pin/add` does, detached from the request so a progress stream can own it.
struct PinJob {
    node: cairn_node_core::Node,
    cids: Vec<Cid>,
    mode: PinMode,
    name: String,
    offline: bool,
    deadline: Option<tokio::time::Instant>,
}

impl PinJob {
    /// Fetches what is missing (the whole DAG for a recursive pin, the root for a direct one),
    /// then pins; returns the pinned CIDs.
    async fn run(self, progress: &Progress) -> Result<Vec<String>, ApiError> {
        for cid in &self.cids {
            let opts = fetch_options_for(self.offline, self.deadline);
            if self.mode == PinMode::Recursive {
                let (base_blocks, base_bytes) = (
                    progress.blocks.load(Ordering::Relaxed),
                    progress.bytes.load(Ordering::Relaxed),
                );
                let mut fetch = self.node.fetch_dag(*cid, opts);
                while let Some(step) = fetch.next().await {
                    let step = step.map_err(fetch_error)?;
                    progress
                        .blocks
                        .store(base_blocks + step.blocks, Ordering::Relaxed);
                    progress
                        .bytes
                        .store(base_bytes + step.bytes, Ordering::Relaxed);
                }
            } else {
                let block = self
                    .node
                    .get_block_with(cid, opts)
                    .await
                    .map_err(fetch_error)?;
                progress.blocks.fetch_add(1, Ordering::Relaxed);
                progress
                    .bytes
                    .fetch_add(block.len() as u64, Ordering::Relaxed);
            }
        }
        for cid in &self.cids {
            self.node.pin_named(cid, self.mode, &self.name).await?;
        }
        Ok(self.cids.iter().map(|c| c.to_string()).collect())
    }
}

/// `pin/add`: fetches what is missing (unless `offline`), then pins. With `progress`, an NDJSON
/// stream as Kubo's: a `{"Progress":N}` line every 500 ms (N = blocks handled so far), a last
/// one if N is not zero, then `{"Pins":[...]}`.
pub(crate) async fn add(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let recursive = req.flag(&["recursive", "r"], true)?;
    let progress = req.flag(&["progress"], false)?;
    let name = req.opt(&["name", "n"])?.unwrap_or("").to_string();
    let cids = req
        .args_required("ipfs-path")?
        .iter()
        .map(|a| parse_cid_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let job = PinJob {
        node: state.inner.node.clone(),
        cids,
        mode: if recursive {
            PinMode::Recursive
        } else {
            PinMode::Direct
        },
        name,
        offline: req.offline(),
        deadline: req.deadline(),
    };
    if !progress {
        let pins = job.run(&Progress::default()).await?;
        return Ok(Output::Once(json!({ "Pins": pins })));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Value, ApiError>>(16);
    tokio::spawn(async move {
        let progress = Progress::default();
        let work = job.run(&progress);
        tokio::pin!(work);
        let period = std::time::Duration::from_millis(500);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                done = &mut work => {
                    match done {
                        Ok(pins) => {
                            if progress.blocks.load(Ordering::Relaxed) != 0 {
                                let _ = tx.send(Ok(progress.line())).await;
                            }
                            let _ = tx.send(Ok(json!({ "Pins": pins }))).await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                        }
                    }
                    return;
                }
                _ = ticker.tick() => {
                    // The client has gone: dropping the work cancels the fetch.
                    if tx.send(Ok(progress.line())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(Output::Stream(receiver_stream(rx)))
}

pub(crate) async fn rm(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let recursive = req.flag(&["recursive", "r"], true)?;
    let cids = req
        .args_required("ipfs-path")?
        .iter()
        .map(|a| parse_cid_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    for c in &cids {
        state.inner.node.unpin(c, recursive).await?;
    }
    Ok(Output::Once(
        json!({"Pins": cids.iter().map(|c| c.to_string()).collect::<Vec<_>>()}),
    ))
}

pub(crate) async fn ls(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let kind = req.opt(&["type", "t"])?.unwrap_or("all");
    let filter = match kind {
        "all" => PinFilter::All,
        "direct" => PinFilter::Direct,
        "indirect" => PinFilter::Indirect,
        "recursive" => PinFilter::Recursive,
        other => {
            return Err(ApiError::client(format!(
                "invalid type '{other}', must be one of {{direct, indirect, recursive, all}}"
            )));
        }
    };
    let stream = req.flag(&["stream", "s"], false)?;
    let _quiet = req.flag(&["quiet", "q"], false)?;
    let _names = req.flag(&["names"], false)?;
    let name_filter = req.opt(&["name", "n"])?.map(String::from);
    let store = state.inner.node.blockstore()?;
    if stream && req.args.is_empty() {
        // Streamed as the walk finds them: memory does not grow with the number of pins.
        return Ok(Output::Stream(super::repo::stream_blocking(move |tx| {
            store
                .pins_each(filter, |p| {
                    if name_filter
                        .as_ref()
                        .is_some_and(|f| !p.name.contains(f.as_str()))
                    {
                        return Ok(());
                    }
                    let mut v = json!({"Cid": p.cid.to_string(), "Type": p.kind.as_str()});
                    if !p.name.is_empty() {
                        v["Name"] = json!(p.name);
                    }
                    // A client that went away ends the walk.
                    tx.blocking_send(Ok(v)).map_err(|_| {
                        cairn_blockstore::BlockstoreError::Engine(
                            cairn_blockstore::EngineError::Other("client went away".into()),
                        )
                    })
                })
                .map_err(ApiError::from)
        })));
    }
    let mut entries: Vec<(String, String, String)> = Vec::new();
    if req.args.is_empty() {
        let pins = tokio::task::spawn_blocking(move || store.pins(filter))
            .await
            .map_err(ApiError::command)??;
        entries.extend(
            pins.into_iter()
                .map(|p| (p.cid.to_string(), p.kind.as_str().to_string(), p.name)),
        );
    } else {
        for arg in &req.args {
            let cid = parse_cid_arg(arg)?;
            let store = store.clone();
            let state_of = tokio::task::spawn_blocking(move || store.pin_state(&cid))
                .await
                .map_err(ApiError::command)??;
            let (t, wanted) = match state_of {
                Some(PinState::Recursive) => (
                    "recursive".to_string(),
                    matches!(filter, PinFilter::All | PinFilter::Recursive),
                ),
                Some(PinState::Direct) => (
                    "direct".to_string(),
                    matches!(filter, PinFilter::All | PinFilter::Direct),
                ),
                Some(PinState::Indirect { via }) => (
                    format!("indirect through {via}"),
                    matches!(filter, PinFilter::All | PinFilter::Indirect),
                ),
                None => return Err(ApiError::command(format!("path '{arg}' is not pinned"))),
            };
            if !wanted {
                return Err(ApiError::command(format!(
                    "path '{arg}' is not pinned as {kind}"
                )));
            }
            entries.push((cid.to_string(), t, String::new()));
        }
    }
    if let Some(f) = &name_filter {
        entries.retain(|(_, _, n)| n.contains(f.as_str()));
    }
    if stream {
        let lines = entries
            .into_iter()
            .map(|(cid, t, name)| {
                let mut v = json!({"Cid": cid, "Type": t});
                if !name.is_empty() {
                    v["Name"] = json!(name);
                }
                v
            })
            .collect();
        return Ok(Output::stream_of(lines));
    }
    let keys: BTreeMap<String, Value> = entries
        .into_iter()
        .map(|(cid, t, name)| {
            let mut v = json!({"Type": t});
            if !name.is_empty() {
                v["Name"] = json!(name);
            }
            (cid, v)
        })
        .collect();
    Ok(Output::Once(json!({"Keys": keys})))
}
