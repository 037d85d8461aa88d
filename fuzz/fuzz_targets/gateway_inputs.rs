//! What a gateway client sends: the query string (`format`, `dag-scope`, `entity-bytes`,
//! `car-*`, `filename`, `download`), `Accept` and `Range` headers, and the file names and first
//! bytes the content type is sniffed from; plus the `Gateway` config section as JSON. None may
//! panic, and the ranges they resolve to must lie inside the file. Input: [selector][rest]; the
//! rest is the text (arbitrary UTF-8, converted lossily) and, as bytes, the sniffed head.
//! Run: `cargo +nightly fuzz run gateway_inputs`.
#![no_main]
use axum::http::{HeaderMap, HeaderValue, header};
use cairn_gateway::request::{ByteRange, Query, byte_range, negotiate};
use cairn_node_core::unixfs::scope::{DagScope, EntityBytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let size = [0u64, 1, 1023, 1 << 20, u64::MAX][usize::from(selector % 5)];

    let query = Query::parse(Some(&text));
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&text) {
        headers.insert(header::ACCEPT, v.clone());
        headers.insert(header::RANGE, v);
    }
    let _ = negotiate(&query, &headers);
    let _ = negotiate(&query, &HeaderMap::new());
    if let ByteRange::Part { start, end } = byte_range(&headers, size) {
        assert!(start < end && end <= size, "{start}..{end} of {size}");
    }
    let _ = text.parse::<DagScope>();
    if let Ok(bytes) = text.parse::<EntityBytes>() {
        let r = bytes.resolve(size);
        assert!(r.start <= r.end && r.end <= size, "{r:?} of {size}");
    }
    let kind = cairn_gateway::sniff::content_type(&text, rest);
    assert!(!kind.is_empty());

    if let Ok(section) = serde_json::from_str::<serde_json::Value>(&text) {
        let mut config = cairn_node_core::Config::default();
        config.extra.insert("Gateway".into(), section);
        let _ = cairn_gateway::GatewayConfig::from_config(&config);
    }
});
