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

/// `ipfs add [--raw-leaves]` of a small file, stored.
async fn add(store: &Mem, data: &[u8], raw_leaves: bool) -> Cid {
    let mut o = cairn_unixfs::ImportOptions::default();
    if raw_leaves {
        o.set("raw-leaves", "true").unwrap();
    }
    let mut f = cairn_unixfs::FileImporter::new(&o).unwrap();
    let mut blocks = f.push(data).unwrap();
    let (res, last) = f.finish().unwrap();
    blocks.extend(last);
    store.put_many(blocks).await.unwrap();
    res.cid
}

/// The mutating steps of t0250's `test_files_api` up to the `no-flush` write, on `mfs`;
/// returns (FILE_HASH, CATS_HASH, ROOT_HASH) as the test reads them.
async fn test_files_api(
    store: &Mem,
    mfs: &mut Mfs,
    cid_version: Option<u8>,
    hash: Option<&str>,
    raw: Option<bool>,
    files: [Cid; 3],
) -> (String, String, String) {
    let mk = |parents: bool| {
        let mut o = MkdirOptions::default();
        o.parents = parents;
        o.cid_version = cid_version;
        o.hash = hash.map(str::to_string);
        o
    };
    let w = |create: bool, offset: u64| {
        wopts(|o| {
            o.create = create;
            o.offset = offset;
            o.cid_version = cid_version;
            o.hash = hash.map(str::to_string);
            o.raw_leaves = raw;
        })
    };
    let [f1, f2, f3] = files.map(|c| format!("/ipfs/{c}"));
    mfs.mkdir(store, "/cats", &mk(false)).await.unwrap();
    assert!(mfs.mkdir(store, "/", &mk(false)).await.is_err());
    mfs.cp(store, &f1, "/cats/file1", false).await.unwrap();
    mfs.cp(store, &f2, "/file2", false).await.unwrap();
    mfs.mkdir(store, "/cats/this/is/a/dir", &mk(true))
        .await
        .unwrap();
    mfs.cp(store, &f3, "/cats/this/is/a/dir/file3", false)
        .await
        .unwrap();
    mfs.cp(store, &f3, "/cats/some/other/dir/file3", true)
        .await
        .unwrap();
    assert_eq!(
        mfs.read(store, "/cats/some/other/dir/file3", 0, None)
            .await
            .unwrap(),
        b"baz\n"
    );
    mfs.rm(store, "/cats/some", true, false).await.unwrap();
    mfs.rm(store, "/cats/this/is/a/dir/file3", false, false)
        .await
        .unwrap();
    mfs.rm(store, "/cats/this/is/a/dir", true, false)
        .await
        .unwrap();
    mfs.rm(store, "/file2", false, false).await.unwrap();
    let root = mfs.root();
    assert!(mfs.rm(store, "/", true, false).await.is_err());
    assert_eq!(mfs.root(), root);
    mfs.write(store, "/cats/ipfs", b"ipfs rocks\n", &w(true, 0))
        .await
        .unwrap();
    mfs.write(store, "/cats/ipfs", b"is super cool\n", &w(false, 5))
        .await
        .unwrap();
    let file_hash = mfs
        .stat(store, "/cats/ipfs")
        .await
        .unwrap()
        .hash
        .to_string();
    mfs.write(store, "/fun", b"foobar\n", &w(true, 0))
        .await
        .unwrap();
    mfs.write(store, "/fun", b"blah\n", &w(false, 50))
        .await
        .unwrap();
    mfs.rm(store, "/fun", false, false).await.unwrap();
    assert!(mfs.write(store, "/cats", b"x", &w(false, 0)).await.is_err());
    assert!(
        mfs.write(store, "/cats/bar/", b"x", &w(false, 0))
            .await
            .is_err()
    );
    mfs.write(store, "/cats/walrus", b"testing\n", &w(true, 0))
        .await
        .unwrap();
    let cats = mfs.stat(store, "/cats").await.unwrap().hash.to_string();
    let root = mfs.root().to_string();
    // The rest of test_files_api: mv, cleanup.
    mfs.mv(store, "/cats/this/is", "/cats/").await.unwrap();
    mfs.mv(store, "/cats/is", "/").await.unwrap();
    mfs.mv(store, "/is", "/cats").await.unwrap();
    let names: Vec<String> = mfs
        .ls(store, "/cats", false)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["file1", "ipfs", "is", "this", "walrus"]);
    assert!(mfs.ls(store, "/cats/this", false).await.unwrap().is_empty());
    mfs.rm(store, "/cats", true, false).await.unwrap();
    assert!(mfs.ls(store, "/", false).await.unwrap().is_empty());
    (file_hash, cats, root)
}

