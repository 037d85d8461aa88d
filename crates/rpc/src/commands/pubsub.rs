//! `pubsub/pub`, `pubsub/sub`, `pubsub/ls`, `pubsub/peers`. Topics and data travel multibase
//! (base64url, `u` prefix) on HTTP, as Kubo has required since 0.11.

use futures::StreamExt;
use serde_json::json;

use super::{multibase_decode, multibase_encode};
use crate::error::ApiError;
use crate::request::CommandRequest;
use crate::response::Output;
use crate::server::ApiState;

fn topic_arg(req: &CommandRequest) -> Result<String, ApiError> {
    let bytes = multibase_decode(req.arg(0, "topic")?)?;
    String::from_utf8(bytes).map_err(|_| ApiError::client("topic is not valid UTF-8"))
}

pub(crate) async fn publish(
    state: &ApiState,
    req: &mut CommandRequest,
) -> Result<Output, ApiError> {
    let topic = topic_arg(req)?;
    let mut parts = req.files_required("data").await?;
    if parts.len() != 1 {
        return Err(ApiError::client("pubsub pub takes exactly one data part"));
    }
    let data = parts.remove(0).data;
    state.inner.node.publish(topic, data).await?;
    Ok(Output::Empty)
}

pub(crate) async fn subscribe(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let topic = topic_arg(req)?;
    let sub = state.inner.node.subscribe(topic).await?;
    // Ends when the client goes away: the stream is dropped, and the node unsubscribes.
    let lines = sub.map(|m| {
        let mut line = json!({
            "data": multibase_encode(&m.data),
            "topicIDs": m.topics.iter().map(|t| multibase_encode(t.as_bytes())).collect::<Vec<_>>(),
        });
        if let Some(from) = m.from {
            line["from"] = json!(from.to_base58());
        }
        if let Some(seqno) = m.seqno {
            line["seqno"] = json!(multibase_encode(&seqno.to_be_bytes()));
        }
        Ok(line)
    });
    // Also ends when shutdown begins, as Kubo's does (its pubsub closes before its HTTP servers
    // wait for in-flight requests): a subscriber must not hold the daemon's shutdown.
    let lines = lines.take_until(state.inner.shutdown.clone().cancelled_owned());
    Ok(Output::Stream(lines.boxed()))
}

pub(crate) async fn ls(state: &ApiState) -> Result<Output, ApiError> {
    let topics: Vec<String> = state
        .inner
        .node
        .topics()
        .await?
        .iter()
        .map(|t| multibase_encode(t.as_bytes()))
        .collect();
    Ok(Output::Once(json!({"Strings": topics})))
}

pub(crate) async fn peers(state: &ApiState, req: &CommandRequest) -> Result<Output, ApiError> {
    let topic = if req.args.is_empty() {
        None
    } else {
        Some(topic_arg(req)?)
    };
    let mut peers: Vec<String> = state
        .inner
        .node
        .topic_peers(topic)
        .await?
        .iter()
        .map(|p| p.to_base58())
        .collect();
    peers.sort();
    Ok(Output::Once(json!({"Strings": peers})))
}
