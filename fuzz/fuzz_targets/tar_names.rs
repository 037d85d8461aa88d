//! `get`'s tar writer on arbitrary UTF-8 entry names: a name is accepted only if the archive
//! it produces extracts inside the output directory (no absolute path, no `..`, exactly one
//! more component than its parent). Run: `cargo +nightly fuzz run tar_names`.
#![no_main]
use std::path::Component;

use bytes::Bytes;
use cairn_blockstore::Block;
use cairn_unixfs::tar::{GetOptions, check_entry_name, get};
use cairn_unixfs::{BlockSource, BoxError, BoxFuture, Cid};
use futures::TryStreamExt;
use libfuzzer_sys::fuzz_target;

struct Blocks(Vec<Block>);

impl BlockSource for Blocks {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Bytes>, BoxError>> {
        let found = self.0.iter().find(|b| b.cid() == cid).map(|b| b.data().clone());
        Box::pin(async move { Ok(found) })
    }
}

fuzz_target!(|name: &str| {
    let accepted = check_entry_name(name).is_ok();
    if accepted {
        assert!(!name.is_empty() && !name.contains('/') && !name.contains('\0'));
        assert!(name != "." && name != "..");
    }
    // A UnixFS directory with one file entry of that name.
    let file = Block::from_data(0x55, b"x".to_vec()).unwrap();
    let dir = ipld_dagpb::PbNode {
        links: vec![ipld_dagpb::PbLink { cid: *file.cid(), name: Some(name.to_string()), size: Some(1) }],
        data: Some(Bytes::from_static(&[8, 1])),
    }
    .into_bytes();
    let dir = Block::from_data(0x70, dir).unwrap();
    let root = *dir.cid();
    let src = Blocks(vec![file, dir]);
    let opts = GetOptions { archive: false, compression: None, mtime: 0 };
    let out = futures::executor::block_on(async {
        let stream = get(&src, root, "out", opts).await.ok()?;
        stream.try_collect::<Vec<Bytes>>().await.ok()
    });
    let Some(chunks) = out else { return };
    assert!(accepted, "an archive was written for a refused name {name:?}");
    let tar_bytes = chunks.concat();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let mut comps = path.components();
        assert_eq!(comps.next(), Some(Component::Normal("out".as_ref())), "{path:?}");
        for c in comps {
            assert!(matches!(c, Component::Normal(_)), "{path:?} escapes");
        }
    }
});