#[test]
fn sharness_files_api_root_hashes() {
    rt().block_on(async {
        let store = Mem::default();
        let plain = [
            add(&store, b"foo\n", false).await,
            add(&store, b"bar\n", false).await,
            add(&store, b"baz\n", false).await,
        ];
        let raw = [
            add(&store, b"foo\n", true).await,
            add(&store, b"bar\n", true).await,
            add(&store, b"baz\n", true).await,
        ];
        let mut mfs = Mfs::init(&store).await.unwrap();
        let got = test_files_api(&store, &mut mfs, None, None, None, plain).await;
        assert_eq!(
            got,
            (
                "QmQdQt9qooenjeaNhiKHF3hBvmNteB4MQBtgu3jxgf9c7i".into(),
                "Qma88m8ErTGkZHbBWGqy1C7VmEmX8wwNDWNpGyCaNmEgwC".into(),
                "QmcwKfTMCT7AaeiD92hWjnZn9b6eh9NxnhfSzN5x2vnDpt".into()
            ),
            "default"
        );
        let got = test_files_api(&store, &mut mfs, None, None, None, raw).await;
        assert_eq!(
            (got.1.as_str(), got.2.as_str()),
            (
                "QmPhPkmtUGGi8ySPHoPu1qbfryLJKKq1GYxpgLyyCruvGe",
                "QmTpKiKcAj4sbeesN6vrs5w3QeVmd4QmGpxRL81hHut4dZ"
            ),
            "partial raw-leaves"
        );
        let got = test_files_api(&store, &mut mfs, None, None, Some(true), raw).await;
        assert_eq!(
            got,
            (
                "QmRCgHeoKxCqK2Es6M6nPUDVWz19yNQPnsXGsXeuTkSKpN".into(),
                "QmPqWDEg7NoWRX8Y4vvYjZtmdg5umbfsTQ9zwNr12JoLmt".into(),
                "QmW3dMSU6VNd1mEdpk9S3ZYRuR1YwwoXjGaZhkyK6ru9YU".into()
            ),
            "raw-leaves"
        );
        let got = test_files_api(&store, &mut mfs, Some(1), None, None, raw).await;
        assert_eq!(
            got,
            (
                "bafybeibkrazpbejqh3qun7xfnsl7yofl74o4jwhxebpmtrcpavebokuqtm".into(),
                "bafybeig4cpvfu2qwwo3u4ffazhqdhyynfhnxqkzvbhrdbamauthf5mfpuq".into(),
                "QmageRWxC7wWjPv5p36NeAgBAiFdBHaNfxAehBSwzNech2".into()
            ),
            "cidv1"
        );
        mfs.chcid(&store, "/", Some(1), None).await.unwrap();
        assert_eq!(
            mfs.root().to_string(),
            "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
        );
        let got = test_files_api(&store, &mut mfs, None, None, None, raw).await;
        assert_eq!(
            got,
            (
                "bafybeibkrazpbejqh3qun7xfnsl7yofl74o4jwhxebpmtrcpavebokuqtm".into(),
                "bafybeig4cpvfu2qwwo3u4ffazhqdhyynfhnxqkzvbhrdbamauthf5mfpuq".into(),
                "bafybeifxnoetaa2jetwmxubv3gqiyaknnujwkkkhdeua63kulm63dcr5wu".into()
            ),
            "cidv1 root"
        );
        mfs.chcid(&store, "/", None, Some("blake2b-256"))
            .await
            .unwrap();
        assert_eq!(
            mfs.root().to_string(),
            "bafykbzacebugfutjir6qie7apo5shpry32ruwfi762uytd5g3u2gk7tpscndq"
        );
        let got = test_files_api(&store, &mut mfs, None, None, None, raw).await;
        assert_eq!(
            got,
            (
                "bafykbzaceca45w2i3o3q3ctqsezdv5koakz7sxsw37ygqjg4w54m2bshzevxy".into(),
                "bafykbzacebhpn7rtcjjc5oa4zgzivhs7a6e2tq4uk4px42bubnmhpndhqtjig".into(),
                "bafykbzaceb6jv27itwfun6wsrbaxahpqthh5be2bllsjtb3qpmly3vji4mlfk".into()
            ),
            "blake2b-256 root"
        );
        mfs.chcid(&store, "/", Some(0), None).await.unwrap();
        assert_eq!(mfs.root().to_string(), EMPTY_DIR_CID);
    });
}
