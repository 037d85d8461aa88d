//! `/api/v0/cairn/events`: the node's live event stream over a WebSocket (a cairn extension;
//! Kubo has no such endpoint).
//!
//! ## Handshake and security
//!
//! A `GET` with a WebSocket upgrade (RFC 6455). Kubo's RPC is POST-only, so this route sits
//! beside the command router, but the same checks apply in the same order as for every other
//! `/api/v0` path: `API.Authorizations` first (Kubo's 403 and text), then the Origin/Referer
//! checks (`403 - Forbidden`). A request that is not a WebSocket upgrade gets `400` (any `GET`)
//! or `405` with `Allow: GET` (other methods).
//!
//! Browsers cannot set `Authorization` on a WebSocket, so the token may instead travel as a
//! subprotocol (`new WebSocket(url, ["cairn-events", "bearer.<token>"])`):
//! `bearer.<token>` stands for the header `Authorization: Bearer <token>` and `basic.<b64>` for
//! `Authorization: Basic <b64>` (a subprotocol must be an HTTP token, so this only works for
//! secrets made of letters, digits and `!#$%&'*+-.^_`|~`; base64 with `/` or `=` does not fit).
//! The `Authorization` header wins when both are present. As RFC 6455 requires, the server
//! echoes one of the offered subprotocols: `cairn-events` when offered, else the token one it
//! accepted.
//!
//! ## Messages
//!
//! Server to client: one JSON text frame per message, each with a `type`:
//!
//! - `hello` first: `{"type":"hello","peer":"<node id>","kinds":[…]}`; events emitted after
//!   it are delivered.
//! - every [`NodeEvent`](cairn_node_core::NodeEvent), in the shape [`cairn_node_core::events`]
//!   documents (`peer_connected`, `block_added`, `bitswap_block_received`, …);
//! - `pubsub`: `{"type":"pubsub","topic":"<name>","from":"<peer>","seqno":<u64>,"data":"<base64>"}`
//!   (standard base64 with padding) for each message on a topic the client subscribed to;
//! - `log`: `{"type":"log","level":"DEBUG","target":"…","message":"…","time_ms":<ms>}`;
//! - `lagged`: `{"type":"lagged","source":"events"|"log","missed":<n>}` when this client's reader
//!   fell behind the node's bus ([`cairn_node_core::EVENT_CAPACITY`]) and `n` items were lost;
//! - answers to commands: `subscribed`/`unsubscribed` (`topic`), `log_level` (`level`),
//!   `events_filter` (`kinds`), or `error` (`message`).
//!
//! Client to server: JSON text frames:
//!
//! - `{"subscribe":"pubsub","topic":"chat"}` / `{"unsubscribe":"pubsub","topic":"chat"}`: topics
//!   are **plain text** here (the RPC's `pubsub/*` take multibase `u<base64url>`); needs
//!   `Pubsub.Enabled`; at most [`MAX_TOPICS`] per client;
//! - `{"log":"error"|"warn"|"info"|"debug"|"off"}`: log lines at that level and above (needs the
//!   daemon's [`LogBus`], see [`crate::ApiBuilder::log_bus`]);
//! - `{"events":["peer","block",…]}`: only these event kinds
//!   ([`cairn_node_core::EVENT_KINDS`]); `[]` for none; all kinds until this is sent.
//!
//! ## Backpressure
//!
//! Each client has a queue of at most [`QUEUE_MESSAGES`] messages and [`QUEUE_BYTES`] bytes
//! between the node and its socket. The node's buses never wait for it. When a message does not
//! fit, the client is dropped: its subscriptions end at once, the queue is freed, and a close
//! frame with code 1008 (policy violation) and the reason [`TOO_SLOW`] is written after what
//! the socket was already sending; if the client does not take it within [`CLOSE_GRACE`], the
//! connection is cut. So a client that stops reading costs at most one queue, whatever the
//! node produces. `/debug/metrics/prometheus` counts connected clients
//! (`cairn_rpc_event_clients`) and dropped ones (`cairn_rpc_event_clients_dropped_total`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use cairn_node_core::{EVENT_KINDS, LogBus, LogLevel, LogSubscription, Node};
use futures::stream::{AbortHandle, Abortable, SelectAll};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::text_response;
use crate::server::ApiState;

