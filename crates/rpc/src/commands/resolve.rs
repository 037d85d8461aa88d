//! The `resolve` command: Kubo's `{"Path":"/ipfs/<cid>[/remainder]"}` for a content path,
//! through [`cairn_node_core::Node::resolve`] (dag-pb link names, HAMT directories, dag-cbor map
//! keys and list indexes, as boxo's path resolver). An `/ipns/` path is resolved through IPNS
//! first; without `recursive`, only one name step is taken, as Kubo does.

use serde_json::json;

use super::dag::fetch_error;
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

/// `resolve`. The `recursive` and DHT options only concern IPNS paths.
pub(crate) async fn resolve(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let arg = req.arg(0, "name")?;
    let recursive = req.flag(&["recursive", "r"], true)?;
    let _ = (
        req.opt(&["dht-record-count", "dhtrc"])?,
        req.opt(&["dht-timeout", "dhtt"])?,
    );
    if arg.starts_with("/ipns/") && !recursive {
        let path = state.inner.node.name_resolve(arg, false).await?;
        return Ok(Output::Once(json!({ "Path": path })));
    }
    let resolved = state
        .inner
        .node
        .resolve(arg, req.fetch_options())
        .await
        .map_err(|e| match e {
            cairn_node_core::NodeError::Unixfs(
                u @ cairn_node_core::unixfs::UnixfsError::InvalidArgument(_),
            ) => ApiError::client(u),
            other => fetch_error(other),
        })?;
    let mut path = format!("/ipfs/{}", resolved.cid);
    for segment in &resolved.remainder {
        path.push('/');
        path.push_str(segment);
    }
    Ok(Output::Once(json!({ "Path": path })))
}
