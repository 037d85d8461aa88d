//! The repo commands over a real node's RPC: `repo/verify` naming a block damaged on disk, a
//! fresh `block/put` repairing it, `repo/gc` streaming with `stream-errors`, and `repo/stat`
//! from the index.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::{Answer, Api, assert_kubo_error, start};
use rand::RngCore;

/// Kubo's flatfs path of a block in the repo: `blocks/<XX>/<base32 multihash>.data`.
fn block_file(repo: &Path, cid: &str) -> PathBuf {
    let cid = cairn_blockstore::parse_cid_str(cid).unwrap();
    let name = data_encoding::BASE32_NOPAD.encode(&cid.hash().to_bytes());
    let shard = &name[name.len() - 3..name.len() - 1];
    repo.join("blocks").join(shard).join(format!("{name}.data"))
}

fn random(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    data
}

async fn put(api: &Api, data: &[u8]) -> String {
    let a = api.post_files("/api/v0/block/put", &[data]).await;
    assert_eq!(a.status, 200, "{}", a.text());
    a.lines()[0]["Key"].as_str().unwrap().to_string()
}

/// POST asking for trailers, where stream errors travel.
async fn post_t(api: &Api, path: &str) -> Answer {
    api.send("POST", path, &[("te", "trailers")], Bytes::new())
        .await
}

#[tokio::test]
async fn verify_names_a_damaged_block_and_a_fresh_put_repairs_it() {
    let api = start().await;
    let good = random(200 << 10);
    let bad = random(200 << 10);
    let _good_cid = put(&api, &good).await;
    let bad_cid = put(&api, &bad).await;
    let verify = post_t(&api, "/api/v0/repo/verify").await;
    assert_eq!(verify.stream_error(), None, "{}", verify.text());
    assert_eq!(
        verify.lines().last().unwrap()["Msg"],
        "verify complete, all blocks validated."
    );

    // Damage one block on disk, keeping its length.
    let path = block_file(api.repo.path(), &bad_cid);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();

    // A read answers an error, never the altered bytes.
    let get = api.post(&format!("/api/v0/block/get?arg={bad_cid}")).await;
    assert_kubo_error(&get, 500, "damaged");
    let verify = post_t(&api, "/api/v0/repo/verify").await;
    let lines = verify.lines();
    let named: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["Msg"].as_str())
        .filter(|m| m.contains("was corrupt"))
        .collect();
    assert_eq!(named.len(), 1, "{lines:?}");
    assert!(
        named[0].starts_with(&format!("block {}", raw_v1(&bad_cid))),
        "{named:?}"
    );
    assert_eq!(
        verify.stream_error().as_deref(),
        Some("verify complete, some blocks were corrupt")
    );

    // The right bytes put again replace the damaged copy.
    assert_eq!(put(&api, &bad).await, bad_cid);
    let get = api.post(&format!("/api/v0/block/get?arg={bad_cid}")).await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body.as_ref(), bad.as_slice());
    let verify = post_t(&api, "/api/v0/repo/verify").await;
    assert_eq!(verify.stream_error(), None, "{}", verify.text());
}

/// The CIDv1-raw form the store reports (it keys by multihash, as Kubo).
fn raw_v1(cid: &str) -> String {
    let cid = cairn_blockstore::parse_cid_str(cid).unwrap();
    cairn_blockstore::Cid::new_v1(cairn_blockstore::codec::RAW, *cid.hash()).to_string()
}

#[tokio::test]
async fn gc_streams_removals_and_stream_errors_reports_failures() {
    let api = start().await;
    // The pinned block is dag-cbor (a 100 KiB byte string), so GC must read it to find links.
    let mut cbor = vec![0x5a];
    cbor.extend_from_slice(&(100u32 << 10).to_be_bytes());
    cbor.extend_from_slice(&random(100 << 10));
    let a = api
        .post_files("/api/v0/block/put?cid-codec=dag-cbor", &[&cbor])
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let keep = a.lines()[0]["Key"].as_str().unwrap().to_string();
    let mut drop = Vec::new();
    for _ in 0..3 {
        drop.push(put(&api, &random(100 << 10)).await);
    }
    drop.push(put(&api, b"small").await);
    api.post(&format!("/api/v0/pin/add?arg={keep}")).await;

    let stat = api.post("/api/v0/repo/stat").await.json();
    assert_eq!(stat["NumObjects"], 5);
    let before = stat["RepoSize"].as_u64().unwrap();

    let gc = post_t(&api, "/api/v0/repo/gc?quiet=true").await;
    assert_eq!(gc.stream_error(), None);
    let mut removed: Vec<String> = gc
        .lines()
        .iter()
        .map(|l| l["Key"]["/"].as_str().unwrap().to_string())
        .collect();
    removed.sort();
    let mut want: Vec<String> = drop.iter().map(|c| raw_v1(c)).collect();
    want.sort();
    assert_eq!(removed, want);
    let stat = api.post("/api/v0/repo/stat").await.json();
    assert_eq!(stat["NumObjects"], 1);
    let after = stat["RepoSize"].as_u64().unwrap();
    assert!(
        after + 300_000 <= before,
        "GC gave space back: {before} -> {after}"
    );

    // A pinned block whose file vanished: GC refuses to guess.
    std::fs::remove_file(block_file(api.repo.path(), &keep)).unwrap();
    let gc = post_t(&api, "/api/v0/repo/gc").await;
    let err = gc.stream_error().expect("GC fails");
    assert!(err.contains("damaged"), "{err}");
    let gc = post_t(&api, "/api/v0/repo/gc?stream-errors=true").await;
    let lines = gc.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0]["Key"].is_null() && lines[0]["Error"].as_str().unwrap().contains("damaged"));
    assert_eq!(
        gc.stream_error().as_deref(),
        Some("encountered errors during gc run")
    );
}