/// Where the stream is served.
pub const PATH: &str = "/api/v0/cairn/events";
/// The subprotocol echoed when a client offers it.
pub const SUBPROTOCOL: &str = "cairn-events";
/// Messages a client's queue holds.
pub const QUEUE_MESSAGES: usize = 256;
/// Bytes of JSON a client's queue holds.
pub const QUEUE_BYTES: usize = 4 << 20;
/// How long a dropped client has to take its close frame before the connection is cut.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The close reason of a client dropped for not reading.
pub const TOO_SLOW: &str = "client too slow: queue full";
/// Pubsub topics one client may subscribe to.
pub const MAX_TOPICS: usize = 64;
/// The largest command frame a client may send, in bytes.
const MAX_COMMAND: usize = 64 << 10;

/// The token of `bearer.<token>` / `basic.<b64>` subprotocols, as an `Authorization` value;
/// `None` for any other subprotocol.
pub fn authorization_from_protocol(proto: &str) -> Option<String> {
    if let Some(token) = proto.strip_prefix("bearer.") {
        Some(format!("Bearer {token}"))
    } else {
        proto
            .strip_prefix("basic.")
            .map(|b64| format!("Basic {b64}"))
    }
}

/// The subprotocols a client offered (`Sec-WebSocket-Protocol`, comma-separated, possibly in
/// several headers), in order, trimmed, empty ones dropped.
pub fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The handler: Kubo's checks, then the upgrade.
pub(crate) async fn handler(
    State(state): State<ApiState>,
    method: Method,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let started = Instant::now();
    let security = &state.inner.security;
    let offered = offered_protocols(&headers);
    // The subprotocol that carried the token, if the header did not.
    let mut token_protocol = None;
    let denied = if security.auth_enabled() && !headers.contains_key(header::AUTHORIZATION) {
        let mut with_token = headers.clone();
        for proto in &offered {
            if let Some(value) =
                authorization_from_protocol(proto).and_then(|a| HeaderValue::from_str(&a).ok())
            {
                with_token.insert(header::AUTHORIZATION, value);
                if security.check_auth(PATH, &with_token).is_none() {
                    token_protocol = Some(proto.clone());
                    break;
                }
            }
        }
        if token_protocol.is_some() {
            None
        } else {
            security.check_auth(PATH, &headers)
        }
    } else {
        security.check_auth(PATH, &headers)
    };
    let mut response = if let Some(denied) = denied {
        denied
    } else if let Some(forbidden) = security.check_origin(&headers) {
        forbidden
    } else {
        match ws {
            Ok(ws) => {
                let mut protocols = vec![SUBPROTOCOL.to_string()];
                protocols.extend(token_protocol);
                let node = state.inner.node.clone();
                let logs = state.inner.logs.clone();
                let shutdown = state.inner.shutdown.clone();
                let counters = Counters {
                    connected: state.inner.metrics.event_clients.clone(),
                    dropped: state.inner.metrics.event_clients_dropped.clone(),
                };
                ws.protocols(protocols)
                    .max_message_size(MAX_COMMAND)
                    .max_frame_size(MAX_COMMAND)
                    .on_failed_upgrade(|e| tracing::debug!("events: upgrade failed: {e}"))
                    .on_upgrade(move |socket| session(socket, node, logs, shutdown, counters))
            }
            Err(_) if method != Method::GET => {
                let mut r = text_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "405 - Method Not Allowed\n".into(),
                );
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET"));
                r
            }
            Err(rejection) => text_response(
                StatusCode::BAD_REQUEST,
                format!("{PATH} is a WebSocket endpoint: {rejection}\n"),
            ),
        }
    };
    security.decorate(&headers, response.headers_mut());
    state
        .inner
        .metrics
        .record("cairn/events", response.status(), started);
    response
}

