//! What a user or a peer hands the node as text: the config file, multiaddrs, peer ids and Go
//! durations and sizes. None may panic; a config that parses must survive a write/read round
//! trip. Any bytes become text (lossily, so invalid UTF-8 turns into multi-byte U+FFFD rather than
//! being skipped): arbitrary UTF-8, not ASCII. Run: `cargo +nightly fuzz run node_inputs`.
#![no_main]
use cairn_node_core::config::{Config, parse_go_duration, parse_size};
use cairn_node_core::{parse_multiaddr, parse_peer_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let path = std::path::Path::new("config");
    if let Ok(config) = Config::from_json(text, path) {
        let again = Config::from_json(&config.to_json(), path).expect("a written config reads back");
        assert_eq!(again, config);
    }
    let _ = parse_multiaddr(text);
    let _ = parse_peer_id(text);
    let _ = parse_go_duration(text);
    let _ = parse_size(text);
});
