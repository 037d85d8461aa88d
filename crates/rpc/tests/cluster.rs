//! IPFS Cluster's `ipfshttp` connector against cairn: every call the connector makes
//! (ipfs-cluster `ipfsconn/ipfshttp/ipfshttp.go`), sent over real HTTP as the connector sends it
//! (same paths, options and multipart body, no `TE: trailers`: Go's client does not send it) and
//! decoded the way its Go code decodes it: `checkResponse` turns any status other than 200 into
//! `ipfsError{Message}`, single answers are one JSON value, streams are read with a
//! `json.Decoder` until a clean EOF, and only the fields the connector's structs declare are read.

mod common;

use bytes::Bytes;
use cid::Cid;
use common::Api;
use multihash_codetable::{Code, MultihashDigest};
use serde::Deserialize;
use serde::de::DeserializeOwned;

const DAG_PB: u64 = 0x70;
const DAG_CBOR: u64 = 0x71;
const RAW: u64 = 0x55;

/// The connector's `ipfsError`: what `checkResponse` reads from a non-200 answer.
#[derive(Debug, Deserialize)]
struct IpfsError {
    #[serde(rename = "Message")]
    message: String,
}

/// The connector's view of an answer: the body, or `ipfsError` (status, message).
fn check_response(a: &common::Answer) -> Result<Bytes, (u16, String)> {
    if a.status == 200 {
        return Ok(a.body.clone());
    }
    let e: IpfsError = serde_json::from_slice(&a.body)
        .unwrap_or_else(|e| panic!("error body is not ipfsError JSON ({e}): {}", a.text()));
    Err((a.status, e.message))
}

/// `json.Unmarshal` of a whole body.
fn decode_one<T: DeserializeOwned>(body: &[u8]) -> T {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("cannot decode ({e}): {}", String::from_utf8_lossy(body)))
}

