//! File and directory CIDs against values known from Kubo and from ipfs-unixfs-importer 17.1.1
//! (`../shared/reference/rust-stack.md` Appendix C), with the streaming API driven in odd-sized
//! pieces so chunk boundaries cannot depend on how input arrives.

use std::collections::HashSet;

use cairn_unixfs::importer::{
    DirectoryBuilder, FileImporter, FileResult, ImportOptions, Mtime, add_path,
};
use cairn_unixfs::{Block, Cid};

/// The Appendix C content: byte i = (31·i + 7) mod 251.
fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

/// Imports `data` pushed in pieces of `piece` bytes; checks every block's bytes hash to its CID
/// and that children come before parents; returns the result and the blocks.
fn import(data: &[u8], opts: &ImportOptions, piece: usize) -> (FileResult, Vec<Block>) {
    let mut f = FileImporter::new(opts).unwrap();
    let mut blocks = Vec::new();
    for p in data.chunks(piece.max(1)) {
        blocks.extend(f.push(p).unwrap());
    }
    assert_eq!(f.bytes_consumed(), data.len() as u64);
    let (res, last) = f.finish().unwrap();
    blocks.extend(last);
    let mut seen = HashSet::new();
    for b in &blocks {
        cairn_blockstore::verify(b.cid(), b.data()).unwrap();
        for link in cairn_blockstore::codec::links(b.cid(), b.data()).unwrap() {
            if link.hash().code() != 0 {
                assert!(
                    seen.contains(&link),
                    "child {link} emitted after its parent {}",
                    b.cid()
                );
            }
        }
        seen.insert(*b.cid());
    }
    assert_eq!(
        blocks.last().map(|b| *b.cid()),
        Some(res.cid)
            .filter(|c| c.hash().code() != 0)
            .or(blocks.last().map(|b| *b.cid()))
    );
    assert_eq!(res.file_size, data.len() as u64);
    (res, blocks)
}

fn opts(kv: &[(&str, &str)]) -> ImportOptions {
    let mut o = ImportOptions::default();
    for (k, v) in kv {
        assert!(o.set(k, v).unwrap(), "{k} not an import option");
    }
    o
}

#[test]
fn appendix_c_vectors() {
    const K: usize = 262144;
    const M: usize = 1 << 20;
    let cases: &[(usize, &str, &str, usize)] = &[
        (
            0,
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
            1,
        ),
        (
            K,
            "QmNjsPT1urL55WXngMVgvZrn2apSux229uFBoAgmKTtjAd",
            "bafkreieiuj5mzeuqor24l4lmo2yumm6665yv4gq7ozzp2nrfmqrjyboosy",
            1,
        ),
        (
            3 * K + 5,
            "QmZef5wmXhVNeEWyM4CZHeDhNtBbhP2QQBXn7TxEVR1PnN",
            "bafybeibelwfwrvmyckpu2aa43tgx4ixljrvupyqg5yz2pljcc6d5rh2upe",
            5,
        ),
        (
            175 * K + 1,
            "QmZa4axhPZ9nYc7fmnomxkp7LUKoaU3LgFQGDpvH8MvdVr",
            "bafybeigocvavqk6fjj3hdfftxebflwsciip6fla6hjxuomfbmei2gxkkdi",
            179,
        ),
        (
            3 * M + 5,
            "QmY9fGG7Lm2Q8GNwnTDpCnc5iNLum4V7yKa2gSjMC2U3gM",
            "bafybeihc3fftzkv7vh5lwdc4ww2fste26m67gaofgimcpql5dc4llxakwm",
            14,
        ),
    ];
    for &(n, v0, v1, count) in cases {
        let data = content(n);
        let (r0, b0) = import(&data, &ImportOptions::default(), 100_003);
        assert_eq!(r0.cid.to_string(), v0, "v0 {n}");
        assert_eq!(b0.len(), count, "v0 block count {n}");
        let (r1, b1) = import(&data, &opts(&[("cid-version", "1")]), 7 * 65536 + 1);
        assert_eq!(r1.cid.to_string(), v1, "v1 {n}");
        assert_eq!(b1.len(), count, "v1 block count {n}");
        // Size (Tsize) is every block's bytes.
        assert_eq!(r0.size, b0.iter().map(|b| b.len() as u64).sum::<u64>());
    }
}

