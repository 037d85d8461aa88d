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

// ---------------------------------------------------------------------------------------------
// The model test: a seeded random script run against `Mfs` and against an independent model.
//
// The model keeps the tree (names to directories and files) and, per file, the leaves its write
// history implies (boxo's DagModifier keeps leaf boundaries: an overwrite changes bytes in place,
// an append adds 256 KiB leaves, a gap adds 4096-byte zero leaves, a truncate to 0 keeps the
// leading empty leaves and cuts the first non-empty one to an empty leaf). Expected CIDs come
// from the crate's importer: the leaf sequence through `FileImporter`'s trickle layout, and
// directories through `DirectoryBuilder` from their children's CIDs. Files stay under 348
// leaves, below which boxo's trickle `Append` and the importer's `Layout` give the same tree.
// ---------------------------------------------------------------------------------------------

use std::collections::BTreeMap;

use cairn_unixfs::importer::{DirectoryBuilder, FileImporter, ImportOptions};
use cairn_unixfs::mfs::EntryType;

/// One leaf of a model file.
#[derive(Debug, Clone, PartialEq)]
enum Leaf {
    /// A leaf with these bytes.
    Data(Vec<u8>),
    /// A leaf truncated to nothing (for dag-pb leaves boxo keeps an empty `Data` field and
    /// gives it a CIDv0).
    Trunc,
}

impl Leaf {
    fn len(&self) -> usize {
        match self {
            Leaf::Data(d) => d.len(),
            Leaf::Trunc => 0,
        }
    }
}

#[derive(Debug, Clone)]
struct MFile {
    /// CIDv1 (then raw leaves), else CIDv0 with dag-pb leaves.
    v1: bool,
    leaves: Vec<Leaf>,
    /// The expected (CID, cumulative size), once computed.
    cache: Option<(Cid, u64)>,
}

#[derive(Debug, Clone)]
struct MDir {
    v1: bool,
    entries: BTreeMap<String, MNode>,
}

#[derive(Debug, Clone)]
enum MNode {
    Dir(MDir),
    File(MFile),
}

/// A dag-pb UnixFS `Raw` leaf with an empty `Data` field and `filesize` 0, under CIDv0.
fn trunc_leaf_block() -> Block {
    // PBNode { Data: Data { Type: Raw, Data: "", filesize: 0 } }
    Block::from_prefix(
        cid::Version::V0,
        0x70,
        0x12,
        32,
        vec![0x0a, 0x06, 0x08, 0x00, 0x12, 0x00, 0x18, 0x00],
    )
    .unwrap()
}

impl MFile {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in &self.leaves {
            if let Leaf::Data(d) = l {
                out.extend_from_slice(d);
            }
        }
        out
    }

    fn size(&self) -> usize {
        self.leaves.iter().map(Leaf::len).sum()
    }

    /// The expected CID: the leaf sequence through the importer's trickle layout.
    fn cid(&mut self) -> (Cid, u64) {
        if let Some(c) = self.cache {
            return c;
        }
        let mut o = ImportOptions::default();
        o.set("trickle", "true").unwrap();
        o.set("cid-version", if self.v1 { "1" } else { "0" })
            .unwrap();
        let mut f = FileImporter::new(&o).unwrap();
        let trunc = trunc_leaf_block();
        for l in &self.leaves {
            match l {
                Leaf::Data(d) => {
                    f.push_leaf(d.clone()).unwrap();
                }
                Leaf::Trunc if self.v1 => {
                    f.push_leaf(Vec::new()).unwrap();
                }
                Leaf::Trunc => {
                    f.push_leaf_block(&trunc, 0).unwrap();
                }
            }
        }
        let (res, _) = f.finish().unwrap();
        self.cache = Some((res.cid, res.size));
        (res.cid, res.size)
    }

    /// One `files write` (see the section comment).
    fn write(&mut self, offset: usize, data: &[u8], truncate: bool) {
        self.cache = None;
        if truncate && self.size() != 0 {
            let z = self.leaves.iter().take_while(|l| l.len() == 0).count();
            self.leaves.truncate(z);
            self.leaves.push(Leaf::Trunc);
        }
        let size = self.size();
        if offset > size {
            let mut gap = offset - size;
            while gap > 0 {
                let n = gap.min(4096);
                self.leaves.push(Leaf::Data(vec![0; n]));
                gap -= n;
            }
        }
        // Overwrite in place.
        let mut cur = 0;
        let mut rest = data;
        let mut at = offset;
        for l in &mut self.leaves {
            let len = l.len();
            if !rest.is_empty()
                && cur + len > at
                && let Leaf::Data(d) = l
            {
                let off = at - cur;
                let n = rest.len().min(len - off);
                d[off..off + n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                at += n;
            }
            cur += len;
        }
        for c in rest.chunks(256 * 1024) {
            self.leaves.push(Leaf::Data(c.to_vec()));
        }
    }
}

