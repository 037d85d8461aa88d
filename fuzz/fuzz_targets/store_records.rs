//! The blockstore's on-disk records read back: arbitrary bytes as a block's index record (and as
//! its key and body) never make the store panic; every read answers a value or a typed error.
//! Input: [key length][key][record length][record][body], used as given and as UTF-8 text (lossily
//! converted, so multi-byte characters appear in every input).
//! Run: `cargo +nightly fuzz run store_records`.
#![no_main]
use std::sync::Arc;

use cairn_blockstore::engine::{Keyspace, MemoryEngine, StorageEngine};
use cairn_blockstore::{Blockstore, BlockstoreConfig, Cid, PinFilter};
use libfuzzer_sys::fuzz_target;

fn take<'a>(input: &mut &'a [u8]) -> &'a [u8] {
    let Some((&n, rest)) = input.split_first() else {
        return &[];
    };
    let (head, tail) = rest.split_at(usize::from(n).min(rest.len()));
    *input = tail;
    head
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for input in [data, text.as_bytes()] {
        check(input);
    }
});

fn check(input: &[u8]) {
    let mut input = input;
    let key = take(&mut input);
    let record = take(&mut input);
    let body = input;
    let engine = Arc::new(MemoryEngine::new());
    // Mark the store as indexed, so the record is read as written rather than rebuilt.
    let _ = engine.put(Keyspace::Meta, b"layout", &[2]);
    let _ = engine.put(Keyspace::Index, key, record);
    let _ = engine.put(Keyspace::Blocks, key, body);
    let store = Blockstore::with_engine(engine, BlockstoreConfig::default());
    let _ = store.stat();
    let _ = store.list().count();
    let _ = store.verify_each(|_, _| {});
    if let Ok(mh) = multihash::Multihash::<64>::from_bytes(key) {
        let cid = Cid::new_v1(0x55, mh);
        let _ = store.has(&cid);
        let _ = store.size(&cid);
        if let Ok(Some(block)) = store.get(&cid) {
            // Whatever is served verifies (reads verify by default).
            assert!(cairn_blockstore::verify(&cid, block.data()).is_ok());
        }
    }
    let _ = store.pins(PinFilter::All);
    let _ = store.gc();
}
