//! CAR: our writer's output read back by our reader, CARv2 wrapping, the interface-ipfs-core
//! fixtures (roots and block counts as @ipld/car 5.4.7 reads them), and garbage.

mod common;

use std::collections::HashSet;

use bytes::Bytes;
use cairn_unixfs::car::{self, CarReader, MAX_SECTION_LEN};
use cairn_unixfs::{Block, Cid, UnixfsError};
use common::*;
use futures::TryStreamExt;

const FIXTURES: &str = "../../../shared/interface-ipfs-core-fixtures/car";

fn fixture_dir() -> std::path::PathBuf {
    // The worktree sits beside shared/ (/work/shared); CI copies shared/ beside the clone.
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.join(FIXTURES)
}

async fn read_all(bytes: &[u8]) -> Result<(u64, Vec<Cid>, Vec<Block>), UnixfsError> {
    let reader = CarReader::new(bytes).await?;
    let (version, roots) = (reader.version(), reader.roots().to_vec());
    let blocks = reader.blocks().try_collect().await?;
    Ok((version, roots, blocks))
}

async fn export(store: &MemStore, roots: Vec<Cid>) -> Vec<u8> {
    let chunks: Vec<Bytes> = car::export(store, roots).try_collect().await.unwrap();
    chunks.concat()
}

#[tokio::test]
async fn export_then_read_round_trip() {
    let store = MemStore::default();
    let same = data(700, 9);
    let root = add_tree(
        &store,
        &[
            ("d/a", same.clone()),
            ("d/b", data(2_000, 3)),
            ("d/sub/a-again", same),
        ],
        None,
    );
    let bytes = export(&store, vec![root]).await;
    let (version, roots, blocks) = read_all(&bytes).await.unwrap();
    assert_eq!(version, 1);
    assert_eq!(roots, vec![root]);
    assert_eq!(blocks[0].cid(), &root, "the root comes first");
    let cids: Vec<Cid> = blocks.iter().map(|b| *b.cid()).collect();
    let distinct: HashSet<Cid> = cids.iter().copied().collect();
    assert_eq!(distinct.len(), cids.len(), "each block once");
    assert_eq!(cids.len(), store.len(), "every block of the DAG");
    for b in &blocks {
        assert_eq!(store.blocks.lock().unwrap().get(b.cid()).unwrap(), b.data());
    }
    // Depth first: every block after the root is a child of an earlier block.
    let mut seen = HashSet::new();
    seen.insert(root);
    for b in &blocks[1..] {
        assert!(
            blocks.iter().take_while(|p| p.cid() != b.cid()).any(|p| {
                cairn_unixfs::refs::named_links(p.cid(), p.data())
                    .unwrap()
                    .iter()
                    .any(|(c, _)| c == b.cid())
            }),
            "{} has no parent before it",
            b.cid()
        );
        seen.insert(*b.cid());
    }
}

#[tokio::test]
async fn export_of_a_missing_block_fails_the_stream() {
    let store = MemStore::default();
    let (root, _) = add_file(&store, &data(1_000, 1), 100, 3, true);
    let leaf = *store
        .blocks
        .lock()
        .unwrap()
        .keys()
        .find(|c| c.codec() == 0x55)
        .unwrap();
    store.remove(&leaf);
    let err = car::export(&store, vec![root])
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, UnixfsError::BlockNotFound(c) if c == leaf));
}

/// Wraps a CARv1 as CARv2 with `pad` bytes between header and payload and a fake index after.
fn to_v2(v1: &[u8], pad: usize) -> Vec<u8> {
    let mut out = car::CARV2_PRAGMA.to_vec();
    out.extend_from_slice(&[0u8; 16]);
    let offset = (11 + 40 + pad) as u64;
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&(v1.len() as u64).to_le_bytes());
    out.extend_from_slice(&(offset + v1.len() as u64).to_le_bytes());
    out.extend(std::iter::repeat_n(0u8, pad));
    out.extend_from_slice(v1);
    out.extend_from_slice(b"\x80\x04index bytes that are ignored");
    out
}

#[tokio::test]
async fn carv2_payload_is_read_and_index_ignored() {
    let store = MemStore::default();
    let (root, _) = add_file(&store, &data(5_000, 2), 1_000, 2, false);
    let v1 = export(&store, vec![root]).await;
    let (_, roots1, blocks1) = read_all(&v1).await.unwrap();
    for pad in [0, 7] {
        let (version, roots, blocks) = read_all(&to_v2(&v1, pad)).await.unwrap();
        assert_eq!(version, 2);
        assert_eq!(roots, roots1);
        assert_eq!(blocks, blocks1);
    }
}

