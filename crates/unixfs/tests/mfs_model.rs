//! MFS (`cairn_unixfs::mfs`) against Kubo: known-answer CIDs from Kubo 0.22's sharness
//! `t0250-files-api.sh`, and a seeded random model test.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use cairn_unixfs::mfs::{EMPTY_DIR_CID, EMPTY_FILE_CID, Mfs, MfsError, MkdirOptions, WriteOptions};
use cairn_unixfs::{Block, BlockSink, BlockSource, BoxError, BoxFuture, Cid};

/// An in-memory block store.
#[derive(Default)]
struct Mem {
    blocks: Mutex<HashMap<Cid, Bytes>>,
}

impl BlockSource for Mem {
    fn get<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Result<Option<Bytes>, BoxError>> {
        let b = self.blocks.lock().unwrap().get(cid).cloned();
        Box::pin(async move { Ok(b) })
    }
}

impl BlockSink for Mem {
    fn put_many(&self, blocks: Vec<Block>) -> BoxFuture<'_, Result<(), BoxError>> {
        let mut m = self.blocks.lock().unwrap();
        for b in blocks {
            m.insert(*b.cid(), b.data().clone());
        }
        Box::pin(async { Ok(()) })
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn wopts(f: impl FnOnce(&mut WriteOptions)) -> WriteOptions {
    let mut o = WriteOptions::default();
    f(&mut o);
    o
}

#[test]
fn empty_root_and_empty_file_are_kubos() {
    rt().block_on(async {
        let store = Mem::default();
        let mut mfs = Mfs::init(&store).await.unwrap();
        assert_eq!(mfs.root().to_string(), EMPTY_DIR_CID);
        let st = mfs.stat(&store, "/").await.unwrap();
        assert_eq!(
            (st.size, st.cumulative_size, st.blocks, st.kind),
            (0, 4, 0, "directory")
        );
        mfs.write(&store, "/e", b"", &wopts(|o| o.create = true))
            .await
            .unwrap();
        assert_eq!(
            mfs.stat(&store, "/e").await.unwrap().hash.to_string(),
            EMPTY_FILE_CID
        );
        assert_eq!(mfs.read(&store, "/e", 0, None).await.unwrap(), b"");
    });
}

/// `test_files_api` variants: (args, raw leaves, FILE_HASH, TRUNC_HASH).
const VARIANTS: &[(Option<u8>, Option<bool>, &str, &str)] = &[
    (
        None,
        None,
        "QmQdQt9qooenjeaNhiKHF3hBvmNteB4MQBtgu3jxgf9c7i",
        "QmPVnT9gocPbqzN4G6SMp8vAPyzcjDbUJrNdKgzQquuDg4",
    ),
    (
        None,
        Some(true),
        "QmRCgHeoKxCqK2Es6M6nPUDVWz19yNQPnsXGsXeuTkSKpN",
        "QmckstrVxJuecVD1FHUiURJiU9aPURZWJieeBVHJPACj8L",
    ),
    (
        Some(1),
        None,
        "bafybeibkrazpbejqh3qun7xfnsl7yofl74o4jwhxebpmtrcpavebokuqtm",
        "bafybeigwhb3q36yrm37jv5fo2ap6r6eyohckqrxmlejrenex4xlnuxiy3e",
    ),
];

#[test]
fn sharness_write_at_offset_file_hash() {
    rt().block_on(async {
        for &(v, raw, file_hash, _) in VARIANTS {
            let store = Mem::default();
            let mut mfs = Mfs::init(&store).await.unwrap();
            let o = |create: bool, offset: u64| {
                wopts(|o| {
                    o.create = create;
                    o.offset = offset;
                    o.cid_version = v;
                    o.raw_leaves = raw;
                })
            };
            mfs.mkdir(&store, "/cats", &MkdirOptions::default())
                .await
                .unwrap();
            mfs.write(&store, "/cats/ipfs", b"ipfs rocks\n", &o(true, 0))
                .await
                .unwrap();
            mfs.write(&store, "/cats/ipfs", b"is super cool\n", &o(false, 5))
                .await
                .unwrap();
            assert_eq!(
                mfs.read(&store, "/cats/ipfs", 0, None).await.unwrap(),
                b"ipfs is super cool\n"
            );
            assert_eq!(
                mfs.stat(&store, "/cats/ipfs")
                    .await
                    .unwrap()
                    .hash
                    .to_string(),
                file_hash,
                "{v:?} {raw:?}"
            );
        }
    });
}

#[test]
fn sharness_truncate_hash() {
    rt().block_on(async {
        for &(v, raw, _, trunc_hash) in VARIANTS {
            let store = Mem::default();
            let mut mfs = Mfs::init(&store).await.unwrap();
            let o = |create: bool, truncate: bool| {
                wopts(|o| {
                    o.create = create;
                    o.truncate = truncate;
                    o.cid_version = v;
                    o.raw_leaves = raw;
                })
            };
            mfs.write(&store, "/cats", b"some content\n", &o(true, false))
                .await
                .unwrap();
            mfs.write(&store, "/cats", b"fish\n", &o(false, true))
                .await
                .unwrap();
            assert_eq!(mfs.read(&store, "/cats", 0, None).await.unwrap(), b"fish\n");
            assert_eq!(
                mfs.stat(&store, "/cats").await.unwrap().hash.to_string(),
                trunc_hash,
                "{v:?} {raw:?}"
            );
        }
    });
}

#[test]
fn sharness_sparse_write() {
    rt().block_on(async {
        let store = Mem::default();
        let mut mfs = Mfs::init(&store).await.unwrap();
        mfs.write(&store, "/fun", b"foobar\n", &wopts(|o| o.create = true))
            .await
            .unwrap();
        mfs.write(&store, "/fun", b"blah\n", &wopts(|o| o.offset = 50))
            .await
            .unwrap();
        let mut want = b"foobar\n".to_vec();
        want.resize(50, 0);
        want.extend_from_slice(b"blah\n");
        assert_eq!(mfs.read(&store, "/fun", 0, None).await.unwrap(), want);
    });
}

#[test]
fn kubo_errors() {
    rt().block_on(async {
        let store = Mem::default();
        let mut mfs = Mfs::init(&store).await.unwrap();
        let err = |r: Result<(), MfsError>| r.unwrap_err().to_string();
        assert_eq!(
            err(mfs.mkdir(&store, "", &MkdirOptions::default()).await),
            "paths must not be empty"
        );
        assert_eq!(
            err(mfs.mkdir(&store, "a", &MkdirOptions::default()).await),
            "paths must start with a leading slash"
        );
        assert_eq!(
            err(mfs.mkdir(&store, "/", &MkdirOptions::default()).await),
            "cannot create directory '/': Already exists"
        );
        mfs.mkdir(&store, "/a", &MkdirOptions::default())
            .await
            .unwrap();
        assert_eq!(
            err(mfs.mkdir(&store, "/a", &MkdirOptions::default()).await),
            "file already exists"
        );
        assert_eq!(
            err(mfs.mkdir(&store, "/x/y", &MkdirOptions::default()).await),
            "file does not exist"
        );
        assert_eq!(
            err(mfs
                .write(&store, "/a", b"x", &WriteOptions::default())
                .await),
            "/a was not a file"
        );
        assert_eq!(
            err(mfs
                .write(&store, "/nope", b"x", &WriteOptions::default())
                .await),
            "file does not exist"
        );
        assert_eq!(
            err(mfs.rm(&store, "/", true, false).await),
            "cannot delete root"
        );
        assert_eq!(
            err(mfs.rm(&store, "/a", false, false).await),
            "path is a directory, use -r to remove directories"
        );
        mfs.write(&store, "/f", b"foo\n", &wopts(|o| o.create = true))
            .await
            .unwrap();
        assert_eq!(
            mfs.read(&store, "/f", 5, None)
                .await
                .unwrap_err()
                .to_string(),
            "offset was past end of file (5 > 4)"
        );
        assert_eq!(mfs.read(&store, "/f", 1, None).await.unwrap(), b"oo\n");
        assert_eq!(mfs.read(&store, "/f", 0, Some(2)).await.unwrap(), b"fo");
        assert_eq!(
            mfs.ls(&store, "/f/g", false).await.unwrap_err().to_string(),
            "cannot access f/g: Not a directory"
        );
        mfs.cp(&store, "/f", "/a/", false).await.unwrap();
        assert_eq!(
            err(mfs.cp(&store, "/f", "/a/f", false).await),
            "cp: cannot put node in path /a/f: directory already has entry by that name"
        );
        assert_eq!(
            err(mfs.chcid(&store, "/f", Some(1), None).await),
            "can only update directories"
        );
        let root = mfs.root();
        mfs.rm(&store, "/nope", false, true).await.unwrap();
        mfs.rm(&store, "/deeply/nope", false, true).await.unwrap();
        assert_eq!(mfs.root(), root);
    });
}
