//! Issue 12 item 5: Kubo's exact error texts where clients compare them.
//!
//! Each case is a message some Kubo client matches literally (see `docs/kubo-errors.md` for
//! which client, where and how); the answer must be Kubo's: HTTP 500, JSON
//! `{"Message","Code":0,"Type":"error"}`, with the text character for character.

mod common;

use bytes::Bytes;
use common::{Answer, Api, start};
use serde_json::Value;

/// Asserts Kubo's error answer with exactly `message`.
#[track_caller]
fn assert_exact(a: &Answer, message: &str) {
    assert_eq!(a.status, 500, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v = a.json();
    assert_eq!(v["Message"], message, "{v}");
    assert_eq!(v["Code"], 0, "{v}");
    assert_eq!(v["Type"], "error", "{v}");
}

/// Adds named files (wrapped in a directory); returns the CIDs of the files and of the directory.
async fn add_dir(api: &Api, files: &[(&str, &[u8])]) -> (Vec<String>, String) {
    let boundary = "kuboerrorsboundary";
    let mut body = Vec::new();
    for (name, data) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let a = api
        .send(
            "POST",
            "/api/v0/add?wrap-with-directory=true&cid-version=0",
            &[("content-type", &ct)],
            Bytes::from(body),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let lines = a.lines();
    let hash = |v: &Value| v["Hash"].as_str().unwrap().to_string();
    let dir = hash(lines.last().unwrap());
    let files = lines[..lines.len() - 1].iter().map(hash).collect();
    (files, dir)
}

/// A CIDv1 (raw) nobody has, and the same CID written in base36: Kubo names it in base32.
const NOBODY: &str = "bafkreih3q5pboyny7hhx5gqul3sufutgz5amq3mgfirw6rvr4h7i7qvmsm";

fn base36(cid: &str) -> String {
    let cid: cid::Cid = cid.parse().unwrap();
    cid.to_string_of_base(cid::multibase::Base::Base36Lower)
        .unwrap()
}

#[tokio::test]
async fn offline_and_timeout_texts() {
    let api = start().await;
    let missing = format!("block was not found locally (offline): ipld: could not find {NOBODY}");
    for arg in [NOBODY.to_string(), base36(NOBODY)] {
        for command in ["block/get", "block/stat", "cat", "dag/get"] {
            let a = api
                .post(&format!("/api/v0/{command}?arg={arg}&offline=true"))
                .await;
            assert_exact(&a, &missing);
        }
        let a = api
            .post(&format!("/api/v0/pin/add?arg={arg}&offline=true"))
            .await;
        assert_exact(&a, &format!("pin: {missing}"));
    }
    // js-kubo-rpc-client turns any message containing this into a TimeoutError.
    for command in ["block/get", "block/stat", "cat", "dag/get"] {
        let a = api
            .post(&format!("/api/v0/{command}?arg={NOBODY}&timeout=300ms"))
            .await;
        assert_exact(&a, "context deadline exceeded");
    }
    let a = api
        .post(&format!("/api/v0/pin/add?arg={NOBODY}&timeout=300ms"))
        .await;
    assert_exact(&a, "pin: context deadline exceeded");
}

#[tokio::test]
async fn pin_texts() {
    let api = start().await;
    let (files, dir) = add_dir(&api, &[("a.txt", b"pinned indirectly"), ("b.txt", b"b")]).await;
    let loose = api
        .post_files("/api/v0/add?pin=false", &[b"never pinned"])
        .await;
    let loose = loose.lines()[0]["Hash"].as_str().unwrap().to_string();
    // IPFS Cluster compares with ==, aioipfs ignoring case: not pinned, and pinned only
    // indirectly, answer the same.
    for cid in [&loose, &files[0]] {
        let a = api.post(&format!("/api/v0/pin/rm?arg={cid}")).await;
        assert_exact(&a, "not pinned or pinned indirectly");
    }
    // IPFS Cluster's pin/ls check is the suffix `not pinned`; the js tests compare it whole,
    // with the argument as given.
    let a = api.post(&format!("/api/v0/pin/ls?arg={loose}")).await;
    assert_exact(&a, &format!("path '{loose}' is not pinned"));
    let path = format!("/ipfs/{dir}/a.txt");
    let a = api
        .post(&format!("/api/v0/pin/ls?arg={path}&type=direct"))
        .await;
    assert_exact(&a, &format!("path '{path}' is not pinned"));
    let a = api
        .post(&format!("/api/v0/pin/ls?arg=/ipfs/{dir}/I-DONT-EXIST.txt"))
        .await;
    assert_exact(
        &a,
        &format!("no link named \"I-DONT-EXIST.txt\" under {dir}"),
    );
    let a = api
        .post(&format!("/api/v0/pin/add?arg={dir}&recursive=false"))
        .await;
    assert_exact(&a, &format!("pin: {dir} already pinned recursively"));
    let a = api
        .post(&format!("/api/v0/pin/rm?arg={dir}&recursive=false"))
        .await;
    assert_exact(&a, &format!("{dir} is pinned recursively"));
    let a = api
        .post(&format!("/api/v0/pin/update?arg={loose}&arg={dir}"))
        .await;
    assert_exact(&a, "'from' cid was not recursively pinned already");
    // block/rm of a pinned block: a 200 stream whose line names the pin.
    let a = api.post(&format!("/api/v0/block/rm?arg={dir}")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let line = &a.lines()[0];
    assert_eq!(line["Hash"], dir.as_str());
    assert_eq!(line["Error"], "pinned: recursive", "{line}");
}

#[tokio::test]
async fn path_and_file_texts() {
    let api = start().await;
    let (_, dir) = add_dir(&api, &[("a.txt", b"a")]).await;
    let a = api.post(&format!("/api/v0/cat?arg={dir}")).await;
    assert_exact(&a, "this dag node is a directory");
    let a = api
        .post(&format!("/api/v0/cat?arg=/ipfs/{dir}/does-not-exist"))
        .await;
    assert_exact(&a, &format!("no link named \"does-not-exist\" under {dir}"));
    // aioipfs matches the suffix for a path whose root is not multibase.
    let a = api.post("/api/v0/cat?arg=/ipfs/!!bad").await;
    assert_exact(
        &a,
        "invalid path \"/ipfs/!!bad\": invalid cid: selected encoding not supported",
    );
    let a = api
        .post(&format!("/api/v0/routing/provide?arg={NOBODY}"))
        .await;
    assert_exact(
        &a,
        &format!("block {NOBODY} not found locally, cannot provide"),
    );
}

/// Kubo decodes pubsub topics before anything else: a topic that is not multibase is a 500
/// JSON error with go-multibase's reason, one in another base is refused as not base64url.
#[tokio::test]
async fn pubsub_topic_texts() {
    let api = start().await;
    for (topic, message) in [
        (
            "foo",
            "URL arg must be multibase encoded: encoding/hex: invalid byte: U+006F 'o'",
        ),
        (
            "!!bad",
            "URL arg must be multibase encoded: selected encoding not supported",
        ),
        (
            "",
            "URL arg must be multibase encoded: cannot decode multibase for zero length string",
        ),
        (
            "u!!",
            "URL arg must be multibase encoded: illegal base64 data at input byte 0",
        ),
        ("mZm9v", "URL arg must be base64url encoded"),
        ("f666f6f", "URL arg must be base64url encoded"),
    ] {
        let a = api
            .post_files(&format!("/api/v0/pubsub/pub?arg={topic}"), &[b"x"])
            .await;
        assert_exact(&a, message);
        let a = api.post(&format!("/api/v0/pubsub/sub?arg={topic}")).await;
        assert_exact(&a, message);
        let a = api.post(&format!("/api/v0/pubsub/peers?arg={topic}")).await;
        assert_exact(&a, message);
    }
}

/// `offline=true` takes the swarm away, as Kubo's offline API does (`peerHost` is nil).
#[tokio::test]
async fn swarm_commands_offline() {
    let api = start().await;
    let offline = "this action must be run in online mode, try running 'ipfs daemon' first";
    for command in [
        "swarm/peers",
        "swarm/addrs",
        "swarm/addrs/local",
        "swarm/addrs/listen",
    ] {
        let a = api.post(&format!("/api/v0/{command}?offline=true")).await;
        assert_exact(&a, offline);
        // Without the option, the same command answers.
        assert_eq!(api.post(&format!("/api/v0/{command}")).await.status, 200);
    }
    let peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let a = api
        .post(&format!(
            "/api/v0/swarm/connect?arg=/ip4/127.0.0.1/tcp/9/p2p/{peer}&offline=true"
        ))
        .await;
    assert_exact(&a, &format!("connect {peer} failure: {offline}"));
    let a = api
        .post(&format!(
            "/api/v0/swarm/disconnect?arg=/p2p/{peer}&offline=true"
        ))
        .await;
    assert_eq!(
        a.json()["Strings"][0],
        format!("disconnect {peer} failure: {offline}")
    );
}

/// Commands that only reach the network fail at once under `offline=true`, with the text Kubo
/// gives when it has no network; without the option they run.
#[tokio::test]
async fn network_commands_offline() {
    let api = start().await;
    let not_online = "this command must be run in online mode. Try running 'ipfs daemon' first";
    let peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let added = api.post_files("/api/v0/add", &[b"provide me"]).await;
    let cid = added.lines()[0]["Hash"].as_str().unwrap().to_string();
    for path in [
        format!("/api/v0/routing/findprovs?arg={cid}"),
        format!("/api/v0/dht/findprovs?arg={cid}"),
        format!("/api/v0/routing/findpeer?arg={peer}"),
        format!("/api/v0/routing/provide?arg={cid}"),
        format!("/api/v0/ping?arg={peer}&count=1"),
    ] {
        let started = std::time::Instant::now();
        let a = api.post(&format!("{path}&offline=true")).await;
        assert_exact(&a, not_online);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
    // Without the option the command goes to the network (which this lone node lacks).
    let a = api
        .post(&format!("/api/v0/routing/provide?arg={cid}"))
        .await;
    assert_exact(&a, "routing: cannot provide, no connected peers");
}
