//! What a user or a peer hands the node as text: the config file, `config KEY VALUE` edits
//! (string, `--json` and `--bool` values; `config/replace`; profile names), multiaddrs, peer ids
//! and Go durations and sizes. None may panic; a config that parses must survive a write/read
//! round trip, and an accepted edit must leave a config that reads back. Any bytes become text (lossily, so invalid UTF-8 turns into multi-byte U+FFFD rather than
//! being skipped): arbitrary UTF-8, not ASCII. Run: `cargo +nightly fuzz run node_inputs`.
#![no_main]
use cairn_node_core::config::{Config, ConfigEdit, ValueKind, parse_go_duration, parse_size};
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
    // `config KEY VALUE`: the key up to the first newline, the value after it.
    let (key, value) = text.split_once('\n').unwrap_or((text, ""));
    let edit = ConfigEdit::new(&Config::default());
    let _ = edit.get(key);
    for kind in [ValueKind::String, ValueKind::Json, ValueKind::Bool] {
        if let Ok(done) = edit.set(key, value, kind) {
            let json = done.config.to_json();
            Config::from_json(&json, path).expect("an edited config reads back");
        }
    }
    let _ = edit.replace(text);
    let _ = edit.apply_profile(key);
    let _ = parse_multiaddr(text);
    let _ = parse_peer_id(text);
    let _ = parse_go_duration(text);
    let _ = parse_size(text);
});