impl MNode {
    fn cid(&mut self) -> (Cid, u64) {
        match self {
            MNode::File(f) => f.cid(),
            MNode::Dir(d) => {
                let mut o = ImportOptions::default();
                o.set("cid-version", if d.v1 { "1" } else { "0" }).unwrap();
                let mut b = DirectoryBuilder::new(&o).unwrap();
                for (name, child) in d.entries.iter_mut() {
                    let (cid, size) = child.cid();
                    b.add_link(name, cid, size).unwrap();
                }
                let (results, _) = b.finish().unwrap();
                let root = results.last().unwrap();
                (root.cid, root.size)
            }
        }
    }

    fn get(&self, comps: &[String]) -> Option<&MNode> {
        let mut cur = self;
        for c in comps {
            match cur {
                MNode::Dir(d) => cur = d.entries.get(c)?,
                MNode::File(_) => return None,
            }
        }
        Some(cur)
    }

    fn get_mut(&mut self, comps: &[String]) -> Option<&mut MNode> {
        let mut cur = self;
        for c in comps {
            match cur {
                MNode::Dir(d) => cur = d.entries.get_mut(c)?,
                MNode::File(_) => return None,
            }
        }
        Some(cur)
    }

    fn dir_mut(&mut self, comps: &[String]) -> Option<&mut MDir> {
        match self.get_mut(comps)? {
            MNode::Dir(d) => Some(d),
            MNode::File(_) => None,
        }
    }

    /// Every path in the tree (directories and files), root first.
    fn paths(&self, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, bool)>) {
        out.push((prefix.clone(), matches!(self, MNode::Dir(_))));
        if let MNode::Dir(d) = self {
            for (name, child) in &d.entries {
                prefix.push(name.clone());
                child.paths(prefix, out);
                prefix.pop();
            }
        }
    }
}

/// The model's operations; `Err(())` where Kubo's MFS fails. Each works on a copy of the tree so
/// a failure changes nothing.
struct Model {
    root: MNode,
}

