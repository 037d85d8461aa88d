//! File and directory CIDs against values known from Kubo and from ipfs-unixfs-importer 17.1.1
//! (`../shared/reference/rust-stack.md` Appendix C), with the streaming API driven in odd-sized
//! pieces so chunk boundaries cannot depend on how input arrives.

use std::collections::HashSet;

use cairn_unixfs::importer::{DirectoryBuilder, FileImporter, FileResult, ImportOptions};
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
