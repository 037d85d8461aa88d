//! IPNS records, routing keys and names, fed arbitrary bytes: never panics. A record that decodes
//! keeps its exact bytes and compares equal to itself; validation (against a fixed ed25519 name
//! and against the name of a routing key cut from the input) only ever returns an error; a
//! routing key that parses prints back to the same bytes; a name that parses prints (base36
//! CIDv1) to a string that parses to the same name. The same bytes also go in as UTF-8 text
//! (lossily converted). Run: `cargo +nightly fuzz run ipns_record`.
#![no_main]
use std::cmp::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use cairn_ipns::{
    IpnsRecord, Name, compare, peer_from_routing_key, routing_key, validate, validate_public_key_record,
    validate_routing_record,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for input in [data, text.as_bytes()] {
        check(input);
    }
    if let Ok(name) = Name::parse(&text) {
        let printed = name.to_string();
        assert!(printed.starts_with('k'));
        assert_eq!(Name::parse(&printed).ok(), Some(name));
        assert_eq!(Name::parse(&name.to_path()).ok(), Some(name));
    }
});

fn check(input: &[u8]) {
    // 2026-12-01T00:00:00Z: fixed, so a crash reproduces.
    let now = UNIX_EPOCH + Duration::from_secs(1_796_083_200);
    let fixed = Name::parse("12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d").expect("a valid name");
    if let Ok(record) = IpnsRecord::decode(input) {
        assert_eq!(record.as_bytes(), input);
        assert_eq!(compare(&record, &record), Ordering::Equal);
        let _ = validate(&record, &fixed.peer_id(), now);
        let _ = record.validity();
        let _ = record.value_path();
        let _ = record.ttl();
    }
    if let Ok(peer) = peer_from_routing_key(input) {
        assert_eq!(routing_key(&peer), input);
    }
    // The first byte says how long a routing key is, the rest is the value stored under it.
    if let Some((&len, rest)) = input.split_first() {
        let (key, value) = rest.split_at(usize::from(len).min(rest.len()));
        if let Ok(record) = validate_routing_record(key, value, now) {
            assert_eq!(record.as_bytes(), value);
        }
        let _ = validate_public_key_record(key, value);
    }
}
