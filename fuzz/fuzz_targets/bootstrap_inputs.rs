//! Bootstrap inputs from users and peers: swarm.key files, bootstrap list entries, and pubsub
//! discovery records received from the network. None may panic; a parsed entry re-parses the same.
//! Every parser gets the raw bytes and arbitrary UTF-8 (the bytes converted lossily, so
//! multi-byte characters appear in every input); the text is also put under each swarm.key
//! header, so key bodies such as `a`, `â`, 61 hex digits are reached directly.
//! Run: `cargo +nightly fuzz run bootstrap_inputs`.
#![no_main]
use cairn_bootstrap::{BootstrapPeer, discovery, parse_swarm_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for input in [data, text.as_bytes()] {
        let _ = parse_swarm_key(input);
        let _ = discovery::decode_record(input);
    }
    for encoding in ["/base16/", "/base64/", "/bin/"] {
        let key = format!("/key/swarm/psk/1.0.0/\n{encoding}\n{text}");
        let _ = parse_swarm_key(key.as_bytes());
    }
    if let Ok(peer) = BootstrapPeer::parse(&text) {
        assert_eq!(BootstrapPeer::parse(&peer.addr.to_string()).ok(), Some(peer));
    }
});
