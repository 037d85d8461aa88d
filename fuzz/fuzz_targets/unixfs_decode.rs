//! The exporter's decode path on arbitrary bytes: the block is served under its real CID as
//! dag-pb, raw, dag-cbor or dag-json (first byte), and `cat`, `ls`, `resolve`, the dag codecs
//! and the low-level UnixFS decoder must return, never panic. Run:
//! `cargo +nightly fuzz run unixfs_decode`.
#![no_main]
use bytes::Bytes;
use cairn_blockstore::Block;
use cairn_unixfs::{BlockSource, BoxError, BoxFuture, Cid, codec, exporter};
use futures::TryStreamExt;
use libfuzzer_sys::fuzz_target;

/// One block; every other CID is missing.
struct One(Block);

impl BlockSource for One {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Bytes>, BoxError>> {
        let found = (cid == self.0.cid()).then(|| self.0.data().clone());
        Box::pin(async move { Ok(found) })
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, data)) = input.split_first() else { return };
    let codec = [0x70, 0x55, 0x71, 0x0129][(which & 3) as usize];
    exporter::fuzz_decode(codec, data);
    let Ok(block) = Block::from_data(codec, data.to_vec()) else { return };
    let cid = *block.cid();
    let src = One(block);
    futures::executor::block_on(async {
        if let Ok((_, s)) = exporter::cat(&src, &cid, u64::from(which >> 2), None).await {
            let _ = s.try_collect::<Vec<_>>().await;
        }
        let _ = exporter::ls_all(&src, &cid, true).await;
        let _ = exporter::resolve(&src, &cid, &["a".into(), "0".into()]).await;
        let _ = codec::dag_get(&src, &format!("/ipfs/{cid}/x"), 0x0129).await;
    });
    for out in [0x70, 0x55, 0x71, 0x0129] {
        let _ = codec::transcode(codec, data, out);
    }
});
