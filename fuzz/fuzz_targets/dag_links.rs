//! DAG link extraction for dag-pb and dag-cbor from arbitrary bytes: never panics (deep nesting
//! included). The first byte picks the codec; the block is the rest as given and as UTF-8 text
//! (lossily converted, so multi-byte characters appear in every input).
//! Run: `cargo +nightly fuzz run dag_links`.
#![no_main]
use cairn_blockstore::Block;
use cairn_blockstore::codec::{DAG_CBOR, DAG_PB, links};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&which, data)) = input.split_first() else { return };
    let codec = if which & 1 == 0 { DAG_PB } else { DAG_CBOR };
    let text = String::from_utf8_lossy(data);
    for input in [data, text.as_bytes()] {
        let block = Block::from_data(codec, input.to_vec()).expect("known codec");
        let _ = links(block.cid(), block.data());
    }
});
