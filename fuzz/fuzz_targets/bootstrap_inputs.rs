//! Bootstrap inputs from users and peers: swarm.key files, bootstrap list entries, and pubsub
//! discovery records received from the network. None may panic; a parsed entry re-parses the same.
//! Run: `cargo +nightly fuzz run bootstrap_inputs`.
#![no_main]
use cairn_bootstrap::{BootstrapPeer, discovery, parse_swarm_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_swarm_key(data);
    let _ = discovery::decode_record(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(peer) = BootstrapPeer::parse(text) {
            assert_eq!(BootstrapPeer::parse(&peer.addr.to_string()).ok(), Some(peer));
        }
    }
});