#[tokio::test]
async fn interface_core_fixtures() {
    // Roots and block counts as @ipld/car 5.4.7 reports them (see tests/js/car.mjs).
    let cases: &[(&str, &[&str], usize)] = &[
        (
            "combined_naked_roots_genesis_and_128.car",
            &[
                "bafy2bzaceaxm23epjsmh75yvzcecsrbavlmkcxnva66bkdebdcnyw3bjrc74u",
                "bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy",
            ],
            0,
        ),
        (
            "lotus_devnet_genesis.car",
            &["bafy2bzaceaxm23epjsmh75yvzcecsrbavlmkcxnva66bkdebdcnyw3bjrc74u"],
            149,
        ),
        (
            "lotus_devnet_genesis_shuffled_nulroot.car",
            &["bafkqaaa"],
            149,
        ),
        (
            "lotus_testnet_export_128.car",
            &["bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy"],
            1049,
        ),
        (
            "lotus_testnet_export_256_multiroot.car",
            &[
                "bafy2bzacebedrc4n2ac6cqdkhs7lmj5e4xiif3gu7nmoborihajxn3fav3vdq",
                "bafy2bzacede2hsme6hparlbr4g2x6pylj43olp4uihwjq3plqdjyrdhrv7cp4",
                "bafy2bzaceb55n7uxyfaelplulk3ev2xz7gnq6crncf3ahnvu46hqqmpucizcw",
            ],
            2825,
        ),
    ];
    for (name, roots, count) in cases {
        let bytes = std::fs::read(fixture_dir().join(name)).expect("fixture present");
        let (version, got_roots, blocks) = read_all(&bytes).await.expect(name);
        assert_eq!(version, 1);
        let got: Vec<String> = got_roots.iter().map(Cid::to_string).collect();
        assert_eq!(&got, roots, "{name}");
        assert_eq!(blocks.len(), *count, "{name}");
    }
}

#[tokio::test]
async fn garbage_gives_clear_errors() {
    let store = MemStore::default();
    let (root, _) = add_file(&store, &data(3_000, 5), 1_000, 2, true);
    let good = export(&store, vec![root]).await;

    let err = read_all(b"").await.unwrap_err();
    assert_eq!(err.to_string(), "invalid CAR: empty input");
    let err = read_all(b"\xff\xff\xff\xff\x0f").await.unwrap_err();
    assert!(err.to_string().contains("header length"), "{err}");
    let err = read_all(b"\x03abc").await.unwrap_err();
    assert!(err.to_string().contains("header is not dag-cbor"), "{err}");
    // {"version": 3}
    let err = read_all(b"\x0a\xa1\x67version\x03").await.unwrap_err();
    assert_eq!(err.to_string(), "invalid CAR: unsupported CAR version 3");

    // Truncated in the last section.
    let err = read_all(&good[..good.len() - 1]).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid CAR: truncated section");
    // One data byte changed: the hash no longer matches.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = read_all(&bad).await.unwrap_err();
    assert!(err.to_string().contains("hash"), "{err}");
    // A section longer than the limit is refused before it is read.
    let mut big = good[..good.len()].to_vec();
    let mut buf = unsigned_varint::encode::u64_buffer();
    big.extend_from_slice(unsigned_varint::encode::u64(MAX_SECTION_LEN + 1, &mut buf));
    let err = read_all(&big).await.unwrap_err();
    assert!(err.to_string().contains("over the"), "{err}");
    // A CARv2 whose data offset points into its own header.
    let mut v2 = to_v2(&good, 0);
    v2[27..35].copy_from_slice(&10u64.to_le_bytes());
    let err = read_all(&v2).await.unwrap_err();
    assert!(err.to_string().contains("inside its header"), "{err}");
    // A CARv2 whose data size cuts a section.
    let mut v2 = to_v2(&good, 0);
    v2[35..43].copy_from_slice(&((good.len() - 3) as u64).to_le_bytes());
    let err = read_all(&v2).await.unwrap_err();
    assert!(
        err.to_string().contains("past the CARv2 data size"),
        "{err}"
    );
}

/// A sink that records its batches.
#[derive(Default)]
struct Sink(std::sync::Mutex<Vec<Vec<Block>>>);

impl cairn_unixfs::BlockSink for Sink {
    fn put_many(
        &self,
        blocks: Vec<Block>,
    ) -> cairn_unixfs::BoxFuture<'_, Result<(), cairn_unixfs::BoxError>> {
        self.0.lock().unwrap().push(blocks);
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn import_stores_blocks_in_batches() {
    let store = MemStore::default();
    let (root, _) = add_file(&store, &data(10_000, 6), 1_000, 4, true);
    let bytes = export(&store, vec![root]).await;
    let sink = Sink::default();
    let got = car::import(&bytes[..], &sink, 4).await.unwrap();
    assert_eq!(got.roots, vec![root]);
    assert_eq!(got.blocks as usize, store.len());
    {
        let batches = sink.0.lock().unwrap();
        assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 4));
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), store.len());
    }

    // A bad block stops the import with the error; the blocks before it were stored.
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let sink = Sink::default();
    assert!(matches!(
        car::import(&bad[..], &sink, 100).await,
        Err(UnixfsError::Car(_))
    ));
    assert_eq!(sink.0.lock().unwrap().concat().len(), store.len() - 1);
}
