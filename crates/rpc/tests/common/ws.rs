//! A WebSocket client for `/api/v0/cairn/events` (tokio-tungstenite).

use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Api;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any single expected message may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// Opens the event stream with extra request headers.
pub async fn open(
    api: &Api,
    headers: &[(&str, &str)],
) -> Result<(Ws, Option<String>), tungstenite::Error> {
    let mut request = format!("ws://127.0.0.1:{}/api/v0/cairn/events", api.port)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await?;
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["peer"], api.node.peer_id().to_base58());
    Ok((ws, protocol))
}

/// The next JSON message (pings and pongs skipped).
pub async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no message in time")
            .expect("stream ended")
            .expect("socket error");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads until a message matches (others are skipped).
pub async fn until(ws: &mut Ws, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = tokio::time::timeout_at(deadline, next(ws))
            .await
            .unwrap_or_else(|_| panic!("never saw {what}"));
        if matches(&v) {
            return v;
        }
    }
}

pub async fn command(ws: &mut Ws, c: Value) -> Value {
    ws.send(Message::Text(c.to_string().into())).await.unwrap();
    until(ws, "a command answer", |v| {
        [
            "subscribed",
            "unsubscribed",
            "log_level",
            "events_filter",
            "error",
        ]
        .contains(&v["type"].as_str().unwrap_or(""))
    })
    .await
}

pub fn u(text: &str) -> String {
    format!(
        "u{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    )
}
