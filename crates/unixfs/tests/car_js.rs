//! CAR interop with @ipld/car 5.4.7 (JavaScript, `tests/js/car.mjs`): it reads a CAR cairn
//! wrote (roots, blocks in order, sha2-256 hashes checked), cairn reads a CAR it wrote, and both
//! agree on the interface-ipfs-core fixtures.
//!
//! Needs `npm ci --ignore-scripts --prefix crates/unixfs/tests/js` first; without
//! `tests/js/node_modules` the test FAILS, unless `CAIRN_SKIP_JS=1` is set.

mod common;

use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use cairn_unixfs::Cid;
use cairn_unixfs::car::{self, CarReader};
use common::*;
use futures::TryStreamExt;
use serde_json::Value;

fn js_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if dir.join("node_modules/@ipld/car").is_dir() {
        return Some(dir);
    }
    if std::env::var("CAIRN_SKIP_JS").as_deref() == Ok("1") {
        eprintln!("CAIRN_SKIP_JS=1: skipping the @ipld/car interop test");
        return None;
    }
    panic!(
        "{}/node_modules is missing: run `npm ci --ignore-scripts --prefix crates/unixfs/tests/js` \
         (or set CAIRN_SKIP_JS=1 to skip)",
        dir.display()
    );
}

fn run_js(dir: &std::path::Path, mode: &str, file: &std::path::Path) -> Value {
    let out = Command::new("node")
        .arg(dir.join("car.mjs"))
        .arg(mode)
        .arg(file)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "car.mjs {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("car.mjs prints JSON")
}

/// (roots, [(cid, len)]) from car.mjs's JSON.
fn js_summary(v: &Value) -> (Vec<String>, Vec<(String, u64)>) {
    let roots = v["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let blocks = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b[0].as_str().unwrap().to_string(), b[1].as_u64().unwrap()))
        .collect();
    (roots, blocks)
}

async fn rust_summary(bytes: &[u8]) -> (Vec<String>, Vec<(String, u64)>) {
    let reader = CarReader::new(bytes).await.expect("cairn reads the CAR");
    let roots = reader.roots().iter().map(Cid::to_string).collect();
    let blocks: Vec<cairn_unixfs::Block> = reader.blocks().try_collect().await.unwrap();
    let blocks = blocks
        .iter()
        .map(|b| (b.cid().to_string(), b.len() as u64))
        .collect();
    (roots, blocks)
}

#[tokio::test]
async fn car_round_trip_with_ipld_car() {
    let Some(js) = js_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();

    // cairn writes, @ipld/car reads.
    let store = MemStore::default();
    let root = add_tree(
        &store,
        &[
            ("d/a", data(5_000, 1)),
            ("d/b/c", data(100, 2)),
            ("d/b/again", data(5_000, 1)),
        ],
        None,
    );
    let (file_root, _) = add_file(&store, &data(20_000, 3), 1_000, 4, false);
    let chunks: Vec<Bytes> = car::export(&store, vec![root, file_root])
        .try_collect()
        .await
        .unwrap();
    let ours = chunks.concat();
    let path = tmp.path().join("cairn.car");
    std::fs::write(&path, &ours).unwrap();
    let js_view = js_summary(&run_js(&js, "read", &path));
    assert_eq!(js_view.0, vec![root.to_string(), file_root.to_string()]);
    assert_eq!(js_view.1.len(), store.len());
    assert_eq!(
        js_view,
        rust_summary(&ours).await,
        "both readers see the same CAR"
    );

    // @ipld/car writes, cairn reads (hashes checked by cairn's reader).
    let path = tmp.path().join("js.car");
    let written = js_summary(&run_js(&js, "write", &path));
    let theirs = std::fs::read(&path).unwrap();
    assert_eq!(rust_summary(&theirs).await, written);
    assert_eq!(written.1.len(), 4);
    assert_eq!(written.0.len(), 2);
}

#[tokio::test]
async fn fixtures_agree_with_ipld_car() {
    let Some(js) = js_dir() else { return };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/interface-ipfs-core-fixtures/car");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("car") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            rust_summary(&bytes).await,
            js_summary(&run_js(&js, "read", &path)),
            "{}",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 5, "found {n} fixtures");
}
