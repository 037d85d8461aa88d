//! Kubo's file and DAG commands over real HTTP: `dag/put|get|resolve|stat|export|import`, `ls`,
//! `get` (tar), `refs/local`, with Kubo's output shapes.

mod common;

use std::io::Read;

use common::{assert_kubo_error, start};

/// Multipart with one part of `data`.
async fn put_dag(api: &common::Api, query: &str, data: &[u8]) -> String {
    let a = api
        .post_files(&format!("/api/v0/dag/put?{query}"), &[data])
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    a.lines()[0]["Cid"]["/"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dag_put_get_resolve_stat() {
    let api = start().await;
    // A raw leaf, then a dag-cbor node linking to it.
    let a = api
        .post_files("/api/v0/block/put?cid-codec=raw", &[b"leaf bytes"])
        .await;
    let leaf = a.json()["Key"].as_str().unwrap().to_string();
    let doc = format!(r#"{{"name":"x","n":[1,2,{{"deep":true}}],"link":{{"/":"{leaf}"}}}}"#);
    let root = put_dag(&api, "", doc.as_bytes()).await;
    assert!(root.starts_with("bafyrei"), "dag-cbor CIDv1: {root}");

    // dag/get round-trips to dag-json (keys sorted as dag-json requires), and into paths.
    let a = api.post(&format!("/api/v0/dag/get?arg={root}")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["link"]["/"], leaf.as_str());
    assert_eq!(v["n"][2]["deep"], true);
    let a = api.post(&format!("/api/v0/dag/get?arg={root}/n/1")).await;
    assert_eq!(a.text().trim(), "2");
    // A path through the link reaches the raw leaf: as dag-json, bytes.
    let a = api.post(&format!("/api/v0/dag/get?arg={root}/link")).await;
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert!(v["/"]["bytes"].is_string(), "{v}");
    let a = api
        .post(&format!("/api/v0/dag/get?arg={root}/nothing"))
        .await;
    assert_eq!(a.status, 500, "{}", a.text());

    // dag/resolve: the block reached and the path left inside it.
    let a = api
        .post(&format!("/api/v0/dag/resolve?arg=/ipfs/{root}/n/2/deep"))
        .await;
    assert_eq!(a.json()["Cid"]["/"], root.as_str());
    assert_eq!(a.json()["RemPath"], "n/2/deep");
    let a = api
        .post(&format!("/api/v0/dag/resolve?arg={root}/link"))
        .await;
    assert_eq!(a.json()["Cid"]["/"], leaf.as_str());
    assert_eq!(a.json()["RemPath"], "");

    // dag/stat: two distinct blocks.
    let a = api.post(&format!("/api/v0/dag/stat?arg={root}")).await;
    let v = a.json();
    assert_eq!(v["DagStats"][0]["NumBlocks"], 2, "{v}");
    assert_eq!(v["UniqueBlocks"], 2);

    // Bad input: not JSON, an unknown codec.
    let a = api.post_files("/api/v0/dag/put", &[b"{not json"]).await;
    assert_kubo_error(&a, 400, "dag-json");
    let a = api
        .post_files("/api/v0/dag/put?store-codec=nope", &[b"{}"])
        .await;
    assert_kubo_error(&a, 400, "nope");

    // refs/local lists both blocks, as Kubo does: by multihash, printed as CIDv1 raw.
    let a = api.post("/api/v0/refs/local").await;
    let hashes: Vec<Vec<u8>> = a
        .lines()
        .iter()
        .map(|l| {
            let c: cid::Cid = l["Ref"].as_str().unwrap().parse().unwrap();
            c.hash().to_bytes()
        })
        .collect();
    for c in [&root, &leaf] {
        let c: cid::Cid = c.parse().unwrap();
        assert!(hashes.contains(&c.hash().to_bytes()), "{c} in {hashes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_get_and_car_round_trip() {
    let api = start().await;
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let a = api.post_files("/api/v0/add?pin=false", &[&data]).await;
    let file = a.lines().last().unwrap()["Hash"]
        .as_str()
        .unwrap()
        .to_string();
    // A UnixFS directory (Data = Type Directory) holding the file, put as dag-pb.
    let dir_json = format!(
        r#"{{"Data":{{"/":{{"bytes":"CAE"}}}},"Links":[{{"Hash":{{"/":"{file}"}},"Name":"data.bin","Tsize":700000}}]}}"#
    );
    let dir = put_dag(&api, "store-codec=dag-pb", dir_json.as_bytes()).await;

    // ls: Kubo's Objects/Links shape; the file's type 2 and size read from its root.
    let a = api.post(&format!("/api/v0/ls?arg=/ipfs/{dir}")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    let link = &v["Objects"][0]["Links"][0];
    assert_eq!(v["Objects"][0]["Hash"], format!("/ipfs/{dir}"));
    assert_eq!(link["Name"], "data.bin");
    assert_eq!(link["Hash"], file.as_str());
    assert_eq!(link["Type"], 2);
    assert_eq!(link["Size"], 700_000);
    let a = api.post(&format!("/api/v0/ls?arg={dir}&stream=true")).await;
    assert_eq!(a.lines().len(), 1);

    // get: a tar with the directory and the file under it.
    let a = api.post(&format!("/api/v0/get?arg=/ipfs/{dir}")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let mut archive = tar::Archive::new(&a.body[..]);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        if name.ends_with("data.bin") {
            let mut got = Vec::new();
            entry.read_to_end(&mut got).unwrap();
            assert_eq!(got, data);
        }
        names.push(name);
    }
    assert_eq!(
        names
            .iter()
            .map(|n| n.trim_end_matches('/'))
            .collect::<Vec<_>>(),
        vec![dir.as_str(), &format!("{dir}/data.bin")]
    );
    // A path to the file inside the directory; gzip with a level; a bad level.
    let a = api
        .post(&format!(
            "/api/v0/get?arg={dir}/data.bin&compress=true&compression-level=9"
        ))
        .await;
    assert_eq!(&a.body[..2], &[0x1f, 0x8b], "gzip magic");
    let a = api
        .post(&format!(
            "/api/v0/get?arg={dir}&compress=true&compression-level=10"
        ))
        .await;
    assert_kubo_error(&a, 400, "compression level must be between 1 and 9");

    // dag/export → dag/import into another node: roots pinned, stats, then the file reads back.
    let car = api.post(&format!("/api/v0/dag/export?arg={dir}")).await;
    assert_eq!(car.status, 200);
    let other = start().await;
    let a = other
        .post_files("/api/v0/dag/import?stats=true", &[&car.body])
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let lines = a.lines();
    assert_eq!(lines[0]["Root"]["Cid"]["/"], dir.as_str());
    assert_eq!(lines[0]["Root"]["PinErrorMsg"], "");
    assert_eq!(
        lines[1]["Stats"]["BlockCount"], 5,
        "dir, file root, 3 leaves"
    );
    let a = other
        .post(&format!("/api/v0/cat?arg=/ipfs/{file}&offline=true"))
        .await;
    assert_eq!(a.body.len(), data.len());
    let a = other.post("/api/v0/pin/ls?type=recursive").await;
    assert!(a.text().contains(&dir), "{}", a.text());
    // Garbage is refused with a clear error.
    let a = other
        .post_files("/api/v0/dag/import", &[b"definitely not a car file"])
        .await;
    assert_eq!(a.status, 400, "{}", a.text());
}
