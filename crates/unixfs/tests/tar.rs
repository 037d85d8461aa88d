//! `get`'s tar stream: trees, files, symlinks, HAMTs, long names, gzip, and DAGs with names
//! that try to leave the output directory.

mod common;

use std::io::Read;

use bytes::Bytes;
use cairn_unixfs::tar::{GetOptions, check_entry_name, get, root_name};
use cairn_unixfs::{Cid, UnixfsError};
use common::*;
use futures::TryStreamExt;

const PLAIN: GetOptions = GetOptions {
    archive: false,
    compression: None,
    mtime: 1_700_000_000,
};

async fn tar_bytes(
    store: &MemStore,
    root: Cid,
    path: &str,
    opts: GetOptions,
) -> Result<Vec<u8>, UnixfsError> {
    let chunks: Vec<Bytes> = get(store, root, path, opts).await?.try_collect().await?;
    Ok(chunks.concat())
}

/// (path, type byte, mode, content or link target) of each entry.
fn entries(tar: &[u8]) -> Vec<(String, u8, u32, Vec<u8>)> {
    assert_eq!(tar.len() % 512, 0, "a tar stream is whole 512-byte blocks");
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let header = e.header().clone();
        assert_eq!(header.mtime().unwrap(), 1_700_000_000);
        let mut body = Vec::new();
        if let Some(link) = e.link_name().unwrap() {
            body = link.to_string_lossy().as_bytes().to_vec();
        } else {
            e.read_to_end(&mut body).unwrap();
        }
        out.push((
            path,
            header.entry_type().as_byte(),
            header.mode().unwrap(),
            body,
        ));
    }
    out
}

#[tokio::test]
async fn directory_tree_as_kubo_get_writes_it() {
    let store = MemStore::default();
    let root = add_tree(
        &store,
        &[
            ("d/a.txt", data(300, 1)),
            ("d/sub/b.bin", data(70_000, 2)),
            ("d/e", Vec::new()),
        ],
        None,
    );
    let d = cairn_unixfs::exporter::resolve(&store, &root, &["d".into()])
        .await
        .unwrap()
        .cid;
    let tar = tar_bytes(&store, d, &format!("/ipfs/{root}/d"), PLAIN)
        .await
        .unwrap();
    let got = entries(&tar);
    let summary: Vec<_> = got.iter().map(|e| (e.0.as_str(), e.1, e.2)).collect();
    assert_eq!(
        summary,
        [
            ("d", b'5', 0o777),
            ("d/a.txt", b'0', 0o644),
            ("d/e", b'0', 0o644),
            ("d/sub", b'5', 0o777),
            ("d/sub/b.bin", b'0', 0o644),
        ]
    );
    assert_eq!(got[1].3, data(300, 1));
    assert!(got[2].3.is_empty());
    assert_eq!(got[4].3, data(70_000, 2));

    // With --archive --compress the same archive comes gzipped.
    let gz = tar_bytes(
        &store,
        d,
        "d",
        GetOptions {
            archive: true,
            compression: Some(6),
            ..PLAIN
        },
    )
    .await
    .unwrap();
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, tar);
}

#[tokio::test]
async fn single_file_and_compressed_file() {
    let store = MemStore::default();
    let bytes = data(5_000, 4);
    let (file, _) = add_file(&store, &bytes, 1_000, 3, true);
    let tar = tar_bytes(&store, file, &file.to_string(), PLAIN)
        .await
        .unwrap();
    assert_eq!(
        entries(&tar),
        vec![(file.to_string(), b'0', 0o644, bytes.clone())]
    );

    // --compress without --archive: the file's bytes, gzipped.
    let gz = tar_bytes(
        &store,
        file,
        "x",
        GetOptions {
            compression: Some(9),
            ..PLAIN
        },
    )
    .await
    .unwrap();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, bytes);

    // ... which a directory cannot be.
    let dir = add_tree(&store, &[("f", data(10, 1))], None);
    let err = tar_bytes(
        &store,
        dir,
        "x",
        GetOptions {
            compression: Some(1),
            ..PLAIN
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "file is not regular");
}

#[tokio::test]
async fn symlinks_long_names_and_hamts() {
    let store = MemStore::default();
    let long = "n".repeat(150);
    let files: Vec<(String, Vec<u8>)> = (0..100)
        .map(|i| (format!("h/{long}-{i}"), data(i, i as u8)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    let root = add_tree(&store, &refs, Some(2_000));
    let h = cairn_unixfs::exporter::resolve(&store, &root, &["h".into()])
        .await
        .unwrap()
        .cid;
    let link = put_pb(
        &store,
        unixfs_data(4, Some(b"../elsewhere"), None, &[]),
        vec![],
    );
    let top = put_pb(
        &store,
        unixfs_data(1, None, None, &[]),
        vec![("h", h, 1), ("ln", link, 1)],
    );
    let got = entries(&tar_bytes(&store, top, "top", PLAIN).await.unwrap());
    assert_eq!(got.len(), 1 + 1 + 100 + 1);
    assert_eq!(got[0].0, "top");
    let last = got.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1, last.3.as_slice()),
        ("top/ln", b'2', &b"../elsewhere"[..])
    );
    let mut names: Vec<_> = got[2..102].iter().map(|e| e.0.clone()).collect();
    names.sort();
    let mut want: Vec<_> = (0..100).map(|i| format!("top/h/{long}-{i}")).collect();
    want.sort();
    assert_eq!(names, want);
    for e in &got[2..102] {
        let i: usize = e.0.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(e.3, data(i, i as u8));
    }
}

#[tokio::test]
async fn malicious_names_are_refused() {
    let store = MemStore::default();
    let file = put_raw(&store, b"payload");
    for bad in ["..", ".", "a/b", "/etc", "", "x\0y", "../../etc/passwd"] {
        let dir = put_pb(
            &store,
            unixfs_data(1, None, None, &[]),
            vec![("ok", file, 7), (bad, file, 7)],
        );
        let mut stream = get(&store, dir, "out", PLAIN).await.unwrap();
        let mut emitted = Vec::new();
        let err = loop {
            match stream.try_next().await {
                Ok(Some(chunk)) => emitted.extend_from_slice(&chunk),
                Ok(None) => panic!("{bad:?} was archived"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, UnixfsError::UnsafePath(_)), "{bad:?}: {err}");
        // Nothing before the error names the bad entry.
        assert!(
            !String::from_utf8_lossy(&emitted).contains(&format!("out/{bad}\0")) || bad.is_empty()
        );
    }
    assert_eq!(
        check_entry_name("..").unwrap_err().to_string(),
        "relative UnixFS paths outside the root are now allowed, use CAR instead"
    );
    assert_eq!(root_name("/ipfs/bafyfoo/a/b").unwrap(), "b");
    assert_eq!(root_name("bafyfoo/").unwrap(), "bafyfoo");
    assert!(root_name("/").is_err());
    assert!(root_name("/ipfs/x/..").is_err());
}

#[tokio::test]
async fn a_file_shorter_than_its_size_is_an_error() {
    let store = MemStore::default();
    let leaf = put_raw(&store, b"0123456789");
    // Claims 20 bytes (filesize and blocksize) over a 10-byte leaf.
    let file = put_pb(
        &store,
        unixfs_data(2, None, Some(20), &[20]),
        vec![("", leaf, 10)],
    );
    let err = tar_bytes(&store, file, "f", PLAIN).await.unwrap_err();
    assert!(matches!(err, UnixfsError::InvalidBlock { .. }), "{err}");
}