#[test]
fn hello_world_and_kubo_sizes() {
    let (r, _) = import(b"hello world\n", &ImportOptions::default(), 3);
    assert_eq!(
        r.cid.to_string(),
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );
    assert_eq!(r.size, 20);
    let (r, _) = import(b"hello world\n", &opts(&[("cid-version", "1")]), 5);
    assert_eq!(
        r.cid.to_string(),
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    );
    assert_eq!(r.size, 12);
}

#[test]
fn empty_directory_is_kubos() {
    let dir = DirectoryBuilder::new(&ImportOptions::default()).unwrap();
    let (dirs, blocks) = dir.finish().unwrap();
    assert_eq!(dirs.len(), 1);
    assert_eq!(
        dirs[0].cid.to_string(),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
    assert_eq!(dirs[0].size, 4);
    assert_eq!(blocks.len(), 1);
}

#[test]
fn inline_small_blocks_get_identity_cids() {
    let (r, b) = import(b"hi", &opts(&[("inline", "true")]), 1);
    assert_eq!(r.cid.hash().code(), 0, "identity multihash");
    assert_eq!(r.cid.version(), cid::Version::V1);
    assert_eq!(b.len(), 1);
    // 33 bytes of data is a 41-byte leaf: over the 32-byte limit, hashed as usual.
    let (r, _) = import(&[7u8; 33], &opts(&[("inline", "true")]), 1);
    assert_eq!(r.cid.hash().code(), 0x12);
    let _: Cid = r.cid;
}

/// Kubo's sharness t0040-add-and-cat.sh: `echo "Hello Worlds!" | ipfs add` with each chunker,
/// and with `-t` (trickle: a node above the single leaf, whose UnixFS type is `Raw`).
#[test]
fn kubo_t0040_chunkers_and_trickle() {
    let data = b"Hello Worlds!\n";
    for chunker in [
        "size-262144",
        "size-64",
        "rabin",
        "rabin-36-512-1024",
        "buzhash",
    ] {
        let (r, _) = import(data, &opts(&[("chunker", chunker)]), 5);
        assert_eq!(
            r.cid.to_string(),
            "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH",
            "{chunker}"
        );
    }
    let (r, _) = import(data, &opts(&[("trickle", "true")]), 5);
    assert_eq!(
        r.cid.to_string(),
        "QmUkUQgxXeggyaD5Ckv8ZqfW8wHBX6cYyeiyqvVZYzq5Bi"
    );
    // And Kubo's rejections.
    for bad in [
        "size-0",
        "rabin-12-512-1024",
        "size-2096897",
        "foo",
        "rabin-1-2",
        "size-1-2",
    ] {
        assert!(
            bad.parse::<cairn_unixfs::chunker::ChunkerSpec>().is_err(),
            "{bad}"
        );
    }
    let e = "size-0"
        .parse::<cairn_unixfs::chunker::ChunkerSpec>()
        .unwrap_err();
    assert_eq!(e.to_string(), "chunker size must be greater than 0");
    let e = "rabin-12-512-1024"
        .parse::<cairn_unixfs::chunker::ChunkerSpec>()
        .unwrap_err();
    assert_eq!(e.to_string(), "rabin min must be greater than 16");
}

const PRESERVE_MTIME: i64 = 1604320482;
const CUSTOM_MTIME: i64 = 1603539720;
const DIR_TIME: i64 = 1655158632;

fn mt(seconds: i64, nanos: u32) -> Option<Mtime> {
    Some(Mtime { seconds, nanos })
}

/// Kubo's sharness t0047-add-mode-mtime.sh, single entries: an empty file, the symlink
/// `linkfile -> nothing`, and an empty directory, with mode and mtime.
#[test]
fn kubo_t0047_single_entries() {
    let files = [
        (
            Some(0o640),
            None,
            "QmQLgxypSNGNFTuUPGCecq6dDEjb6hNB5xSyVmP3cEuNtq",
        ),
        (
            None,
            mt(PRESERVE_MTIME, 0),
            "QmQ6kErEW8kztQFV8vbwNU8E4dmtGsYpRiboiLxUEwibvj",
        ),
        (
            Some(0o640),
            mt(PRESERVE_MTIME, 0),
            "QmYkvboLsvLFcSYmqVJRxvBdYRQLroLv9kELf3LRiCqBri",
        ),
        (
            Some(0o764),
            None,
            "QmchD3BN8TQ3RW6jPLxSaNkqvfuj7syKhzTRmL4EpyY1Nz",
        ),
        (
            None,
            mt(CUSTOM_MTIME, 0),
            "QmT3aY4avDcYXCWpU8CJzqUkW7YEuEsx36S8cTNoLcuK1B",
        ),
        (
            None,
            mt(CUSTOM_MTIME, 54321),
            "QmaKH8H5rXBUBCX4vdxi7ktGQEL7wejV7L9rX2qpZjwncz",
        ),
        (
            Some(0o764),
            mt(CUSTOM_MTIME, 54321),
            "QmUkxrtBA8tPjwCYz1HrsoRfDz6NgKut3asVeHVQNH4C8L",
        ),
    ];
    for (mode, mtime, want) in files {
        let mut o = ImportOptions::default();
        o.mode = mode;
        o.mtime = mtime;
        let (r, _) = import(b"", &o, 1);
        assert_eq!(r.cid.to_string(), want, "{mode:?} {mtime:?}");
    }
    let links = [
        (
            mt(PRESERVE_MTIME, 0),
            "QmbJwotgtr84JxcnjpwJ86uZiyMoxbZuNH4YrdJMypkYaB",
        ),
        (
            mt(CUSTOM_MTIME, 0),
            "QmV1Uot2gy4bhY9yvYiZxhhchhyYC6MKKoGV1XtWNmpCLe",
        ),
        (
            mt(CUSTOM_MTIME, 54321),
            "QmPHYCxYvvHj6VxiPNJ3kXxcPsnJLDYUJqsDJWjvytmrmY",
        ),
    ];
    for (mtime, want) in links {
        let mut dir = DirectoryBuilder::new(&ImportOptions::default()).unwrap();
        let (r, block) = dir.add_symlink("linkfile", "nothing", mtime).unwrap();
        assert_eq!(r.cid.to_string(), want);
        assert_eq!(block.cid(), &r.cid);
    }
    let dirs = [
        (None, None, "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"),
        (
            Some(0o755),
            None,
            "QmRviohgafvCsbkiTgfQFipbuXJ6k1YtoiaQW4quttJPKu",
        ),
        (
            None,
            mt(DIR_TIME + 90, 0),
            "QmYMy7CZGb498QFSQBF5ZFwv1FYbrAtYZMe4VxhDXxAcvf",
        ),
        (
            Some(0o713),
            None,
            "QmQ1ABnw2iip7sj23EzzBZ9T77KyyfESP6SUboiXPyzNQe",
        ),
        (
            None,
            mt(CUSTOM_MTIME, 0),
            "QmfWitW6F13WHFXLbJzXRYmwrS1p4gaAJAfucUSMytRPn3",
        ),
        (
            None,
            mt(CUSTOM_MTIME, 54321),
            "QmZFdCLJay31hT3Tx1LygJ7XfiLEs3qLCXtbeBfhf38aZg",
        ),
    ];
    for (mode, mtime, want) in dirs {
        let mut dir = DirectoryBuilder::new(&ImportOptions::default()).unwrap();
        dir.add_directory("", mode, mtime).unwrap();
        let (results, _) = dir.finish().unwrap();
        assert_eq!(results[0].cid.to_string(), want, "{mode:?} {mtime:?}");
    }
}

/// Kubo's sharness t0047 `setup_directory` tree added with `ipfs add -qr` and metadata options:
/// every printed CID, sorted, equals Kubo's list.
#[test]
fn kubo_t0047_directory_tree() {
    use rustix::fs::{AtFlags, CWD, Timestamps, utimensat};
    use std::fs::{self, Permissions};
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("testdirXXXXXX");
    for d in ["dir1", "dir2/sub1/sub2", "dir3"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["dir2/sub1/sub2/file3", "dir3/file2", "file1"] {
        fs::write(root.join(f), b"").unwrap();
        fs::set_permissions(root.join(f), Permissions::from_mode(0o644)).unwrap();
    }
    std::os::unix::fs::symlink("../sub2/file3", root.join("dir2/sub1/link1")).unwrap();
    for d in ["dir1", "dir2", "dir2/sub1", "dir2/sub1/sub2", "dir3"] {
        fs::set_permissions(root.join(d), Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(&root, Permissions::from_mode(0o700)).unwrap();
    let times = [
        ("dir2/sub1/sub2/file3", 10),
        ("dir2/sub1/link1", 20),
        ("dir2/sub1/sub2", 30),
        ("dir2/sub1", 40),
        ("dir2", 50),
        ("dir3/file2", 60),
        ("dir3", 70),
        ("file1", 80),
        ("dir1", 90),
        ("", 0),
    ];
    for (p, offset) in times {
        let t = rustix::fs::Timespec {
            tv_sec: DIR_TIME + offset,
            tv_nsec: 0,
        };
        let ts = Timestamps {
            last_access: t,
            last_modification: t,
        };
        utimensat(CWD, root.join(p), &ts, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }
    let sorted = |o: ImportOptions| {
        let events = add_path(&root, &o, &mut |_| Ok(())).unwrap();
        let mut cids: Vec<String> = events.iter().map(|e| e.cid.to_string()).collect();
        cids.sort();
        assert_eq!(events.last().unwrap().name, "testdirXXXXXX");
        cids
    };
    let mut o = ImportOptions::default();
    o.preserve_mode = true;
    o.preserve_mtime = true;
    assert_eq!(
        sorted(o),
        [
            "QmRCG3Pprg4jbhfYBzVzfJVyneFHnBquPGXwvXU3jSuf5j",
            "QmReHCn4BSJJdtd6Le8Hd8Puai6TmgpPCYb13wyM7FD9AD",
            "QmSioyvQuXetxg7uo8FswGn9XKKEsisDq1HTMzGyWbw2R6",
            "QmTMoVgJKhPrz9DfkvT132mxyBXNae5azXQ42WbM9abdSE",
            "QmVzXqpuQGCAgRwEbGuE9xe8Fidi1HEXaPKsQEFEbPJW9j",
            "QmW6Nqy2nziduAp3UGx2a52gtSUsYzhVcZMuPdxBRnwCyP",
            "QmeQwX5qAX18fcPDxDdkfM6ttuFCZetF5hgeUa6ov8D5oc",
            "QmefofUNwC2U3Xp87rB1x8Aws6AdsDuoXR7B9u2RkEZ4dQ",
            "Qmeu24TFarJwLzJgMTDYDJTr4BMGnzafoSnfxov1513abW",
            "Qmf82bbFg2e8HmcqiewutVVw5NoMpiXZD57LpLdC1poBuH",
        ]
    );
    let mut o = ImportOptions::default();
    o.mode = Some(0o753);
    assert_eq!(
        sorted(o),
        [
            "QmNZ5cyx3f6maXkczwhh3ufjDCh9f3k9zrDhX218ZZGvoV",
            "QmRqtFVLkXfWJuqWtYiCPthgomo3gouno8uvMeGAyCVaWS",
            "QmSkrWNcyDA7s1qiT6Ps7ey4zcB7uBH3sqGcKRfW4UMKhM",
            "QmSkrWNcyDA7s1qiT6Ps7ey4zcB7uBH3sqGcKRfW4UMKhM",
            "QmSkrWNcyDA7s1qiT6Ps7ey4zcB7uBH3sqGcKRfW4UMKhM",
            "QmZNAZXB6JyJ1cK9h1uJEK4XDo1CKsSuHMPGUUMrzDXCQz",
            "QmbSz6GyS8MNR4M9xtCteuGVJQRYkCXLbW174Fdy8jtaoZ",
            "QmccnAQQeJGtmtgZoi3hpEmgdxbuX1ao2hQmrKmmwQnCn9",
            "QmeTZoiAiduFY2hXaNQP4ehiE71BrQFEnrqduBZ5ZjHuFy",
            "Qmf13KNurvAHUfMBhMWvZuftmUikhhGY7ohWVaBDDndFMz",
        ]
    );
    let mut o = ImportOptions::default();
    o.mtime = mt(CUSTOM_MTIME, 0);
    assert_eq!(
        sorted(o),
        [
            "QmPCGFZ8ZFowAwfWdCeGsr9wSbGXwZiHW3bZ7XSYcc1Zby",
            "QmT3aY4avDcYXCWpU8CJzqUkW7YEuEsx36S8cTNoLcuK1B",
            "QmT3aY4avDcYXCWpU8CJzqUkW7YEuEsx36S8cTNoLcuK1B",
            "QmT3aY4avDcYXCWpU8CJzqUkW7YEuEsx36S8cTNoLcuK1B",
            "QmUGMu9epCEz5HMsuJFgpJxxt3HoahsTQcC65Jje6LNqYF",
            "QmXhzoPKuqmkqbyr4kJFznFRXtGwriCXKGFPr4vviyK3aV",
            "QmZ5wKCcL11TckypuDTKLLNFP6JMCBJRCn385XKQQ6PCLt",
            "Qmdw3hiAxn6R5MRkkdzLdFvZUa2WJeLCTXXCyB8byFsHSA",
            "QmedF4m2Y8341azfkpvaHSkxbSrZa4fo6FT25h6sRUVkpq",
            "QmfWitW6F13WHFXLbJzXRYmwrS1p4gaAJAfucUSMytRPn3",
        ]
    );
}

/// `ipfs add -r test-folder` prints files as they complete (walk order: names sorted), then
/// directories children first, the root last; `-w` adds the wrapper `""` after them.
#[test]
fn add_output_order_is_kubos() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/interface-ipfs-core-fixtures/test-folder");
    let mut blocks = 0usize;
    let names = |o: &ImportOptions, blocks: &mut usize| -> Vec<String> {
        let events = add_path(&folder, o, &mut |b| {
            *blocks += b.len();
            Ok(())
        })
        .unwrap();
        events.into_iter().map(|e| e.name).collect()
    };
    let expected = [
        "test-folder/alice.txt",
        "test-folder/files/hello.txt",
        "test-folder/files/ipfs.txt",
        "test-folder/hello-link",
        "test-folder/holmes.txt",
        "test-folder/jungle.txt",
        "test-folder/pp.txt",
        "test-folder/files",
        "test-folder",
    ];
    assert_eq!(names(&ImportOptions::default(), &mut blocks), expected);
    assert!(blocks >= expected.len());
    let wrapped = names(&opts(&[("wrap-with-directory", "true")]), &mut blocks);
    assert_eq!(wrapped[..expected.len()], expected);
    assert_eq!(wrapped[expected.len()], "");
}

#[test]
fn directory_builder_rejects_bad_paths() {
    let mut d = DirectoryBuilder::new(&ImportOptions::default()).unwrap();
    let (f, _) = FileImporter::new(&ImportOptions::default())
        .unwrap()
        .finish()
        .unwrap();
    d.add_file("a/b", &f).unwrap();
    for bad in ["", "a/b", "a//c", "../x", "a/./c", "/abs", "a/b/c"] {
        assert!(d.add_file(bad, &f).is_err(), "{bad:?}");
    }
    // A directory under a file, and a file where a directory is.
    assert!(d.add_directory("a/b/c", None, None).is_err());
    assert!(d.add_file("a", &f).is_err());
    let (dirs, _) = d.finish().unwrap();
    assert_eq!(
        dirs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        ["a", ""]
    );
}

/// The HAMT switch: 5800 entries of 8-byte names are 243600 bytes by Kubo's `links` estimate
/// (plain) and about 290 KB as a block (`block` estimation: sharded); `max-directory-links`
/// shards by count. The oracle test checks the CIDs; this checks which side each lands on.
#[test]
fn hamt_switch_by_estimate_and_link_count() {
    use cairn_unixfs::importer::HamtSizeEstimation;
    let (empty, _) = FileImporter::new(&ImportOptions::default())
        .unwrap()
        .finish()
        .unwrap();
    let root_type = |o: &ImportOptions, n: usize| -> u8 {
        let mut d = DirectoryBuilder::new(o).unwrap();
        for i in 0..n {
            d.add_file(&format!("b{i:07}"), &empty).unwrap();
        }
        let (_, blocks) = d.finish().unwrap();
        let node = ipld_dagpb::PbNode::from_bytes(blocks.last().unwrap().data().clone()).unwrap();
        // UnixFS Data field 1 (Type): 1 directory, 5 HAMT shard.
        node.data.unwrap()[1]
    };
    let mut o = ImportOptions::default();
    assert_eq!(root_type(&o, 5800), 1);
    o.hamt_size_estimation = HamtSizeEstimation::Block;
    assert_eq!(root_type(&o, 5800), 5);
    o.hamt_size_estimation = HamtSizeEstimation::Disabled;
    assert_eq!(root_type(&o, 7000), 1);
    o.max_directory_links = 10;
    assert_eq!(root_type(&o, 11), 5);
    assert_eq!(root_type(&o, 10), 1);
}
