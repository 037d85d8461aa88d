//! What a user or a peer hands the node as text: the config file, multiaddrs, peer ids and Go
//! durations. None may panic; a config that parses must survive a write/read round trip.
//! Run: `cargo +nightly fuzz run node_inputs`.
#![no_main]
use cairn_node_core::config::{Config, parse_go_duration};
use cairn_node_core::{parse_multiaddr, parse_peer_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::path::Path::new("config");
    if let Ok(config) = Config::from_json(text, path) {
        let again = Config::from_json(&config.to_json(), path).expect("a written config reads back");
        assert_eq!(again, config);
    }
    let _ = parse_multiaddr(text);
    let _ = parse_peer_id(text);
    let _ = parse_go_duration(text);
});
