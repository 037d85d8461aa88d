//! Block verification with an arbitrary CID (any hash code, any digest) and arbitrary data:
//! never panics, and a block that verifies hashes back to the same CID.
//! Input: [cid length][cid bytes][data], used as given and as UTF-8 text (lossily converted, so
//! multi-byte characters appear in every input). Run: `cargo +nightly fuzz run block_verify`.
#![no_main]
use cairn_blockstore::{Block, Cid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for input in [data, text.as_bytes()] {
        check(input);
    }
});

fn check(input: &[u8]) {
    let Some((&n, rest)) = input.split_first() else { return };
    let (cid_bytes, data) = rest.split_at(usize::from(n).min(rest.len()));
    let cid = match Cid::try_from(cid_bytes) {
        Ok(cid) => cid,
        // Also try the bytes as a bare multihash with any code, to reach every hash function.
        Err(_) => match multihash::Multihash::<64>::from_bytes(cid_bytes) {
            Ok(mh) => Cid::new_v1(0x55, mh),
            Err(_) => return,
        },
    };
    if let Ok(block) = Block::new(cid, data.to_vec()) {
        assert_eq!(block.cid(), &cid);
        assert!(cairn_blockstore::verify(&cid, data).is_ok());
    }
}