/// A `json.Decoder` loop until EOF: every value must decode.
fn decode_stream<T: DeserializeOwned>(body: &[u8]) -> Vec<T> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<T>()
        .map(|v| {
            v.unwrap_or_else(|e| panic!("cannot decode ({e}): {}", String::from_utf8_lossy(body)))
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct IpfsIdResp {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Addresses", default)]
    addresses: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct IpfsPinsResp {
    #[serde(rename = "Pins", default)]
    pins: Option<Vec<String>>,
    #[serde(rename = "Progress", default)]
    progress: i64,
}

/// `api.IPFSPinInfo`: `Cid` a CID string, `Type` read by prefix (`indirect through ...`).
#[derive(Debug, Deserialize)]
struct IpfsPinInfo {
    #[serde(rename = "Cid")]
    cid: String,
    #[serde(rename = "Type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct IpfsBlockPutResp {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Size")]
    size: i64,
}

#[derive(Debug, Deserialize)]
struct IpfsResolveResp {
    #[serde(rename = "Path")]
    path: String,
}

#[derive(Debug, Deserialize)]
struct IpfsRepoStat {
    #[serde(rename = "RepoSize")]
    repo_size: u64,
    #[serde(rename = "StorageMax")]
    storage_max: u64,
}

/// A go-cid `cid.Cid` in JSON: `{"/":"<cid>"}`, or `null` for an undefined CID.
#[derive(Debug, Deserialize)]
struct CidLink {
    #[serde(rename = "/")]
    cid: String,
}

#[derive(Debug, Deserialize)]
struct IpfsRepoGcResp {
    #[serde(rename = "Key")]
    key: Option<CidLink>,
    #[serde(rename = "Error", default)]
    error: String,
}

#[derive(Debug, Deserialize)]
struct IpfsPeer {
    #[serde(rename = "Peer")]
    peer: String,
}

#[derive(Debug, Deserialize)]
struct IpfsSwarmPeersResp {
    #[serde(rename = "Peers")]
    peers: Option<Vec<IpfsPeer>>,
}

/// `api.IPFSPinStatusFromString`.
fn pin_status(kind: &str) -> &'static str {
    if kind.starts_with("indirect") {
        "indirect"
    } else if kind.starts_with("recursive") {
        "recursive"
    } else if kind == "direct" {
        "direct"
    } else {
        "bug"
    }
}

/// The connector's `PinLsCid`: `unpinned` when the error message ends in `not pinned`.
async fn pin_ls_cid(api: &Api, cid: &str, kind: &str) -> String {
    let a = api
        .post(&format!("/api/v0/pin/ls?stream=true&arg={cid}&type={kind}"))
        .await;
    match check_response(&a) {
        Ok(body) => {
            let first: IpfsPinInfo = decode_stream(&body).into_iter().next().expect("a line");
            assert_eq!(first.cid, cid);
            pin_status(&first.kind).to_string()
        }
        Err((_, m)) if m.ends_with("not pinned") => "unpinned".into(),
        Err(e) => panic!("pin/ls failed: {e:?}"),
    }
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn cid_of(codec: u64, data: &[u8]) -> Cid {
    Cid::new_v1(codec, Code::Sha2_256.digest(data))
}

/// A dag-pb UnixFS file: `leaves` leaves of `size` bytes each under one root. Returns the blocks
/// (leaves first, root last, as an importer emits them) and the file's bytes.
fn unixfs_file(leaves: usize, size: usize, seed: u8) -> (Vec<(Cid, Vec<u8>)>, Vec<u8>) {
    let mut blocks = Vec::new();
    let mut content = Vec::new();
    let mut links = Vec::new();
    let mut root_data = vec![0x08, 0x02];
    for i in 0..leaves {
        let bytes: Vec<u8> = (0..size)
            .map(|j| {
                (j as u8)
                    .wrapping_mul(31)
                    .wrapping_add(i as u8)
                    .wrapping_add(seed)
            })
            .collect();
        content.extend_from_slice(&bytes);
        let mut data = vec![0x08, 0x02, 0x12];
        varint(bytes.len() as u64, &mut data);
        data.extend_from_slice(&bytes);
        data.push(0x18);
        varint(bytes.len() as u64, &mut data);
        let block = ipld_dagpb::PbNode {
            links: Vec::new(),
            data: Some(Bytes::from(data)),
        }
        .into_bytes();
        let cid = cid_of(DAG_PB, &block);
        links.push(ipld_dagpb::PbLink {
            cid,
            name: Some(String::new()),
            size: Some(block.len() as u64),
        });
        blocks.push((cid, block));
    }
    root_data.push(0x18);
    varint(content.len() as u64, &mut root_data);
    for _ in 0..leaves {
        root_data.push(0x20);
        varint(size as u64, &mut root_data);
    }
    let root = ipld_dagpb::PbNode {
        links,
        data: Some(Bytes::from(root_data)),
    }
    .into_bytes();
    blocks.push((cid_of(DAG_PB, &root), root));
    (blocks, content)
}

/// A dag-pb UnixFS directory with one named entry.
fn unixfs_dir(name: &str, target: Cid, size: u64) -> (Cid, Vec<u8>) {
    let block = ipld_dagpb::PbNode {
        links: vec![ipld_dagpb::PbLink {
            cid: target,
            name: Some(name.to_string()),
            size: Some(size),
        }],
        data: Some(Bytes::from_static(&[0x08, 0x01])),
    }
    .into_bytes();
    (cid_of(DAG_PB, &block), block)
}

/// The connector's `BlockStream`: every block in one multipart body (a `files.MultiFileReader`
/// of a directory whose entries are files named by CID), with the first block's CID prefix as
/// options. Returns the decoded `{"Key","Size"}` lines.
async fn block_stream(api: &Api, codec: &str, blocks: &[(Cid, Vec<u8>)]) -> Vec<IpfsBlockPutResp> {
    let boundary = "3c4d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d";
    let mut body = Vec::new();
    for (cid, data) in blocks {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{cid}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    // Go's url.Values.Encode sorts the keys.
    let path = format!(
        "/api/v0/block/put?allow-big-block=true&cid-codec={codec}&mhlen=32&mhtype=sha2-256&pin=false"
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let a = api
        .send("POST", &path, &[("content-type", &ct)], Bytes::from(body))
        .await;
    assert!(a.stream_error().is_none());
    decode_stream(&check_response(&a).expect("block/put"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ipfshttp_connector_works_against_cairn() {
    let api = common::start().await;
    let other = common::start().await;

    // ID: the peer id and addresses parse.
    let id: IpfsIdResp = decode_one(&check_response(&api.post("/api/v0/id").await).unwrap());
    assert_eq!(id.id.parse::<libp2p::PeerId>().unwrap(), api.node.peer_id());
    let addresses = id.addresses.unwrap();
    assert!(!addresses.is_empty());
    for a in &addresses {
        a.parse::<libp2p::Multiaddr>().unwrap();
    }

    // BlockStream: many blocks in one body, one {"Key","Size"} line each, in order.
    let (file, content) = unixfs_file(40, 100, 1);
    let (file_root, file_root_block) = file.last().cloned().unwrap();
    let (dir, dir_block) = unixfs_dir("file.bin", file_root, file_root_block.len() as u64);
    let mut blocks = file.clone();
    blocks.push((dir, dir_block.clone()));
    let put = block_stream(&api, "dag-pb", &blocks).await;
    assert_eq!(put.len(), blocks.len());
    for (line, (cid, data)) in put.iter().zip(&blocks) {
        assert_eq!(line.key, cid.to_string());
        assert_eq!(line.size, data.len() as i64);
    }
    // A body bigger than any one-shot limit (17 blocks of 2 MiB): read part by part.
    let big: Vec<(Cid, Vec<u8>)> = (0..17u8)
        .map(|i| {
            let data = vec![i; 2 << 20];
            (cid_of(RAW, &data), data)
        })
        .collect();
    let put = block_stream(&api, "raw", &big).await;
    assert_eq!(put.len(), 17);
    assert_eq!(put[16].key, big[16].0.to_string());

    // BlockGet: the bytes.
    let got = api.post(&format!("/api/v0/block/get?arg={dir}")).await;
    assert_eq!(check_response(&got).unwrap().as_ref(), dir_block.as_slice());
    // The file reads back through its directory path.
    let cat = api
        .post(&format!("/api/v0/cat?arg=/ipfs/{dir}/file.bin"))
        .await;
    assert_eq!(cat.body.as_ref(), content.as_slice());
    // A directory is Kubo's error, before any output.
    let dir_cat = api.post(&format!("/api/v0/cat?arg={dir}")).await;
    assert_eq!(
        check_response(&dir_cat).unwrap_err(),
        (500, "this dag node is a directory".to_string())
    );

    // Resolve: through dag-pb named links and dag-cbor map keys (the connector URL-escapes).
    let resolve = |path: String| {
        let api = &api;
        async move {
            let escaped = path.replace('/', "%2F");
            check_response(&api.post(&format!("/api/v0/resolve?arg={escaped}")).await)
                .map(|b| decode_one::<IpfsResolveResp>(&b).path)
        }
    };
    assert_eq!(
        resolve(format!("/ipfs/{dir}/file.bin")).await.unwrap(),
        format!("/ipfs/{file_root}")
    );
    assert_eq!(
        resolve(format!("/ipfs/{dir}")).await.unwrap(),
        format!("/ipfs/{dir}")
    );
    let cbor_value = ipld_core::ipld::Ipld::Map(
        [
            (
                "a".to_string(),
                ipld_core::ipld::Ipld::Map(
                    [("b".to_string(), ipld_core::ipld::Ipld::Link(dir))].into(),
                ),
            ),
            ("n".to_string(), ipld_core::ipld::Ipld::Integer(5)),
            (
                "list".to_string(),
                ipld_core::ipld::Ipld::List(vec![ipld_core::ipld::Ipld::Link(file_root)]),
            ),
        ]
        .into(),
    );
    let cbor = serde_ipld_dagcbor::to_vec(&cbor_value).unwrap();
    let cbor_cid = cid_of(DAG_CBOR, &cbor);
    let put = block_stream(&api, "dag-cbor", &[(cbor_cid, cbor)]).await;
    assert_eq!(put[0].key, cbor_cid.to_string());
    assert_eq!(
        resolve(format!("/ipfs/{cbor_cid}/a/b/file.bin"))
            .await
            .unwrap(),
        format!("/ipfs/{file_root}")
    );
    assert_eq!(
        resolve(format!("/ipfs/{cbor_cid}/list/0")).await.unwrap(),
        format!("/ipfs/{file_root}")
    );
    // A path ending on a value inside a dag-cbor node keeps the remainder, as Kubo.
    assert_eq!(
        resolve(format!("/ipfs/{cbor_cid}/n")).await.unwrap(),
        format!("/ipfs/{cbor_cid}/n")
    );
    let missing = resolve(format!("/ipfs/{dir}/nope")).await.unwrap_err();
    assert_eq!(
        missing,
        (500, format!("no link named \"nope\" under {dir}"))
    );
    let missing = resolve(format!("/ipfs/{cbor_cid}/a/zz")).await.unwrap_err();
    assert_eq!(missing.1, format!("no link named \"zz\" under {cbor_cid}"));

    // Pin: PinLsCid says unpinned, then pin/add with progress as a stream of ipfsPinsResp.
    let root = file_root.to_string();
    assert_eq!(pin_ls_cid(&api, &root, "recursive").await, "unpinned");
    let not_pinned = api
        .post(&format!(
            "/api/v0/pin/ls?stream=true&arg={root}&type=recursive"
        ))
        .await;
    assert_eq!(
        check_response(&not_pinned).unwrap_err(),
        (500, format!("path '{root}' is not pinned"))
    );
    // A pin that fails at once is an error answer the connector reads, as Kubo's (its headers
    // go with the first line), not a 200 stream.
    let absent = "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR";
    let failed = api
        .post(&format!(
            "/api/v0/pin/add?arg={absent}&recursive=true&progress=true&offline=true"
        ))
        .await;
    let (status, message) = check_response(&failed).unwrap_err();
    assert_eq!(status, 500);
    assert!(message.contains("not found locally"), "{message}");
    let add = api
        .send(
            "POST",
            &format!("/api/v0/pin/add?arg={root}&recursive=true&progress=true"),
            &[("te", "trailers")],
            Bytes::new(),
        )
        .await;
    assert!(add.stream_error().is_none(), "{add:?}");
    let lines: Vec<IpfsPinsResp> = decode_stream(&check_response(&add).unwrap());
    assert_eq!(
        lines.last().unwrap().pins.as_deref(),
        Some(&[root.clone()][..])
    );
    // Kubo's last progress line before the pins: every node of the DAG (40 leaves, the root).
    assert_eq!(lines[lines.len() - 2].progress, 41, "{lines:?}");
    assert_eq!(pin_ls_cid(&api, &root, "recursive").await, "recursive");
    // A direct pin (MaxDepth 0): recursive=false.
    let leaf = file[0].0.to_string();
    let direct = api
        .post(&format!(
            "/api/v0/pin/add?arg={leaf}&recursive=false&progress=true"
        ))
        .await;
    let lines: Vec<IpfsPinsResp> = decode_stream(&check_response(&direct).unwrap());
    assert_eq!(
        lines.last().unwrap().pins.as_deref(),
        Some(&[leaf.clone()][..])
    );
    // Kubo counts walked nodes only: a direct pin reports no progress.
    assert!(lines.iter().all(|l| l.progress == 0), "{lines:?}");
    assert_eq!(pin_ls_cid(&api, &leaf, "direct").await, "direct");
    // Pinned another way than asked: not pinned, as Kubo's CheckIfPinnedWithType says.
    assert_eq!(pin_ls_cid(&api, &leaf, "recursive").await, "unpinned");

    // PinLs: the recursive and direct pin sets, streamed.
    let ls = |kind: &'static str| {
        let api = &api;
        async move {
            let a = api
                .post(&format!("/api/v0/pin/ls?stream=true&type={kind}"))
                .await;
            decode_stream::<IpfsPinInfo>(&check_response(&a).unwrap())
        }
    };
    let recursive = ls("recursive").await;
    assert_eq!(recursive.len(), 1);
    assert_eq!(
        (recursive[0].cid.as_str(), recursive[0].kind.as_str()),
        (root.as_str(), "recursive")
    );
    let direct = ls("direct").await;
    assert_eq!(
        (direct[0].cid.as_str(), direct[0].kind.as_str()),
        (leaf.as_str(), "direct")
    );

    // pin/update from the file to the directory holding it, keeping the old pin (unpin=false).
    let dir_s = dir.to_string();
    let update = api
        .post(&format!(
            "/api/v0/pin/update?arg={root}&arg={dir_s}&unpin=false"
        ))
        .await;
    let pins: IpfsPinsResp = decode_one(&check_response(&update).unwrap());
    assert_eq!(pins.pins.unwrap(), [root.clone(), dir_s.clone()]);
    assert_eq!(pin_ls_cid(&api, &dir_s, "recursive").await, "recursive");
    assert_eq!(pin_ls_cid(&api, &root, "recursive").await, "recursive");
    // Kubo's errors: the new pin exists; the old one is not a recursive pin.
    let again = api
        .post(&format!("/api/v0/pin/update?arg={root}&arg={dir_s}"))
        .await;
    assert_eq!(
        check_response(&again).unwrap_err().1,
        "'to' cid was already recursively pinned"
    );
    let from_direct = api
        .post(&format!("/api/v0/pin/update?arg={leaf}&arg={cbor_cid}"))
        .await;
    assert_eq!(
        check_response(&from_direct).unwrap_err().1,
        "'from' cid was not recursively pinned already"
    );
    // By default the old pin goes.
    let moved = api
        .post(&format!("/api/v0/pin/update?arg={dir_s}&arg={cbor_cid}"))
        .await;
    let pins: IpfsPinsResp = decode_one(&check_response(&moved).unwrap());
    assert_eq!(pins.pins.unwrap(), [dir_s.clone(), cbor_cid.to_string()]);
    assert_eq!(pin_ls_cid(&api, &dir_s, "recursive").await, "unpinned");
    assert_eq!(
        pin_ls_cid(&api, &cbor_cid.to_string(), "recursive").await,
        "recursive"
    );
    // The directory is still reachable from the dag-cbor pin: indirect.
    assert_eq!(pin_ls_cid(&api, &dir_s, "indirect").await, "indirect");

    // pin/verify: every recursive pin is complete.
    let verify = api.post("/api/v0/pin/verify").await;
    assert_eq!(
        check_response(&verify).unwrap().len(),
        0,
        "{}",
        verify.text()
    );
    let verbose = api.post("/api/v0/pin/verify?verbose=true").await;
    let mut ok: Vec<serde_json::Value> = decode_stream(&check_response(&verbose).unwrap());
    ok.sort_by_key(|v| v["Cid"].as_str().unwrap().to_string());
    let mut want = vec![
        serde_json::json!({"Cid": root, "Ok": true}),
        serde_json::json!({"Cid": cbor_cid.to_string(), "Ok": true}),
    ];
    want.sort_by_key(|v| v["Cid"].as_str().unwrap().to_string());
    assert_eq!(ok, want);
    let both = api.post("/api/v0/pin/verify?verbose=true&quiet=true").await;
    assert_eq!(
        check_response(&both).unwrap_err().1,
        "the --verbose and --quiet options can not be used at the same time"
    );

    // Unpin: pinned → ok; not pinned → exactly boxo's ErrNotPinned, which the connector ignores.
    let rm = api.post(&format!("/api/v0/pin/rm?arg={dir_s}")).await;
    assert_eq!(
        check_response(&rm).unwrap_err(),
        (500, "not pinned or pinned indirectly".to_string())
    );
    let rm = api.post(&format!("/api/v0/pin/rm?arg={root}")).await;
    let pins: IpfsPinsResp = decode_one(&check_response(&rm).unwrap());
    assert_eq!(pins.pins.unwrap(), std::slice::from_ref(&root));

    // RepoStat.
    let stat: IpfsRepoStat =
        decode_one(&check_response(&api.post("/api/v0/repo/stat?size-only=true").await).unwrap());
    assert!(stat.repo_size > 34 << 20, "{stat:?}");
    assert_eq!(stat.storage_max, 10_000_000_000);

    // RepoGC: the unpinned big blocks go, each a {"Key":{"/":cid}} line.
    let gc = api.post("/api/v0/repo/gc?stream-errors=true").await;
    let removed: Vec<IpfsRepoGcResp> = decode_stream(&check_response(&gc).unwrap());
    assert!(removed.iter().all(|r| r.error.is_empty()));
    let removed: Vec<String> = removed
        .into_iter()
        .filter_map(|r| r.key.map(|k| k.cid))
        .collect();
    for (cid, _) in &big {
        assert!(removed.contains(&cid.to_string()), "{cid} not collected");
    }
    assert!(!removed.contains(&cbor_cid.to_string()));

    // ConfigKey("Datastore/StorageMax") from config/show.
    let config: serde_json::Map<String, serde_json::Value> =
        decode_one(&check_response(&api.post("/api/v0/config/show").await).unwrap());
    assert_eq!(config["Datastore"]["StorageMax"], "10GB");
    assert!(config["Identity"].get("PrivKey").is_none());

    // SwarmPeers and swarm/connect (URL-escaped, as ConnectSwarms sends it).
    let peers: IpfsSwarmPeersResp =
        decode_one(&check_response(&api.post("/api/v0/swarm/peers").await).unwrap());
    assert!(peers.peers.unwrap_or_default().is_empty());
    let other_addr = format!(
        "{}/p2p/{}",
        other.node.listen_addrs().await.unwrap()[0],
        other.node.peer_id()
    );
    let connect = api
        .post(&format!(
            "/api/v0/swarm/connect?arg={}",
            other_addr.replace('/', "%2F")
        ))
        .await;
    check_response(&connect).unwrap();
    let peers: IpfsSwarmPeersResp =
        decode_one(&check_response(&api.post("/api/v0/swarm/peers").await).unwrap());
    let ids: Vec<libp2p::PeerId> = peers
        .peers
        .unwrap()
        .iter()
        .map(|p| p.peer.parse().unwrap())
        .collect();
    assert_eq!(ids, [other.node.peer_id()]);
}

#[tokio::test]
async fn pin_verify_reports_a_broken_pin_as_kubo_does() {
    let api = common::start().await;
    // A file with a leaf of 100 KiB: stored as a flatfs-style file, which can go missing.
    let (blocks, _) = unixfs_file(2, 100 << 10, 9);
    let put = block_stream(&api, "dag-pb", &blocks).await;
    assert_eq!(put.len(), 3);
    let root = blocks[2].0;
    let add = api.post(&format!("/api/v0/pin/add?arg={root}")).await;
    check_response(&add).unwrap();
    // Remove the first leaf's file behind the store's back.
    let leaf = blocks[0].0;
    let name = format!(
        "{}.data",
        data_encoding::BASE32_NOPAD.encode(&leaf.hash().to_bytes())
    );
    let mut found = None;
    let mut dirs = vec![api.repo.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else if entry.file_name().to_string_lossy() == name {
                found = Some(entry.path());
            }
        }
    }
    std::fs::remove_file(found.expect("the leaf's block file")).unwrap();

    let verify = api.post("/api/v0/pin/verify").await;
    let lines: Vec<serde_json::Value> = decode_stream(&check_response(&verify).unwrap());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["Cid"], root.to_string());
    assert!(lines[0].get("Ok").is_none(), "Ok is omitempty");
    let bad = lines[0]["BadNodes"].as_array().unwrap();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["Cid"], leaf.to_string());
    assert!(!bad[0]["Err"].as_str().unwrap().is_empty());
    // quiet: just the broken pin's CID.
    let quiet = api.post("/api/v0/pin/verify?quiet=true").await;
    let lines: Vec<serde_json::Value> = decode_stream(&check_response(&quiet).unwrap());
    assert_eq!(lines, [serde_json::json!({"Cid": root.to_string()})]);
}