/// Why a session ended early.
enum End {
    /// The client closed or went away.
    Gone,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

/// The client's queue, bounded in messages (the channel) and bytes (the counter).
struct Queue {
    tx: mpsc::Sender<(Message, usize)>,
    bytes: Arc<AtomicUsize>,
}

impl Queue {
    /// Queues one JSON message, or says the client is too slow.
    fn push(&self, value: &impl serde::Serialize) -> Result<(), End> {
        let text = match serde_json::to_string(value) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("events: unserialisable message: {e}");
                return Ok(());
            }
        };
        let len = text.len();
        if self.bytes.load(Ordering::Relaxed) + len > QUEUE_BYTES {
            return Err(End::Close(close_code::POLICY, TOO_SLOW));
        }
        match self
            .tx
            .try_send((Message::Text(Utf8Bytes::from(text)), len))
        {
            Ok(()) => {
                self.bytes.fetch_add(len, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(End::Close(close_code::POLICY, TOO_SLOW))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(End::Gone),
        }
    }
}

/// What one client asked for.
struct Client {
    node: Node,
    logs: Option<LogBus>,
    log: Option<LogSubscription>,
    /// Event kinds it wants; `None` for all.
    kinds: Option<BTreeSet<String>>,
    topics: HashMap<String, AbortHandle>,
    pubsub: SelectAll<Abortable<futures::stream::BoxStream<'static, (String, Value)>>>,
}

/// The session's metrics (`cairn_rpc_event_clients`, `cairn_rpc_event_clients_dropped`).
struct Counters {
    connected: prometheus_client::metrics::gauge::Gauge,
    dropped: prometheus_client::metrics::counter::Counter,
}

/// One connection: forwards the node's events, pubsub messages and log lines to the queue,
/// and the client's commands to the node, until either side ends.
async fn session(
    socket: WebSocket,
    node: Node,
    logs: Option<LogBus>,
    shutdown: CancellationToken,
    counters: Counters,
) {
    counters.connected.inc();
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(QUEUE_MESSAGES);
    let bytes = Arc::new(AtomicUsize::new(0));
    let (close_tx, close_rx) = oneshot::channel();
    let mut writer = tokio::spawn(write(sink, rx, close_rx, bytes.clone()));
    let queue = Queue { tx, bytes };
    let mut events = node.events();
    let mut client = Client {
        node: node.clone(),
        logs,
        log: None,
        kinds: None,
        topics: HashMap::new(),
        pubsub: SelectAll::new(),
    };
    let hello = json!({"type": "hello", "peer": node.peer_id().to_base58(), "kinds": EVENT_KINDS});
    let mut end = queue.push(&hello).err();
    let mut writer_done = false;
    while end.is_none() {
        let result = tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => client.command(text.as_str(), &queue).await,
                Some(Ok(Message::Binary(_))) => queue.push(&error("commands are JSON text frames")),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Err(End::Gone),
                Some(Ok(_)) => Ok(()), // ping/pong: answered by the socket itself
            },
            event = events.recv() => match event {
                Ok(event) => match &client.kinds {
                    Some(kinds) if !kinds.contains(event.kind()) => Ok(()),
                    _ => queue.push(&event),
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    queue.push(&json!({"type": "lagged", "source": "events", "missed": missed}))
                }
                Err(broadcast::error::RecvError::Closed) => {
                    Err(End::Close(close_code::AWAY, "node stopped"))
                }
            },
            line = next_log(&mut client.log) => match line {
                Ok(line) => {
                    let mut v = serde_json::to_value(&line).unwrap_or(Value::Null);
                    v["type"] = "log".into();
                    queue.push(&v)
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    queue.push(&json!({"type": "lagged", "source": "log", "missed": missed}))
                }
                Err(broadcast::error::RecvError::Closed) => {
                    client.log = None;
                    Ok(())
                }
            },
            Some((topic, message)) = client.pubsub.next(), if !client.pubsub.is_empty() => {
                let _ = topic;
                queue.push(&message)
            }
            _ = shutdown.cancelled() => Err(End::Close(close_code::AWAY, "node shutting down")),
            _ = &mut writer, if !writer_done => {
                writer_done = true;
                Err(End::Gone)
            }
        };
        end = result.err();
    }
    // End the subscriptions first, then tell the writer to drop the queue and close.
    drop(client);
    drop(events);
    match end {
        Some(End::Close(code, reason)) => {
            if reason == TOO_SLOW {
                counters.dropped.inc();
                tracing::info!("events: dropped a client that stopped reading");
            }
            let _ = close_tx.send(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            });
        }
        // The writer ends with a plain close frame once the queue is gone.
        _ => drop(close_tx),
    }
    drop(queue);
    if !writer_done {
        let _ = writer.await;
    }
    counters.connected.dec();
}