impl Model {
    fn mkdir(root: &mut MNode, comps: &[String], parents: bool, v: Option<u8>) -> Result<(), ()> {
        let Some((last, inner)) = comps.split_last() else {
            return if parents { Ok(()) } else { Err(()) };
        };
        let mut cur = root;
        for name in inner {
            let MNode::Dir(d) = cur else { return Err(()) };
            let pv1 = d.v1;
            if !d.entries.contains_key(name) {
                if !parents {
                    return Err(());
                }
                d.entries.insert(
                    name.clone(),
                    MNode::Dir(MDir {
                        v1: v.map_or(pv1, |v| v == 1),
                        entries: BTreeMap::new(),
                    }),
                );
            }
            cur = d.entries.get_mut(name).unwrap();
        }
        let MNode::Dir(d) = cur else { return Err(()) };
        let pv1 = d.v1;
        match d.entries.get_mut(last) {
            Some(MNode::Dir(existing)) if parents => {
                if let Some(v) = v {
                    existing.v1 = v == 1;
                }
                Ok(())
            }
            Some(_) => Err(()),
            None => {
                d.entries.insert(
                    last.clone(),
                    MNode::Dir(MDir {
                        v1: v.map_or(pv1, |v| v == 1),
                        entries: BTreeMap::new(),
                    }),
                );
                Ok(())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        root: &mut MNode,
        comps: &[String],
        offset: usize,
        data: &[u8],
        create: bool,
        truncate: bool,
        parents: bool,
        v: Option<u8>,
    ) -> Result<(), ()> {
        let (name, parent) = comps.split_last().ok_or(())?;
        if parents && !parent.is_empty() {
            Self::mkdir(root, parent, true, v)?;
        }
        // Lookup first (a file in the way of the parent is "not a directory").
        match root.get(comps) {
            Some(MNode::Dir(_)) => return Err(()),
            Some(MNode::File(_)) => {}
            None => {
                // Walking through a file fails; a missing entry needs `create` and a parent dir.
                let d = root.dir_mut(parent).ok_or(())?;
                if !create {
                    return Err(());
                }
                let v1 = v.map_or(d.v1, |v| v == 1);
                d.entries.insert(
                    name.clone(),
                    MNode::File(MFile {
                        v1,
                        leaves: Vec::new(),
                        cache: None,
                    }),
                );
            }
        }
        let Some(MNode::File(f)) = root.get_mut(comps) else {
            return Err(());
        };
        f.write(offset, data, truncate);
        Ok(())
    }

    fn cp(root: &mut MNode, src: &[String], dst: &[String]) -> Result<(), ()> {
        let node = root.get(src).ok_or(())?.clone();
        let (name, parent) = dst.split_last().ok_or(())?;
        let d = root.dir_mut(parent).ok_or(())?;
        if d.entries.contains_key(name) {
            return Err(());
        }
        d.entries.insert(name.clone(), node);
        Ok(())
    }

    /// boxo 0.11's `Mv`, quirk included.
    fn mv(root: &mut MNode, src: &[String], dst: &[String]) -> Result<(), ()> {
        let (sname, sparent) = src.split_last().ok_or(())?;
        let (dname, dparent) = dst.split_last().ok_or(())?;
        root.dir_mut(dparent).ok_or(())?;
        let node = root
            .dir_mut(sparent)
            .ok_or(())?
            .entries
            .get(sname)
            .ok_or(())?
            .clone();
        let mut tdir: Vec<String> = dparent.to_vec();
        let mut tname = dname.clone();
        match root.get(dst) {
            Some(MNode::File(_)) => {
                root.dir_mut(dparent).unwrap().entries.remove(dname);
            }
            Some(MNode::Dir(_)) => {
                tdir.push(dname.clone());
                tname = sname.clone();
            }
            None => {}
        }
        let t = root.dir_mut(&tdir).ok_or(())?;
        if t.entries.contains_key(&tname) {
            return Err(());
        }
        t.entries.insert(tname.clone(), node);
        let sbase = sparent.last().map_or("", String::as_str);
        let tbase = tdir.last().map_or("", String::as_str);
        if !(sbase == tbase && *sname == tname) {
            let s = root.dir_mut(sparent).ok_or(())?;
            s.entries.remove(sname).ok_or(())?;
        }
        Ok(())
    }

    fn rm(root: &mut MNode, comps: &[String], recursive: bool) -> Result<(), ()> {
        let (name, parent) = comps.split_last().ok_or(())?;
        let d = root.dir_mut(parent).ok_or(())?;
        match d.entries.get(name) {
            None => Err(()),
            Some(MNode::Dir(_)) if !recursive => Err(()),
            Some(_) => {
                d.entries.remove(name);
                Ok(())
            }
        }
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn show(comps: &[String]) -> String {
    format!("/{}", comps.join("/"))
}

fn random_path(rng: &mut Rng) -> Vec<String> {
    const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
    let depth = 1 + rng.below(3);
    (0..depth)
        .map(|_| NAMES[rng.below(NAMES.len())].to_string())
        .collect()
}

/// Picks an existing path (of a file when `file`), or a random one.
fn pick(rng: &mut Rng, model: &Model, file: Option<bool>) -> Vec<String> {
    let mut all = Vec::new();
    model.root.paths(&mut Vec::new(), &mut all);
    let fitting: Vec<_> = all
        .into_iter()
        .filter(|(p, is_dir)| !p.is_empty() && file.is_none_or(|f| f != *is_dir))
        .collect();
    if fitting.is_empty() || rng.chance(20) {
        return random_path(rng);
    }
    fitting[rng.below(fitting.len())].0.clone()
}

async fn check_tree(store: &Mem, mfs: &Mfs, model: &mut Model, step: usize, full: bool) {
    let (want, _) = model.root.cid();
    assert_eq!(mfs.root(), want, "step {step}: root CID");
    if !full {
        return;
    }
    let mut all = Vec::new();
    model.root.paths(&mut Vec::new(), &mut all);
    for (p, is_dir) in all {
        let path = show(&p);
        let node = model.root.get_mut(&p).unwrap();
        let (cid, _) = node.cid();
        let st = mfs.stat(store, &path).await.unwrap();
        assert_eq!(st.hash, cid, "step {step}: {path}");
        if is_dir {
            let MNode::Dir(d) = node else { unreachable!() };
            let names: Vec<String> = d.entries.keys().cloned().collect();
            let ls = mfs.ls(store, &path, true).await.unwrap();
            assert_eq!(
                ls.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
                names,
                "step {step}: ls {path}"
            );
            for e in ls {
                let mut child = p.clone();
                child.push(e.name.clone());
                let (c, _) = model.root.get_mut(&child).unwrap().cid();
                assert_eq!(e.hash, Some(c));
                let is_file = matches!(model.root.get(&child), Some(MNode::File(_)));
                assert_eq!(e.kind == EntryType::File, is_file);
            }
        } else {
            let MNode::File(f) = node else { unreachable!() };
            assert_eq!(st.size, f.size() as u64);
            assert_eq!(
                mfs.read(store, &path, 0, None).await.unwrap(),
                f.bytes(),
                "step {step}: read {path}"
            );
        }
    }
}

/// What a run exercised: ops that succeeded, writes past the end, truncates, the most leaves a
/// file had, files over 174 leaves (a second trickle layer).
#[derive(Debug, Default)]
struct Coverage {
    ok: usize,
    sparse: usize,
    truncates: usize,
    max_leaves: usize,
    deep_files: usize,
}

async fn run_model(seed: u64, steps: usize) -> Coverage {
    // splitmix64 of the seed, so near seeds give unrelated scripts.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let mut rng = Rng((z ^ (z >> 31)) | 1);
    let store = Mem::default();
    let mut mfs = Mfs::init(&store).await.unwrap();
    let mut model = Model {
        root: MNode::Dir(MDir {
            v1: false,
            entries: BTreeMap::new(),
        }),
    };
    let mut cov = Coverage::default();
    for step in 0..steps {
        let mut next = model.root.clone();
        let op = rng.below(100);
        let (desc, want, got): (String, Result<(), ()>, Result<(), MfsError>) = if op < 15 {
            let p = random_path(&mut rng);
            let parents = rng.chance(70);
            let v = [None, None, Some(0), Some(1)][rng.below(4)];
            let want = Model::mkdir(&mut next, &p, parents, v);
            let mut o = MkdirOptions::default();
            o.parents = parents;
            o.cid_version = v;
            let got = mfs.mkdir(&store, &show(&p), &o).await;
            (
                format!("mkdir -p={parents} v={v:?} {}", show(&p)),
                want,
                got,
            )
        } else if op < 55 {
            let p = pick(&mut rng, &model, Some(true));
            let size = match model.root.get(&p) {
                Some(MNode::File(f)) => f.size(),
                _ => 0,
            };
            let leaves = match model.root.get(&p) {
                Some(MNode::File(f)) => f.leaves.len(),
                _ => 0,
            };
            let truncate = rng.chance(10) || leaves > 240;
            let len = match rng.below(10) {
                0 => 0,
                1..=5 => rng.below(100),
                6..=8 => rng.below(20_000),
                _ => 200_000 + rng.below(400_000),
            };
            let base = if truncate { 0 } else { size };
            let offset = match rng.below(5) {
                0 => 0,
                1 => base,
                2 => rng.below(base + 1),
                3 => base + rng.below(400_000),
                _ => base.saturating_sub(rng.below(5000)),
            };
            let data = rng.bytes(len);
            let sparse = offset > base;
            let create = rng.chance(80);
            let parents = rng.chance(30);
            let v = [None, None, None, Some(0), Some(1)][rng.below(5)];
            let count = if rng.chance(10) {
                Some(rng.below(len + 1))
            } else {
                None
            };
            let eff = &data[..count.unwrap_or(len)];
            let want = Model::write(&mut next, &p, offset, eff, create, truncate, parents, v);
            let o = wopts(|o| {
                o.offset = offset as u64;
                o.create = create;
                o.truncate = truncate;
                o.parents = parents;
                o.cid_version = v;
                o.count = count.map(|c| c as u64);
            });
            let got = mfs.write(&store, &show(&p), &data, &o).await;
            cov.sparse += usize::from(sparse && got.is_ok());
            (
                format!(
                    "write {} off={offset} len={} create={create} trunc={truncate} p={parents} v={v:?}",
                    show(&p),
                    eff.len()
                ),
                want,
                got,
            )
        } else if op < 65 {
            let src = pick(&mut rng, &model, None);
            let dst = random_path(&mut rng);
            let want = Model::cp(&mut next, &src, &dst);
            let got = mfs.cp(&store, &show(&src), &show(&dst), false).await;
            (format!("cp {} {}", show(&src), show(&dst)), want, got)
        } else if op < 75 {
            let src = pick(&mut rng, &model, None);
            let dst = if rng.chance(50) {
                pick(&mut rng, &model, None)
            } else {
                random_path(&mut rng)
            };
            let want = Model::mv(&mut next, &src, &dst);
            let got = mfs.mv(&store, &show(&src), &show(&dst)).await;
            (format!("mv {} {}", show(&src), show(&dst)), want, got)
        } else if op < 85 {
            let p = pick(&mut rng, &model, None);
            let recursive = rng.chance(80);
            let want = Model::rm(&mut next, &p, recursive);
            let got = mfs.rm(&store, &show(&p), recursive, false).await;
            (format!("rm -r={recursive} {}", show(&p)), want, got)
        } else {
            // Reads: read, ls, stat of a random path.
            let p = pick(&mut rng, &model, None);
            let path = show(&p);
            match model.root.get_mut(&p) {
                Some(MNode::File(f)) => {
                    let bytes = f.bytes();
                    let off = rng.below(bytes.len() + 1);
                    let n = rng.below(bytes.len() + 10);
                    let got = mfs
                        .read(&store, &path, off as u64, Some(n as u64))
                        .await
                        .unwrap();
                    assert_eq!(
                        got,
                        &bytes[off..(off + n).min(bytes.len())],
                        "step {step}: read {path}"
                    );
                    let (cid, _) = f.cid();
                    let ls = mfs.ls(&store, &path, true).await.unwrap();
                    assert_eq!(ls.len(), 1);
                    assert_eq!((ls[0].hash, ls[0].size), (Some(cid), bytes.len() as u64));
                }
                Some(MNode::Dir(_)) => {
                    let st = mfs.stat(&store, &path).await.unwrap();
                    assert_eq!(st.kind, "directory");
                }
                None => {
                    assert!(
                        mfs.stat(&store, &path).await.is_err(),
                        "step {step}: stat {path}"
                    );
                    assert!(mfs.read(&store, &path, 0, None).await.is_err());
                }
            }
            (format!("read {path}"), Ok(()), Ok(()))
        };
        assert_eq!(
            want.is_ok(),
            got.is_ok(),
            "step {step}: {desc}: model {want:?}, mfs {got:?}"
        );
        if want.is_ok() {
            model.root = next;
            cov.ok += 1;
            if desc.starts_with("write") {
                cov.truncates += usize::from(desc.contains("trunc=true"));
            }
        }
        let mut all = Vec::new();
        model.root.paths(&mut Vec::new(), &mut all);
        for (p, _) in all {
            if let Some(MNode::File(f)) = model.root.get(&p) {
                cov.max_leaves = cov.max_leaves.max(f.leaves.len());
                cov.deep_files += usize::from(f.leaves.len() > 174);
            }
        }
        check_tree(
            &store,
            &mfs,
            &mut model,
            step,
            step % 20 == 19 || step + 1 == steps,
        )
        .await;
    }
    cov
}

#[test]
fn model_200_random_operations() {
    let seeds: Vec<u64> = match std::env::var("MFS_MODEL_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => vec![0x5eed_0001, 0x5eed_0002, 0x5eed_0003],
    };
    for seed in seeds {
        let cov = rt().block_on(run_model(seed, 200));
        eprintln!("seed {seed:#x}: {cov:?}");
        assert!(
            cov.ok > 100,
            "seed {seed:#x}: only {} operations succeeded",
            cov.ok
        );
        assert!(
            cov.sparse > 0 && cov.truncates > 0,
            "seed {seed:#x}: {cov:?}"
        );
    }
}

// ---- chmod / touch (UnixFS 1.5 mode and mtime), known answers built by hand ----

/// A protobuf varint.
fn pv(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited protobuf field.
fn pfield(field: u64, body: &[u8], out: &mut Vec<u8>) {
    pv(field << 3 | 2, out);
    pv(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A dag-pb node as Go's merkledag writes it: each link (Hash, Name, Tsize) then Data.
fn pb(links: &[(Cid, &str, u64)], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (cid, name, tsize) in links {
        let mut l = Vec::new();
        pfield(1, &cid.to_bytes(), &mut l);
        pfield(2, name.as_bytes(), &mut l);
        pv(3 << 3, &mut l);
        pv(*tsize, &mut l);
        pfield(2, &l, &mut out);
    }
    pfield(1, data, &mut out);
    out
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

fn cid_v0(block: &[u8]) -> Cid {
    let mut b = vec![0x12, 0x20];
    b.extend(sha256(block));
    Cid::try_from(b.as_slice()).unwrap()
}

fn cid_raw(block: &[u8]) -> Cid {
    let mut b = vec![0x01, 0x55, 0x12, 0x20];
    b.extend(sha256(block));
    Cid::try_from(b.as_slice()).unwrap()
}

/// UnixFS `mtime` field 8: seconds (varint, field 1), nanos (fixed32, field 2) when not 0.
fn mtime_field(secs: i64, nanos: u32, out: &mut Vec<u8>) {
    let mut t = vec![0x08];
    pv(secs as u64, &mut t);
    if nanos != 0 {
        t.push(0x15);
        t.extend_from_slice(&nanos.to_le_bytes());
    }
    pfield(8, &t, out);
}

async fn put(store: &Mem, cid: Cid, block: Vec<u8>) {
    store
        .put_many(vec![Block::new(cid, Bytes::from(block)).unwrap()])
        .await
        .unwrap();
}

async fn block_of(store: &Mem, mfs: &Mfs, path: &str) -> (Cid, Vec<u8>) {
    let cid = mfs.flush(store, path).await.unwrap();
    let b = store.blocks.lock().unwrap().get(&cid).unwrap().to_vec();
    (cid, b)
}

#[test]
fn chmod_root_known_answer_and_mode_zero_removes_it() {
    rt().block_on(async {
        let store = Mem::default();
        let mut mfs = Mfs::init(&store).await.unwrap();
        mfs.chmod(&store, "/", 0o755).await.unwrap();
        // Type=Directory, mode=0o755 (493: ed 03).
        let want = pb(&[], &[0x08, 0x01, 0x38, 0xed, 0x03]);
        assert_eq!(mfs.root(), cid_v0(&want));
        assert_eq!(block_of(&store, &mfs, "/").await.1, want);
        // Go's os.FileMode(0o4755): the Unix setuid bit is not Go's ModeSetuid; kept: 0o755.
        mfs.chmod(&store, "/", 0o4755).await.unwrap();
        assert_eq!(mfs.root(), cid_v0(&want));
        // Go's ModeSetuid|ModeSticky|0o700 -> Unix 0o5700.
        mfs.chmod(&store, "/", (1 << 23) | (1 << 20) | 0o700)
            .await
            .unwrap();
        let want = pb(&[], &[0x08, 0x01, 0x38, 0xc0, 0x17]);
        assert_eq!(mfs.root(), cid_v0(&want));
        // Mode 0 with no high bits: the field goes, the root is the empty directory again.
        mfs.chmod(&store, "/", 0).await.unwrap();
        assert_eq!(mfs.root().to_string(), EMPTY_DIR_CID);
    });
}

#[test]
fn chmod_touch_file_keeps_fields_links_and_updates_parents() {
    rt().block_on(async {
        let store = Mem::default();
        let mut mfs = Mfs::init(&store).await.unwrap();
        // A file of two raw leaves, root: Type=File, filesize=4, blocksizes 2, 2.
        let (l1, l2) = (b"ab".to_vec(), b"cd".to_vec());
        let (c1, c2) = (cid_raw(&l1), cid_raw(&l2));
        put(&store, c1, l1).await;
        put(&store, c2, l2).await;
        let fs = [0x08, 0x02, 0x18, 0x04, 0x20, 0x02, 0x20, 0x02];
        let links = [(c1, "", 2u64), (c2, "", 2u64)];
        let file = pb(&links, &fs);
        let fcid = cid_v0(&file);
        put(&store, fcid, file).await;
        mfs.mkdir(&store, "/d", &MkdirOptions::default())
            .await
            .unwrap();
        mfs.cp(&store, &format!("/ipfs/{fcid}"), "/d/f", false)
            .await
            .unwrap();

        mfs.chmod(&store, "/d/f", 0o644).await.unwrap();
        mfs.touch(&store, "/d/f", (1_630_937_926, 5)).await.unwrap();
        let mut fs2 = fs.to_vec();
        fs2.extend([0x38, 0xa4, 0x03]); // mode 0o644 = 420
        mtime_field(1_630_937_926, 5, &mut fs2);
        let file2 = pb(&links, &fs2);
        let f2 = cid_v0(&file2);
        let fsize = file2.len() as u64 + 4;
        let (got, got_block) = block_of(&store, &mfs, "/d/f").await;
        assert_eq!(got_block, file2);
        assert_eq!(got, f2);
        let d = pb(&[(f2, "f", fsize)], &[0x08, 0x01]);
        let dsize = d.len() as u64 + fsize;
        let root = pb(&[(cid_v0(&d), "d", dsize)], &[0x08, 0x01]);
        assert_eq!(mfs.root(), cid_v0(&root));
        assert_eq!(mfs.read(&store, "/d/f", 0, None).await.unwrap(), b"abcd");

        // touch again: nanos 0 leaves the field out; nanos past a second carry (time.Unix).
        mfs.touch(&store, "/d/f", (-10, 2_000_000_000))
            .await
            .unwrap();
        let mut fs3 = fs.to_vec();
        fs3.extend([0x38, 0xa4, 0x03]);
        mtime_field(-8, 0, &mut fs3);
        assert_eq!(block_of(&store, &mfs, "/d/f").await.1, pb(&links, &fs3));
        // Go's zero time removes the mtime.
        mfs.touch(&store, "/d/f", (-62_135_596_800, 0))
            .await
            .unwrap();
        let mut fs4 = fs.to_vec();
        fs4.extend([0x38, 0xa4, 0x03]);
        assert_eq!(block_of(&store, &mfs, "/d/f").await.1, pb(&links, &fs4));
    });
}

#[test]
fn chmod_touch_raw_file_becomes_a_v0_file_node_as_boxo() {
    rt().block_on(async {
        let store = Mem::default();
        let mut mfs = Mfs::init(&store).await.unwrap();
        let raw = b"hey".to_vec();
        let rcid = cid_raw(&raw);
        put(&store, rcid, raw).await;
        mfs.cp(&store, &format!("/ipfs/{rcid}"), "/r", false)
            .await
            .unwrap();
        mfs.cp(&store, &format!("/ipfs/{rcid}"), "/t", false)
            .await
            .unwrap();
        // FilePBDataWithStat: Type=File, Data, filesize, mode.
        mfs.chmod(&store, "/r", 0o600).await.unwrap();
        let want = pb(
            &[],
            &[
                0x08, 0x02, 0x12, 0x03, b'h', b'e', b'y', 0x18, 0x03, 0x38, 0x80, 0x03,
            ],
        );
        assert_eq!(block_of(&store, &mfs, "/r").await, (cid_v0(&want), want));
        // touch: the mtime, no mode.
        mfs.touch(&store, "/t", (7, 9)).await.unwrap();
        let mut fs = vec![0x08, 0x02, 0x12, 0x03, b'h', b'e', b'y', 0x18, 0x03];
        mtime_field(7, 9, &mut fs);
        let want = pb(&[], &fs);
        assert_eq!(block_of(&store, &mfs, "/t").await, (cid_v0(&want), want));
        assert_eq!(mfs.read(&store, "/t", 0, None).await.unwrap(), b"hey");
    });
}

#[test]
fn chmod_touch_errors_change_nothing() {
    rt().block_on(async {
        let store = Mem::default();
        let mut mfs = Mfs::init(&store).await.unwrap();
        let before = mfs.root();
        let e = mfs.chmod(&store, "/nope", 0o644).await.unwrap_err();
        assert_eq!(e.to_string(), "file does not exist");
        let e = mfs.touch(&store, "/nope", (1, 0)).await.unwrap_err();
        assert_eq!(e.to_string(), "file does not exist");
        let e = mfs.chmod(&store, "rel", 0o644).await.unwrap_err();
        assert_eq!(e.to_string(), "paths must start with a leading slash");
        let e = mfs.touch(&store, "", (1, 0)).await.unwrap_err();
        assert_eq!(e.to_string(), "paths must not be empty");
        assert!(matches!(
            mfs.chmod(&store, "/nope", 0o644).await,
            Err(MfsError::NotExist)
        ));
        assert_eq!(mfs.root(), before);
    });
}
