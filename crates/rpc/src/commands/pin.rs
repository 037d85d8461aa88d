//! `pin/add`, `pin/rm`, `pin/ls`.

use std::collections::BTreeMap;

use cairn_blockstore::{PinFilter, PinMode, PinState};
use serde_json::{Value, json};

use super::parse_cid_arg;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

pub(crate) async fn add(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let recursive = req.flag(&["recursive", "r"], true)?;
    let _progress = req.flag(&["progress"], false)?;
    let name = req.opt(&["name", "n"])?.unwrap_or("").to_string();
    let cids = req
        .args_required("ipfs-path")?
        .iter()
        .map(|a| parse_cid_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let store = state.inner.node.blockstore()?;
    let mode = if recursive {
        PinMode::Recursive
    } else {
        PinMode::Direct
    };
    let pinned = cids.clone();
    tokio::task::spawn_blocking(move || {
        cids.iter()
            .try_for_each(|c| store.pin_named(c, mode, &name))
    })
    .await
    .map_err(ApiError::command)??;
    Ok(Output::Once(
        json!({"Pins": pinned.iter().map(|c| c.to_string()).collect::<Vec<_>>()}),
    ))
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
