//! Binary CID parsing: never panics, and whatever parses re-encodes to the same bytes. The same
//! input also goes to the binary and the text parser as UTF-8 (lossily converted, so multi-byte
//! characters appear in every input). Run: `cargo +nightly fuzz run cid_bytes`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for input in [data, text.as_bytes()] {
        if let Ok(cid) = cairn_blockstore::parse_cid_bytes(input) {
            assert_eq!(cid.to_bytes(), input);
            let text = cid.to_string();
            assert_eq!(cairn_blockstore::parse_cid_str(&text).ok(), Some(cid));
        }
    }
    let _ = cairn_blockstore::parse_cid_str(&text);
});
