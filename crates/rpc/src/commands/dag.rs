//! `refs` and `dag/export` on [`Node`]'s DAG walks, and the error and stream helpers the
//! commands that read DAGs share.

use cairn_node_core::unixfs::refs::RefsOptions;
use cairn_node_core::{FetchOptions, Node, NodeError};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use tokio::sync::mpsc;

use super::{DEADLINE_EXCEEDED, parse_cid_arg};
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

/// A node error met while reading blocks, in Kubo's words: the offline miss keeps the node's
/// text (Kubo's), a timeout is Go's `context deadline exceeded`.
pub(crate) fn fetch_error(e: NodeError) -> ApiError {
    match e {
        NodeError::Timeout(_) => ApiError::command(DEADLINE_EXCEEDED),
        other => other.into(),
    }
}

/// `refs`: the links of each root (`recursive`: of the whole DAG, depth first, as Kubo orders
/// them), one `{"Ref","Err"}` line each, through [`Node::refs`]. The first root is read before
/// the answer starts, so a missing root is an error status, not a trailer.
pub(crate) async fn refs(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let roots = req
        .args_required("ipfs-path")?
        .iter()
        .map(|a| parse_cid_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = RefsOptions::from_flags(
        req.opt(&["format"])?,
        req.flag(&["edges", "e"], false)?,
        req.flag(&["unique", "u"], false)?,
        req.flag(&["recursive", "r"], false)?,
        Some(req.int(&["max-depth"], -1)?),
    )
    .map_err(|e| ApiError::client(e.to_string()))?;
    let node: &Node = &state.inner.node;
    node.get_block_with(&roots[0], req.fetch_options())
        .await
        .map_err(fetch_error)?;
    Ok(Output::Stream(
        node.refs(roots, opts, req.fetch_options())
            .map(|line| {
                line.map(|text| json!({"Ref": text, "Err": ""}))
                    .map_err(fetch_error)
            })
            .boxed(),
    ))
}

/// A channel's receiving end as a boxed stream.
pub(crate) fn receiver_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> futures::stream::BoxStream<'static, T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }).boxed()
}

/// `dag/export`: a CARv1 of the DAG under one root, blocks in depth-first first-seen order, as
/// Kubo writes it, through [`Node::export_car`]; streamed, each block read (or fetched) as the
/// walk reaches it. The root is read first, so a missing root is an error status.
pub(crate) async fn export(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let root = parse_cid_arg(req.arg(0, "root")?)?;
    let _progress = req.flag(&["progress", "p"], false)?;
    let local_only = req.flag(&["local-only"], false)?;
    let opts = if local_only {
        FetchOptions::offline()
    } else {
        req.fetch_options()
    };
    let node: &Node = &state.inner.node;
    node.get_block_with(&root, opts)
        .await
        .map_err(fetch_error)?;
    Ok(Output::Raw {
        content_type: "application/vnd.ipld.car",
        length: None,
        body: node
            .export_car(vec![root], opts)
            .map_err(fetch_error)
            .boxed(),
    })
}