/// The next log line, or never when the client asked for none.
async fn next_log(
    log: &mut Option<LogSubscription>,
) -> Result<cairn_node_core::LogLine, broadcast::error::RecvError> {
    match log {
        Some(sub) => sub.recv().await,
        None => std::future::pending().await,
    }
}

/// A command frame from a client, parsed (see the module documentation for the JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCommand {
    /// `{"subscribe":"pubsub","topic":T}`: pubsub messages on topic `T` (plain text).
    Subscribe(String),
    /// `{"unsubscribe":"pubsub","topic":T}`.
    Unsubscribe(String),
    /// `{"log":"debug"}`: log lines at this level and above; `None` for `"off"`.
    Log(Option<LogLevel>),
    /// `{"events":[kinds]}`: only these event kinds from now on.
    Events(BTreeSet<String>),
}

impl ClientCommand {
    /// Parses one decoded command frame.
    ///
    /// # Errors
    /// The text of the `error` message the client is answered with: an unknown command,
    /// subscription, log level or event kind, or a missing `topic`.
    pub fn parse(v: &Value) -> Result<Self, String> {
        if let Some(what) = v.get("subscribe").or_else(|| v.get("unsubscribe")) {
            let subscribe = v.get("subscribe").is_some();
            if what != "pubsub" {
                return Err(format!("unknown subscription {what}; only \"pubsub\""));
            }
            let Some(topic) = v.get("topic").and_then(Value::as_str) else {
                return Err("\"topic\" (a plain-text topic name) is required".into());
            };
            return Ok(if subscribe {
                ClientCommand::Subscribe(topic.to_string())
            } else {
                ClientCommand::Unsubscribe(topic.to_string())
            });
        }
        if let Some(level) = v.get("log") {
            let Some(level) = level.as_str() else {
                return Err("\"log\" takes error, warn, info, debug or off".into());
            };
            if level.eq_ignore_ascii_case("off") {
                return Ok(ClientCommand::Log(None));
            }
            return match LogLevel::parse(level) {
                Some(level) => Ok(ClientCommand::Log(Some(level))),
                None => Err(format!(
                    "unknown log level {level:?}; use error, warn, info, debug or off"
                )),
            };
        }
        if let Some(kinds) = v.get("events") {
            let Some(list) = kinds.as_array() else {
                return Err("\"events\" takes an array of kinds".into());
            };
            let mut set = BTreeSet::new();
            for k in list {
                match k.as_str() {
                    Some(k) if EVENT_KINDS.contains(&k) => {
                        set.insert(k.to_string());
                    }
                    _ => {
                        return Err(format!(
                            "unknown event kind {k}; known: {}",
                            EVENT_KINDS.join(", ")
                        ));
                    }
                }
            }
            return Ok(ClientCommand::Events(set));
        }
        Err("unknown command; use subscribe, unsubscribe, log or events".into())
    }
}

fn error(message: impl Into<String>) -> Value {
    json!({"type": "error", "message": message.into()})
}

