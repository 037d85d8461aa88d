//! Text CID parsing (base58 v0, every multibase for v1): never panics, and a parsed CID
//! survives a round trip through its canonical text. Any bytes become text (lossily, so invalid
//! UTF-8 turns into multi-byte U+FFFD rather than being skipped): arbitrary UTF-8, not ASCII.
//! Run: `cargo +nightly fuzz run cid_string`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(cid) = cairn_blockstore::parse_cid_str(&text) {
        let again = cairn_blockstore::parse_cid_str(&cid.to_string()).expect("canonical form parses");
        assert_eq!(again, cid);
    }
});
