//! `files/*` (MFS) over HTTP: Kubo's options, output shapes and CIDs (t0250-files-api.sh's
//! FILE_HASH and TRUNC_HASH), errors, GC keeping what the MFS root reaches, and the root
//! surviving across commands.

mod common;

use common::{Answer, Api, assert_kubo_error, start};

/// POST asking for trailers (hyper sends `X-Stream-Error` only to clients that accept them, as
/// the CLI does).
async fn post_t(api: &Api, path: &str) -> Answer {
    api.send("POST", path, &[("te", "trailers")], Default::default())
        .await
}

#[tokio::test]
async fn files_commands_match_kubo() {
    let api = start().await;
    // A new repo's MFS root is the empty directory.
    let st = api.post("/api/v0/files/stat?arg=/").await;
    assert_eq!(st.status, 200, "{}", st.text());
    let st = st.json();
    assert_eq!(st["Hash"], "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
    assert_eq!(st["Type"], "directory");
    assert_eq!(st["CumulativeSize"], 4);
    assert_eq!(
        api.post("/api/v0/files/ls").await.json()["Entries"],
        serde_json::Value::Null
    );

    let ok = |a: &Answer| assert_eq!(a.status, 200, "{}", a.text());
    ok(&api.post("/api/v0/files/mkdir?arg=/cats").await);
    assert_kubo_error(
        &api.post("/api/v0/files/mkdir?arg=/cats").await,
        500,
        "file already exists",
    );
    ok(&api.post("/api/v0/files/mkdir?arg=/cats/a/b&p=true").await);
    ok(&api
        .post_files(
            "/api/v0/files/write?arg=/cats/ipfs&create=true",
            &[b"ipfs rocks\n"],
        )
        .await);
    ok(&api
        .post_files(
            "/api/v0/files/write?arg=/cats/ipfs&o=5",
            &[b"is super cool\n"],
        )
        .await);
    let st = api.post("/api/v0/files/stat?arg=/cats/ipfs").await.json();
    assert_eq!(st["Hash"], "QmQdQt9qooenjeaNhiKHF3hBvmNteB4MQBtgu3jxgf9c7i");
    assert_eq!(st["Size"], 19);
    assert_eq!(st["Type"], "file");
    let read = api
        .post("/api/v0/files/read?arg=/cats/ipfs&offset=5&count=8")
        .await;
    assert_eq!(read.text(), "is super");
    assert_kubo_error(
        &api.post("/api/v0/files/read?arg=/cats/ipfs&offset=-1")
            .await,
        500,
        "cannot specify negative offset",
    );
    assert_kubo_error(
        &api.post("/api/v0/files/read?arg=/cats/ipfs&offset=20")
            .await,
        500,
        "offset was past end of file (20 > 19)",
    );
    assert_kubo_error(
        &api.post_files("/api/v0/files/write?arg=/cats/ipfs&offset=-1", &[b"x"])
            .await,
        500,
        "cannot have negative write offset",
    );
    ok(&api
        .post_files(
            "/api/v0/files/write?arg=/trunc&e=true",
            &[b"some content\n"],
        )
        .await);
    ok(&api
        .post_files("/api/v0/files/write?arg=/trunc&t=true", &[b"fish\n"])
        .await);
    let h = api
        .post("/api/v0/files/stat?arg=/trunc&hash=true")
        .await
        .json();
    assert_eq!(h["Hash"], "QmPVnT9gocPbqzN4G6SMp8vAPyzcjDbUJrNdKgzQquuDg4");
    assert_kubo_error(
        &api.post("/api/v0/files/stat?arg=/trunc&hash=true&size=true")
            .await,
        400,
        "format was set by multiple options",
    );

    let ls = api
        .post("/api/v0/files/ls?arg=/cats&long=true")
        .await
        .json();
    let entries = ls["Entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{ls}");
    assert_eq!(entries[0]["Name"], "a");
    assert_eq!(entries[0]["Type"], 1);
    assert_eq!(entries[1]["Name"], "ipfs");
    assert_eq!(entries[1]["Type"], 0);
    assert_eq!(entries[1]["Size"], 19);
    assert_eq!(
        entries[1]["Hash"],
        "QmQdQt9qooenjeaNhiKHF3hBvmNteB4MQBtgu3jxgf9c7i"
    );
    let short = api.post("/api/v0/files/ls?arg=/cats").await.json();
    assert_eq!(
        short["Entries"][1],
        serde_json::json!({"Name": "ipfs", "Type": 0, "Size": 0, "Hash": ""})
    );

    // cp from /ipfs/, mv, rm (several paths, one missing), flush, chcid.
    let added = api.post_files("/api/v0/add", &[b"foo\n"]).await.json();
    let foo = added["Hash"].as_str().unwrap().to_string();
    ok(&api
        .post(&format!("/api/v0/files/cp?arg=/ipfs/{foo}&arg=/cats/file1"))
        .await);
    assert_eq!(
        api.post("/api/v0/files/read?arg=/cats/file1").await.text(),
        "foo\n"
    );
    ok(&api
        .post("/api/v0/files/mv?arg=/cats/file1&arg=/file1")
        .await);
    let rm = post_t(&api, "/api/v0/files/rm?arg=/file1&arg=/nope&arg=/trunc").await;
    assert_eq!(
        rm.stream_error().as_deref(),
        Some("can't remove some files"),
        "{}",
        rm.text()
    );
    assert!(
        rm.text().contains("/nope: file does not exist"),
        "{}",
        rm.text()
    );
    // As Kubo: the error is emitted as a value, the command fails in the trailer.
    let rm = post_t(&api, "/api/v0/files/rm?arg=/cats").await;
    assert_eq!(
        rm.stream_error().as_deref(),
        Some("can't remove some files")
    );
    assert!(
        rm.text()
            .contains("/cats: path is a directory, use -r to remove directories"),
        "{}",
        rm.text()
    );
    let names: Vec<String> = api.post("/api/v0/files/ls?arg=/").await.json()["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["cats"]);
    let flushed = api.post("/api/v0/files/flush").await.json();
    let root = api.post("/api/v0/files/stat?arg=/").await.json()["Hash"].clone();
    assert_eq!(flushed["Cid"], root);
    ok(&api.post("/api/v0/files/chcid?arg=/&cid-version=1").await);
    let v1 = api.post("/api/v0/files/stat?arg=/").await.json();
    assert!(v1["Hash"].as_str().unwrap().starts_with("bafy"), "{v1}");
    assert_eq!(
        api.node.files_root().await.unwrap().to_string(),
        v1["Hash"].as_str().unwrap()
    );

    // GC keeps what the MFS root reaches (Kubo's GC does too) and nothing else of ours.
    let gc = api.post("/api/v0/repo/gc").await;
    assert_eq!(gc.status, 200, "{}", gc.text());
    assert_eq!(
        api.post("/api/v0/files/read?arg=/cats/ipfs&offset=--1")
            .await
            .status,
        400
    );
    assert_eq!(
        api.post("/api/v0/files/read?arg=/cats/ipfs").await.text(),
        "ipfs is super cool\n"
    );
    let refs = post_t(
        &api,
        &format!(
            "/api/v0/refs?arg={}&r=true&offline=true",
            v1["Hash"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(refs.status, 200, "{}", refs.text());
    assert!(refs.stream_error().is_none(), "{}", refs.text());
}

/// The MFS root's CID as `files/stat /` answers it.
async fn root(api: &Api) -> String {
    api.post("/api/v0/files/stat?arg=/").await.json()["Hash"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `files/chmod` and `files/touch` (Kubo 0.30+): empty answers, Kubo's errors, and the root's
/// CID derived by hand (dag-pb `{Data: {Type: Directory, mode: 0o755, mtime: {1630937926, 7}}}`
/// hashed to CIDv0 outside cairn).
#[tokio::test]
async fn files_chmod_and_touch() {
    let api = start().await;
    let a = api.post("/api/v0/files/chmod?arg=755&arg=/").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.text(), "");
    assert_eq!(
        root(&api).await,
        "QmRviohgafvCsbkiTgfQFipbuXJ6k1YtoiaQW4quttJPKu"
    );
    let a = api
        .post("/api/v0/files/touch?arg=/&mtime=1630937926&mtime-nsecs=7")
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.text(), "");
    assert_eq!(
        root(&api).await,
        "QmaECYhmGbbgGQeYc9GwCPUwkfnmtKRxTL8RB3Vetypvtv"
    );
    // Kubo 0.30+'s stat: Mode is `%04o` of Go's os.FileMode (ModeDir is bit 31).
    let st = api.post("/api/v0/files/stat?arg=/").await.json();
    assert_eq!(st["Mode"], "20000000755", "{st}");
    assert_eq!(st["Mtime"], 1630937926);
    assert_eq!(st["MtimeNsecs"], 7);
    // Kubo's default format (new and pre-0.30) counts as no format beside `hash`.
    for f in [
        "%3Chash%3E%0ASize%3A%20%3Csize%3E%0ACumulativeSize%3A%20%3Ccumulsize%3E%0AChildBlocks%3A%20%3Cchilds%3E%0AType%3A%20%3Ctype%3E%0AMode%3A%20%3Cmode%3E%20(%3Cmode-octal%3E)%0AMtime%3A%20%3Cmtime%3E",
        "%3Chash%3E%0ASize%3A%20%3Csize%3E%0ACumulativeSize%3A%20%3Ccumulsize%3E%0AChildBlocks%3A%20%3Cchilds%3E%0AType%3A%20%3Ctype%3E",
    ] {
        let a = api
            .post(&format!("/api/v0/files/stat?arg=/&hash=true&format={f}"))
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
    }
    assert_eq!(
        api.post("/api/v0/files/stat?arg=/&hash=true&format=%3Chash%3E")
            .await
            .status,
        400
    );
    // Without --mtime: now, so the root changes again.
    let a = api.post("/api/v0/files/touch?arg=/").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let now_root = root(&api).await;
    assert_ne!(now_root, "QmaECYhmGbbgGQeYc9GwCPUwkfnmtKRxTL8RB3Vetypvtv");
    assert_kubo_error(
        &api.post("/api/v0/files/chmod?arg=9&arg=/").await,
        500,
        "strconv.ParseInt: parsing \"9\": invalid syntax",
    );
    assert_kubo_error(
        &api.post("/api/v0/files/chmod?arg=644&arg=/missing").await,
        500,
        "file does not exist",
    );
    assert_kubo_error(
        &api.post("/api/v0/files/touch?arg=/missing&mtime=5").await,
        500,
        "file does not exist",
    );
    assert_kubo_error(
        &api.post("/api/v0/files/chmod?arg=644&arg=rel").await,
        500,
        "paths must start with a leading slash",
    );
    assert_eq!(root(&api).await, now_root);
}

/// `files/stat --with-local`: Kubo's `WithLocality`/`Local`/`SizeLocal` (omitted when false or
/// 0), counted over the stored blocks only; a removed leaf makes the DAG non-local and its
/// bytes drop out of `SizeLocal`.
#[tokio::test]
async fn files_stat_with_local_counts_stored_blocks() {
    let api = start().await;
    let added = api
        .post_files(
            "/api/v0/add?chunker=size-10&pin=false",
            &[b"thirty bytes of file content.."],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    let cid = added.lines().last().unwrap()["Hash"]
        .as_str()
        .unwrap()
        .to_string();
    let cp = api
        .post(&format!("/api/v0/files/cp?arg=/ipfs/{cid}&arg=/f"))
        .await;
    assert_eq!(cp.status, 200, "{}", cp.text());
    let st = api
        .post("/api/v0/files/stat?arg=/f&with-local=true")
        .await
        .json();
    assert_eq!(st["Hash"], cid.as_str());
    assert_eq!(st["WithLocality"], true);
    assert_eq!(st["Local"], true);
    assert_eq!(st["SizeLocal"], st["CumulativeSize"]);
    // Without the flag the fields are absent, and so are Mode and Mtime (`add` stored none).
    let plain = api.post("/api/v0/files/stat?arg=/f").await.json();
    for absent in [
        "WithLocality",
        "Local",
        "SizeLocal",
        "Mode",
        "Mtime",
        "MtimeNsecs",
    ] {
        assert!(plain.get(absent).is_none(), "{absent}: {plain}");
    }

    // Remove one leaf: 3 leaves of 10 bytes, so the root has 3 links.
    let refs = api.post(&format!("/api/v0/refs?arg={cid}")).await.lines();
    assert_eq!(refs.len(), 3, "{refs:?}");
    let leaf = refs[1]["Ref"].as_str().unwrap().to_string();
    let leaf_size = api
        .post(&format!("/api/v0/block/stat?arg={leaf}"))
        .await
        .json()["Size"]
        .as_u64()
        .unwrap();
    let rm = api.post(&format!("/api/v0/block/rm?arg={leaf}")).await;
    assert_eq!(rm.status, 200, "{}", rm.text());
    let st = api
        .post("/api/v0/files/stat?arg=/f&with-local=true")
        .await
        .json();
    assert_eq!(st["WithLocality"], true);
    assert!(st.get("Local").is_none(), "{st}");
    assert_eq!(
        st["SizeLocal"].as_u64().unwrap(),
        st["CumulativeSize"].as_u64().unwrap() - leaf_size
    );
}
