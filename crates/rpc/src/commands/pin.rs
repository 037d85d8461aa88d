//! `pin/add` (fetching what is missing, with Kubo's progress stream), `pin/rm`, `pin/ls`,
//! `pin/update` and `pin/verify`, with Kubo's output fields and error texts (IPFS Cluster's
//! `ipfshttp` connector matches some of them exactly).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_blockstore::{Cid, PinFilter, PinMode, PinState};
use futures::StreamExt;
use serde_json::{Value, json};

use super::dag::fetch_error;
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
    /// then pins; returns the pinned CIDs. Errors carry Kubo's `pin: ` prefix (its core API
    /// wraps every pin error so), the deadline's included: js-kubo-rpc-client looks for
    /// `context deadline exceeded` inside the message.
    async fn run(self, progress: &Progress) -> Result<Vec<String>, ApiError> {
        let deadline = self.deadline;
        let work = self.run_unprefixed(progress);
        let outcome = match deadline {
            Some(d) => tokio::time::timeout_at(d, work)
                .await
                .unwrap_or_else(|_| Err(ApiError::command(super::DEADLINE_EXCEEDED))),
            None => work.await,
        };
        outcome.map_err(|e| e.prefixed("pin: "))
    }

    async fn run_unprefixed(self, progress: &Progress) -> Result<Vec<String>, ApiError> {
        if self.mode == PinMode::Direct {
            // boxo's pinner refuses a direct pin over a recursive one.
            for cid in &self.cids {
                if self.node.pin_state(cid).await? == Some(PinState::Recursive) {
                    return Err(ApiError::command(format!(
                        "{cid} already pinned recursively"
                    )));
                }
            }
        }
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
                // Kubo's progress tracker counts the nodes of a DAG walk; a direct pin walks
                // nothing, so its progress stays zero (no `Progress` line before `Pins`).
                self.node
                    .get_block_with(cid, opts)
                    .await
                    .map_err(fetch_error)?;
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
    let cids = super::resolve_args(state, req.args_required("ipfs-path")?, req.fetch_options())
        .await
        .map_err(|e| e.prefixed("pin: "))?;
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
    super::spawn_producer(tx, |tx| async move {
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
    // Kubo's headers go with the first line: a pin that fails before the first progress tick
    // (500 ms) is an error answer, as in Kubo.
    super::stream_from_first(rx).await
}

pub(crate) async fn rm(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let recursive = req.flag(&["recursive", "r"], true)?;
    let cids =
        super::resolve_args(state, req.args_required("ipfs-path")?, req.fetch_options()).await?;
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
            let cid = super::resolve_arg(state, arg, req.fetch_options()).await?;
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
                // Kubo checks only pins of the asked type (`CheckIfPinnedWithType`), so a CID
                // pinned another way is just "not pinned" (IPFS Cluster matches the suffix).
                return Err(ApiError::command(format!("path '{arg}' is not pinned")));
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

/// Kubo's (boxo pinner's) error when `pin/update`'s old pin is not a recursive pin.
const FROM_NOT_PINNED: &str = "'from' cid was not recursively pinned already";
/// Kubo's (boxo pinner's) error when `pin/update`'s new pin exists already.
const TO_PINNED: &str = "'to' cid was already recursively pinned";

/// `pin/update <from> <to>`: pins `to` recursively (fetching what is missing, unless `offline`),
/// keeping the old pin's name, then removes the recursive pin of `from` unless `unpin=false`.
/// `from` must be pinned recursively and `to` must not be. Answers `{"Pins":[from, to]}`, as
/// Kubo. (Kubo fetches only the blocks that differ from `from`'s DAG; here the fetch skips every
/// block already stored, which includes `from`'s.)
pub(crate) async fn update(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let unpin = req.flag(&["unpin"], true)?;
    let from_arg = req.arg(0, "from-path")?;
    let to_arg = req.arg(1, "to-path")?;
    let node = &state.inner.node;
    let from = node
        .resolve(from_arg, req.fetch_options())
        .await
        .map_err(super::dag::fetch_error)?
        .cid;
    let to = node
        .resolve(to_arg, req.fetch_options())
        .await
        .map_err(super::dag::fetch_error)?
        .cid;
    let store = state.inner.node.blockstore()?;
    let name = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        if store.pin_state(&from)? != Some(PinState::Recursive) {
            return Err(ApiError::command(FROM_NOT_PINNED));
        }
        if from != to && store.pin_state(&to)? == Some(PinState::Recursive) {
            return Err(ApiError::command(TO_PINNED));
        }
        // The old pin's name goes to the new pin, as boxo's pinner does.
        let mut name = String::new();
        store.pins_each(PinFilter::Recursive, |p| {
            if p.cid == from {
                name = p.name;
            }
            Ok(())
        })?;
        Ok(name)
    })
    .await
    .map_err(ApiError::command)??;
    let pins = json!({"Pins": [from.to_string(), to.to_string()]});
    if from == to {
        return Ok(Output::Once(pins));
    }
    PinJob {
        node: state.inner.node.clone(),
        cids: vec![to],
        mode: PinMode::Recursive,
        name,
        offline: req.offline(),
        deadline: req.deadline(),
    }
    .run(&Progress::default())
    .await?;
    if unpin {
        state.inner.node.unpin(&from, true).await?;
    }
    Ok(Output::Once(pins))
}

/// The most broken blocks `pin/verify` lists under one pin (Kubo lists them all; a bound keeps
/// one answer line small when a large shared subtree is missing).
const MAX_BAD_NODES: usize = 1000;

/// What `pin/verify` found under one block: Kubo's `PinStatus`.
#[derive(Clone, Debug, Default)]
struct PinStatus {
    ok: bool,
    /// (CID, error) of each block that could not be read, when explaining.
    bad: Vec<(Cid, String)>,
}

/// Checks that every block under `root` can be read from the store and decoded, as Kubo's
/// `pinVerify` does (offline), remembering the status of each block seen in `visited`. The walk
/// is iterative (post-order with an explicit stack), so a deep DAG cannot overflow the stack.
fn verify_dag(
    store: &cairn_blockstore::Blockstore,
    root: Cid,
    explain: bool,
    visited: &mut std::collections::HashMap<Cid, PinStatus>,
) -> PinStatus {
    // (block, its links once read, whether its children have been pushed).
    let mut stack: Vec<(Cid, Option<Vec<Cid>>)> = vec![(root, None)];
    while let Some((cid, links)) = stack.pop() {
        if visited.contains_key(&cid) {
            continue;
        }
        match links {
            None => {
                // Any failure to read or decode the block makes it a bad node, as in Kubo.
                let read = match store.get(&cid) {
                    Ok(None) => Err(format!(
                        "block was not found locally (offline): ipld: could not find {cid}"
                    )),
                    Ok(Some(block)) => cairn_blockstore::codec::links(&cid, block.data())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match read {
                    Err(why) => {
                        let bad = if explain {
                            vec![(cid, why)]
                        } else {
                            Vec::new()
                        };
                        visited.insert(cid, PinStatus { ok: false, bad });
                    }
                    Ok(links) => {
                        let children: Vec<Cid> = links
                            .iter()
                            .filter(|l| !visited.contains_key(l))
                            .copied()
                            .collect();
                        stack.push((cid, Some(links)));
                        stack.extend(children.into_iter().map(|c| (c, None)));
                    }
                }
            }
            Some(links) => {
                let mut status = PinStatus {
                    ok: true,
                    bad: Vec::new(),
                };
                for link in &links {
                    if let Some(child) = visited.get(link)
                        && !child.ok
                    {
                        status.ok = false;
                        let room = MAX_BAD_NODES.saturating_sub(status.bad.len());
                        status.bad.extend(child.bad.iter().take(room).cloned());
                    }
                }
                visited.insert(cid, status);
            }
        }
    }
    visited.get(&root).cloned().unwrap_or_default()
}

/// `pin/verify`: checks each recursive pin's DAG in the local store, as Kubo: one NDJSON line per
/// broken pin, `{"Cid","BadNodes":[{"Cid","Err"}]}` (`quiet`: just `{"Cid"}`), and with
/// `verbose` also `{"Cid","Ok":true}` for each complete pin. `verbose` with `quiet` is Kubo's
/// error.
pub(crate) async fn verify(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let verbose = req.flag(&["verbose"], false)?;
    let quiet = req.flag(&["quiet", "q"], false)?;
    if verbose && quiet {
        return Err(ApiError::command(
            "the --verbose and --quiet options can not be used at the same time",
        ));
    }
    let store = state.inner.node.blockstore()?;
    Ok(Output::Stream(super::repo::stream_blocking(move |tx| {
        let mut roots = Vec::new();
        store.pins_each(PinFilter::Recursive, |p| {
            roots.push(p.cid);
            Ok(())
        })?;
        let mut visited = std::collections::HashMap::new();
        for root in roots {
            let status = verify_dag(&store, root, !quiet, &mut visited);
            if status.ok && !verbose {
                continue;
            }
            let mut line = json!({"Cid": root.to_string()});
            if status.ok {
                line["Ok"] = json!(true);
            }
            if !status.bad.is_empty() {
                line["BadNodes"] = status
                    .bad
                    .iter()
                    .map(|(c, why)| json!({"Cid": c.to_string(), "Err": why}))
                    .collect();
            }
            if tx.blocking_send(Ok(line)).is_err() {
                return Ok(()); // the client went away
            }
        }
        Ok(())
    })))
}
