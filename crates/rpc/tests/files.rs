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

/// A multipart body of a local tree as Kubo's clients send it: a directory part
/// (`application/x-directory`) before its entries, files with their URL-escaped relative path in
/// `filename`, symlinks as `application/symlink` parts; hidden entries only with `hidden`.
fn tree_body(root: &std::path::Path, hidden: bool, boundary: &str) -> Vec<u8> {
    fn escape(path: &str) -> String {
        path.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    fn walk(dir: &std::path::Path, rel: &str, hidden: bool, boundary: &str, body: &mut Vec<u8>) {
        let part = |body: &mut Vec<u8>, ct: &str, name: &str, data: &[u8]| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {ct}\r\n\r\n",
                    escape(name)
                )
                .as_bytes(),
            );
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        };
        part(body, "application/x-directory", rel, b"");
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        // Sorted, depth first, a directory's entries right after it: Go's serial file walk.
        for e in entries {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') && !hidden {
                continue;
            }
            let path = format!("{rel}/{name}");
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                walk(&e.path(), &path, hidden, boundary, body);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(e.path()).unwrap();
                part(
                    body,
                    "application/symlink",
                    &path,
                    target.to_string_lossy().as_bytes(),
                );
            } else {
                part(
                    body,
                    "application/octet-stream",
                    &path,
                    &std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    let mut body = Vec::new();
    let name = root.file_name().unwrap().to_string_lossy().to_string();
    walk(root, &name, hidden, boundary, &mut body);
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/interface-ipfs-core-fixtures")
}

/// Directories through the RPC give the CIDs and lines of the importer's own walk of the same
/// folder (whose CIDs `cairn-unixfs`'s tests check against Kubo and ipfs-unixfs-importer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_directories_like_kubo() {
    use cairn_node_core::unixfs::importer::{ImportOptions, add_path};
    let api = start().await;
    let boundary = "------------------------cairndirboundary";
    let ct = format!("multipart/form-data; boundary={boundary}");
    for (folder, query, hidden) in [
        ("test-folder", "", false),
        ("hidden-files-folder", "hidden=true", true),
        ("hidden-files-folder", "", false),
        ("weird name folder [v0]", "", false),
        (
            "test-folder",
            "cid-version=1&wrap-with-directory=true",
            false,
        ),
        ("refs-test", "chunker=size-64&trickle=true", false),
    ] {
        let root = fixtures().join(folder);
        let body = tree_body(&root, hidden, boundary);
        let a = api
            .send(
                "POST",
                &format!("/api/v0/add?{query}"),
                &[("content-type", &ct)],
                body.into(),
            )
            .await;
        assert_eq!(a.status, 200, "{folder}: {}", a.text());
        assert!(
            a.stream_error().is_none(),
            "{folder}: {:?}",
            a.stream_error()
        );
        let got: Vec<(String, String, String)> = a
            .lines()
            .iter()
            .map(|l| {
                (
                    l["Name"].as_str().unwrap().to_string(),
                    l["Hash"].as_str().unwrap().to_string(),
                    l["Size"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mut opts = ImportOptions::default();
        for (k, v) in query
            .split('&')
            .filter(|q| !q.is_empty())
            .map(|q| q.split_once('=').unwrap())
        {
            opts.set(k, v).unwrap();
        }
        let want: Vec<(String, String, String)> = add_path(&root, &opts, &mut |_| Ok(()))
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.cid.to_string(), e.size.to_string()))
            .collect();
        assert_eq!(got, want, "{folder} {query}");
        // The root is pinned and readable.
        let root_cid = &got.last().unwrap().1;
        let a = api
            .post(&format!("/api/v0/pin/ls?arg={root_cid}&type=recursive"))
            .await;
        assert_eq!(a.status, 200, "{folder}: {}", a.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_single_files_progress_and_options() {
    let api = start().await;
    // Kubo's CIDs for `echo "hello world" | ipfs add` (v0) and with --cid-version=1.
    let a = api.post_files("/api/v0/add", &[b"hello world\n"]).await;
    let l = &a.lines()[0];
    assert_eq!(l["Hash"], "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
    assert_eq!(l["Name"], "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
    assert_eq!(l["Size"], "20");
    let a = api
        .post_files("/api/v0/add?cid-version=1", &[b"hello world\n"])
        .await;
    assert_eq!(
        a.lines()[0]["Hash"],
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    );
    // Progress: Bytes lines every 256 KiB and at the end, then the result.
    let data = vec![7u8; 600 << 10];
    let a = api.post_files("/api/v0/add?progress=true", &[&data]).await;
    let lines = a.lines();
    let bytes: Vec<u64> = lines.iter().filter_map(|l| l["Bytes"].as_u64()).collect();
    assert!(bytes.len() >= 2, "{lines:?}");
    assert_eq!(*bytes.last().unwrap(), data.len() as u64);
    assert!(lines.last().unwrap()["Hash"].is_string());
    // only-hash stores nothing; silent prints nothing.
    let a = api
        .post_files("/api/v0/add?only-hash=true", &[b"not stored anywhere"])
        .await;
    let cid = a.lines()[0]["Hash"].as_str().unwrap().to_string();
    let a = api
        .post(&format!("/api/v0/block/stat?arg={cid}&offline=true"))
        .await;
    assert_eq!(a.status, 500, "{}", a.text());
    let a = api.post_files("/api/v0/add?silent=true", &[b"quiet"]).await;
    assert_eq!(a.status, 200);
    assert!(a.lines().is_empty());
    // Bad options are the client's error, with Kubo's words.
    let a = api.post_files("/api/v0/add?chunker=size-0", &[b"x"]).await;
    assert_eq!(a.status, 400, "{}", a.text());
    let a = api
        .post_files("/api/v0/add?hash=sha2-512&cid-version=0", &[b"x"])
        .await;
    assert_kubo_error(&a, 400, "CIDv0 only supports sha2-256");
    let a = api.post_files("/api/v0/add?nocopy=true", &[b"x"]).await;
    assert_kubo_error(&a, 500, "filestore is not enabled");
}