impl Client {
    /// Runs one command frame; errors in the command are answered with an `error` message.
    async fn command(&mut self, text: &str, queue: &Queue) -> Result<(), End> {
        let reply = match serde_json::from_str::<Value>(text) {
            Err(e) => error(format!("not JSON: {e}")),
            Ok(v) => self.run(&v).await,
        };
        queue.push(&reply)
    }

    async fn run(&mut self, v: &Value) -> Value {
        let command = match ClientCommand::parse(v) {
            Ok(c) => c,
            Err(message) => return error(message),
        };
        match command {
            ClientCommand::Subscribe(topic) => self.subscribe(&topic).await,
            ClientCommand::Unsubscribe(topic) => match self.topics.remove(&topic) {
                Some(handle) => {
                    handle.abort();
                    json!({"type": "unsubscribed", "topic": topic})
                }
                None => error(format!("not subscribed to {topic:?}")),
            },
            ClientCommand::Log(None) => {
                self.log = None;
                json!({"type": "log_level", "level": "off"})
            }
            ClientCommand::Log(Some(level)) => {
                let Some(bus) = &self.logs else {
                    return error("log lines are not available on this API");
                };
                // Replace (not add to) any earlier subscription, so the level really changes.
                self.log = None;
                self.log = Some(bus.subscribe(level));
                json!({"type": "log_level", "level": level.as_str()})
            }
            ClientCommand::Events(set) => {
                let reply = json!({"type": "events_filter", "kinds": set});
                self.kinds = Some(set);
                reply
            }
        }
    }

    async fn subscribe(&mut self, topic: &str) -> Value {
        if self.topics.contains_key(topic) {
            return json!({"type": "subscribed", "topic": topic});
        }
        if self.topics.len() >= MAX_TOPICS {
            return error(format!("at most {MAX_TOPICS} topics per client"));
        }
        let subscription = match self.node.subscribe(topic).await {
            Ok(s) => s,
            Err(e) => return error(e.to_string()),
        };
        let name = topic.to_string();
        let messages = subscription
            .map(move |m| {
                let message = json!({
                    "type": "pubsub",
                    "topic": name,
                    "from": m.from.map(|p| p.to_base58()),
                    "seqno": m.seqno,
                    "data": base64::engine::general_purpose::STANDARD.encode(&m.data),
                });
                (name.clone(), message)
            })
            .boxed();
        let (handle, registration) = AbortHandle::new_pair();
        self.pubsub.push(Abortable::new(messages, registration));
        self.topics.insert(topic.to_string(), handle);
        json!({"type": "subscribed", "topic": topic})
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for handle in self.topics.values() {
            handle.abort();
        }
    }
}

/// Writes the queue to the socket; on a close request, drops the queue and writes the close
/// frame after whatever was being written, giving the client [`CLOSE_GRACE`] to take it.
async fn write(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<(Message, usize)>,
    mut close: oneshot::Receiver<CloseFrame>,
    bytes: Arc<AtomicUsize>,
) {
    let frame = loop {
        let (message, len) = tokio::select! {
            biased;
            frame = &mut close => break frame.ok(),
            next = rx.recv() => match next {
                Some(m) => m,
                None => break (&mut close).await.ok(),
            },
        };
        tokio::select! {
            biased;
            frame = &mut close => break frame.ok(),
            sent = sink.send(message) => if sent.is_err() {
                return;
            },
        }
        bytes.fetch_sub(len, Ordering::Relaxed);
    };
    drop(rx);
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        let _ = sink.send(Message::Close(frame)).await;
        let _ = sink.close().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_subprotocols() {
        assert_eq!(
            authorization_from_protocol("bearer.s3cret").as_deref(),
            Some("Bearer s3cret")
        );
        assert_eq!(
            authorization_from_protocol("basic.dXNlcjpwYXNz").as_deref(),
            Some("Basic dXNlcjpwYXNz")
        );
        assert_eq!(authorization_from_protocol("cairn-events"), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("cairn-events, bearer.x"),
        );
        assert_eq!(offered_protocols(&h), ["cairn-events", "bearer.x"]);
    }
}
