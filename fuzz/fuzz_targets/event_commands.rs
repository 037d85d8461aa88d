//! What a client of the event stream (`/api/v0/cairn/events`) sends: command frames (JSON text:
//! subscribe/unsubscribe, log levels, event filters) and the `Sec-WebSocket-Protocol` offers that
//! may carry its token. None may panic; a parsed command must hold what the frame said.
//! Input: arbitrary bytes, read as UTF-8 lossily. Run: `cargo +nightly fuzz run event_commands`.
#![no_main]
use axum::http::{HeaderMap, HeaderValue, header};
use cairn_rpc::events::{ClientCommand, authorization_from_protocol, offered_protocols};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        match ClientCommand::parse(&v) {
            Ok(ClientCommand::Subscribe(t)) | Ok(ClientCommand::Unsubscribe(t)) => {
                assert_eq!(v.get("topic").and_then(|x| x.as_str()), Some(t.as_str()));
            }
            Ok(_) => {}
            Err(message) => assert!(!message.is_empty()),
        }
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.append(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    for proto in offered_protocols(&headers) {
        assert!(!proto.is_empty() && proto == proto.trim());
        let _ = authorization_from_protocol(&proto);
    }
});
