//! MFS path parsing (`cairn_unixfs::mfs::parse_path`, Kubo's `checkPath`) on arbitrary bytes
//! and on the same input as UTF-8: it must return `Ok` or `Err`, never panic; an accepted path
//! has only real components (non-empty, no `/`, not `.`/`..`) within the limits, and its
//! printed form parses back to itself. Short accepted paths then go through `mkdir -p`,
//! `write --create`, `stat`, `ls` and `rm -r` on an in-memory MFS, which must not panic either.
//! Run: `cargo +nightly fuzz run mfs_path`.
#![no_main]
use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use cairn_blockstore::Block;
use cairn_unixfs::mfs::{
    MAX_PATH_COMPONENTS, MAX_PATH_LEN, Mfs, MfsPath, MkdirOptions, WriteOptions, parse_path,
    parse_path_bytes,
};
use cairn_unixfs::{BlockSink, BlockSource, BoxError, BoxFuture, Cid};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Mem(Mutex<HashMap<Cid, Bytes>>);

impl BlockSource for Mem {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Bytes>, BoxError>> {
        let b = self.0.lock().unwrap().get(cid).cloned();
        Box::pin(async move { Ok(b) })
    }
}

impl BlockSink for Mem {
    fn put_many(&self, blocks: Vec<Block>) -> BoxFuture<'_, Result<(), BoxError>> {
        let mut m = self.0.lock().unwrap();
        for b in blocks {
            m.insert(*b.cid(), b.data().clone());
        }
        Box::pin(async { Ok(()) })
    }
}

fn check(p: &MfsPath, input: &str) {
    assert!(input.len() <= MAX_PATH_LEN);
    assert!(p.components().len() <= MAX_PATH_COMPONENTS);
    for c in p.components() {
        assert!(!c.is_empty() && !c.contains('/') && c != "." && c != "..");
        assert!(!c.contains('\0'));
    }
    let again = parse_path(&p.to_string()).expect("a printed path parses");
    assert_eq!(&again, p);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse_path_bytes(data) {
        check(&p, std::str::from_utf8(data).unwrap());
    }
    let text = String::from_utf8_lossy(data);
    let Ok(p) = parse_path(&text) else { return };
    check(&p, &text);
    if p.components().len() > 6 || text.len() > 200 {
        return;
    }
    futures::executor::block_on(async {
        let store = Mem::default();
        let mut mfs = Mfs::init(&store).await.unwrap();
        let mut mk = MkdirOptions::default();
        mk.parents = true;
        let _ = mfs.mkdir(&store, &text, &mk).await;
        let mut w = WriteOptions::default();
        w.create = true;
        w.parents = true;
        let file = format!("{text}/f");
        let _ = mfs.write(&store, &file, data, &w).await;
        let _ = mfs.stat(&store, &text).await;
        let _ = mfs.ls(&store, &text, true).await;
        let _ = mfs.read(&store, &file, 0, None).await;
        let _ = mfs.rm(&store, &text, true, false).await;
    });
});
