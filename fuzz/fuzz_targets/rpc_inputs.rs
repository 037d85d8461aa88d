//! What an RPC client sends: the query string (args and options, the global `offline` and
//! `timeout` among them), Go durations, pubsub multibase arguments,
//! pubsub topic names, the cairn-only config sections the RPC reads (`Cairn.Limits`,
//! `Cairn.TLS`, as JSON), multipart bodies, and the HTTP/1 request stream read before hyper
//! (`long_uri`). None may panic. Input: [selector][rest]; the rest is split at the first 0xff
//! into a query string (arbitrary UTF-8: converted lossily, so multi-byte characters appear) and a
//! multipart body. The whole input is also a connection's byte stream, which must come out the
//! same however it is split into reads. Run: `cargo +nightly fuzz run rpc_inputs`.
#![no_main]
use cairn_rpc::long_uri::rewrite_for_hyper;
use cairn_rpc::request::{CommandRequest, multibase_decode, parse_go_duration, parse_query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let whole = rewrite_for_hyper([rest]);
    let cut = usize::from(selector).min(rest.len());
    assert_eq!(whole, rewrite_for_hyper([&rest[..cut], &rest[cut..]]));
    assert_eq!(whole, rewrite_for_hyper(rest.chunks(3)));
    let split = rest.iter().position(|b| *b == 0xff).unwrap_or(rest.len());
    let (query, body) = rest.split_at(split);
    let query = String::from_utf8_lossy(query);
    let _ = parse_query(&query);
    let _ = multibase_decode(&query);
    // `Cairn.Limits` and `Cairn.TLS` from arbitrary JSON: an error, never a panic.
    if let Ok(section) = serde_json::from_str::<serde_json::Value>(&query) {
        let mut config = cairn_node_core::Config::default();
        config.extra.insert(
            "Cairn".into(),
            serde_json::json!({ "Limits": section.clone(), "TLS": section }),
        );
        let _ = cairn_rpc::Limits::from_config(&config);
        let _ = cairn_rpc::tls::TlsConfig::from_config(&config);
    }
    // Kubo's `timeout` option (a Go duration); CommandRequest::new below parses it too.
    let _ = parse_go_duration(&query);
    let content_type = match selector % 3 {
        0 => "multipart/form-data; boundary=fuzz",
        1 => "multipart/form-data",
        _ => "application/octet-stream",
    };
    let body = axum::body::Body::from(body.to_vec());
    if let Ok(mut req) = CommandRequest::new("block/put", Some(&query), Some(content_type), body) {
        let _ = req.flag(&["pin"], false);
        let _ = req.int(&["mhlen"], -1);
        let _ = req.opt(&["cid-codec"]);
        let _ = futures::executor::block_on(req.parts());
    }
});
