//! Binary CID parsing: never panics, and whatever parses re-encodes to the same bytes.
//! Run: `cargo +nightly fuzz run cid_bytes`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cid) = cairn_blockstore::parse_cid_bytes(data) {
        assert_eq!(cid.to_bytes(), data);
        let text = cid.to_string();
        assert_eq!(cairn_blockstore::parse_cid_str(&text).ok(), Some(cid));
    }
});
