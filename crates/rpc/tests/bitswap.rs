//! Content moving between two real nodes through their RPCs: node A adds files through its RPC;
//! node B's `cat`, `block/get`, `block/stat`, `pin/add?progress=true`, `refs -r` and `dag/export`
//! fetch them over Bitswap. Also Kubo's global `offline` and `timeout` options, `bitswap/*`,
//! `routing/provide -r` and `provide/stat`.

mod common;

use std::time::{Duration, Instant};

use cairn_blockstore::{Block, Cid};
use common::{Answer, Api, assert_kubo_error, start};
use rand::{RngCore, SeedableRng};
use sha2::Digest;

/// Seeded random bytes (incompressible, distinct per seed, so each file is new to B).
fn random_file(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// Adds a file through the RPC; returns its root CID.
async fn add(api: &Api, data: &[u8], options: &str) -> String {
    let lines = api
        .post_files(&format!("/api/v0/add?{options}"), &[data])
        .await
        .lines();
    lines.last().unwrap()["Hash"].as_str().unwrap().to_string()
}

/// Two nodes, B connected to A through B's RPC.
async fn two_nodes() -> (Api, Api) {
    let (a, b) = (start().await, start().await);
    let a_addr = format!(
        "{}/p2p/{}",
        a.node.listen_addrs().await.unwrap()[0],
        a.node.peer_id()
    );
    let connect = b.post(&format!("/api/v0/swarm/connect?arg={a_addr}")).await;
    assert_eq!(connect.status, 200, "{}", connect.text());
    (a, b)
}

/// Polls `probe` every 50 ms until it is true or `limit` passes (the RPC has no event to wait
/// on for these states); returns whether it became true.
async fn eventually(limit: Duration, mut probe: impl AsyncFnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Parses a CARv1: the header's roots and every section as a verified block.
fn parse_car(car: &[u8]) -> (Vec<Cid>, Vec<Block>) {
    fn varint(bytes: &[u8], pos: &mut usize) -> usize {
        let (mut n, mut shift) = (0usize, 0);
        loop {
            let b = bytes[*pos];
            *pos += 1;
            n |= ((b & 0x7f) as usize) << shift;
            if b < 0x80 {
                return n;
            }
            shift += 7;
        }
    }
    #[derive(serde::Deserialize)]
    struct Header {
        roots: Vec<Cid>,
        version: u64,
    }
    let mut pos = 0;
    let len = varint(car, &mut pos);
    let header: Header = serde_ipld_dagcbor::from_slice(&car[pos..pos + len]).unwrap();
    assert_eq!(header.version, 1);
    pos += len;
    let mut blocks = Vec::new();
    while pos < car.len() {
        let len = varint(car, &mut pos);
        let mut section = std::io::Cursor::new(&car[pos..pos + len]);
        let cid = Cid::read_bytes(&mut section).unwrap();
        let data = &car[pos + section.position() as usize..pos + len];
        blocks.push(Block::new(cid, data.to_vec()).expect("a section's data hashes to its CID"));
        pos += len;
    }
    (header.roots, blocks)
}

/// POST asking for trailers (hyper sends `X-Stream-Error` only to clients that accept them, as
/// the CLI does).
async fn post_t(api: &Api, path: &str) -> Answer {
    api.send("POST", path, &[("te", "trailers")], Default::default())
        .await
}

/// A CID no node has.
fn nobody() -> String {
    use multihash_codetable::MultihashDigest;
    let hash = multihash_codetable::Code::Sha2_256.digest(b"no node stores this");
    Cid::new_v1(0x55, hash).to_string()
}

fn refs(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-chunked-output"), Some("1"));
    answer
        .lines()
        .iter()
        .map(|l| {
            assert_eq!(l["Err"], "", "{l}");
            l["Ref"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_fetches_what_a_added_through_every_reading_command() {
    let (a, b) = two_nodes().await;

    // block/get and block/stat of a block only A has.
    let small = random_file(1, 3000);
    let small_cid = add(&a, &small, "cid-version=1").await;
    let got = b.post(&format!("/api/v0/block/stat?arg={small_cid}")).await;
    assert_eq!(got.json()["Size"], 3000, "{}", got.text());
    let got = b.post(&format!("/api/v0/block/get?arg={small_cid}")).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("content-type"), Some("application/vnd.ipld.raw"));
    assert_eq!(got.body, small);

    // cat: a multi-block file (default options: CIDv0, 256 KiB chunks), then a range of another.
    let file = random_file(2, 3 * 1024 * 1024 + 12345);
    let root = add(&a, &file, "").await;
    let cat = post_t(&b, &format!("/api/v0/cat?arg={root}")).await;
    assert_eq!(cat.status, 200, "{}", cat.text());
    assert_eq!(cat.header("x-stream-output"), Some("1"));
    assert!(cat.stream_error().is_none(), "{:?}", cat.stream_error());
    assert_eq!(
        sha2::Sha256::digest(&cat.body),
        sha2::Sha256::digest(&file),
        "B's cat differs from what A added"
    );
    let file = random_file(3, 2 * 1024 * 1024);
    let root = add(&a, &file, "cid-version=1").await;
    let range = b
        .post(&format!(
            "/api/v0/cat?arg={root}&offset=300000&length=700000"
        ))
        .await;
    assert_eq!(range.body, file[300_000..1_000_000]);

    // refs -r: B walks (fetching) the same refs A lists from its store, in the same order.
    let file = random_file(4, 2 * 1024 * 1024 + 1);
    let root = add(&a, &file, "").await;
    let on_b = refs(
        &b.post(&format!("/api/v0/refs?arg={root}&recursive=true"))
            .await,
    );
    let on_a = refs(&a.post(&format!("/api/v0/refs?arg={root}&r=true")).await);
    assert_eq!(on_b, on_a);
    assert_eq!(on_b.len(), 9, "8 leaves of 256 KiB and one of 1 byte");
    let edges = refs(&b.post(&format!("/api/v0/refs?arg={root}&edges=true")).await);
    assert_eq!(edges[0], format!("{root} -> {}", on_a[0]));
    let unique = refs(
        &b.post(&format!(
            "/api/v0/refs?arg={root}&r=true&unique=true&format=%3Clinkname%3E:%3Cdst%3E"
        ))
        .await,
    );
    assert_eq!(
        unique[0],
        format!(":{}", on_a[0]),
        "file links have no names"
    );

    // dag/export: B's CAR (fetched as it streams) is byte for byte A's, and parses back to the
    // root and every block of the DAG, root first, depth first.
    let file = random_file(5, 1024 * 1024 + 7);
    let root = add(&a, &file, "cid-version=1").await;
    let car_b = post_t(&b, &format!("/api/v0/dag/export?arg={root}")).await;
    assert_eq!(car_b.status, 200, "{}", car_b.text());
    assert_eq!(
        car_b.header("content-type"),
        Some("application/vnd.ipld.car")
    );
    assert_eq!(car_b.header("x-stream-output"), Some("1"));
    assert!(car_b.stream_error().is_none());
    let car_a = a.post(&format!("/api/v0/dag/export?arg={root}")).await;
    assert_eq!(car_a.body, car_b.body);
    let (roots, blocks) = parse_car(&car_b.body);
    assert_eq!(roots, vec![root.parse::<Cid>().unwrap()]);
    assert_eq!(blocks[0].cid().to_string(), root);
    let leaves = refs(&a.post(&format!("/api/v0/refs?arg={root}&r=true")).await);
    let in_car: Vec<String> = blocks[1..].iter().map(|b| b.cid().to_string()).collect();
    assert_eq!(in_car, leaves);
    let content: Vec<u8> = blocks[1..].iter().flat_map(|b| b.data().to_vec()).collect();
    assert_eq!(content, file, "the raw leaves, in file order");

    // pin/add?progress=true: fetches the DAG, streams progress, then the pins.
    let file = random_file(6, 2 * 1024 * 1024);
    let root = add(&a, &file, "").await;
    let pin = b
        .post(&format!("/api/v0/pin/add?arg={root}&progress=true"))
        .await;
    assert_eq!(pin.status, 200, "{}", pin.text());
    assert_eq!(pin.header("x-chunked-output"), Some("1"));
    let lines = pin.lines();
    let (last, progress) = lines.split_last().unwrap();
    assert_eq!(last, &serde_json::json!({"Pins": [root]}));
    assert!(!progress.is_empty(), "a last progress line: N is not zero");
    let counts: Vec<u64> = progress
        .iter()
        .map(|p| p.get("Progress").map_or(0, |n| n.as_u64().unwrap()))
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(*counts.last().unwrap(), 9, "the root and 8 leaves");
    assert!(progress.last().unwrap()["Bytes"].as_u64().unwrap() > 2 * 1024 * 1024);
    let pinned = b
        .post(&format!("/api/v0/pin/ls?arg={root}&offline=true"))
        .await
        .json();
    assert_eq!(pinned["Keys"][&root]["Type"], "recursive");
    // Everything is local now: the offline reads succeed.
    let cat = b
        .post(&format!("/api/v0/cat?arg={root}&offline=true"))
        .await;
    assert_eq!(cat.body, file);

    // The counters moved, on both sides.
    let stat_b = b.post("/api/v0/bitswap/stat").await.json();
    assert!(stat_b["BlocksReceived"].as_u64().unwrap() > 0, "{stat_b}");
    assert!(
        stat_b["DataReceived"].as_u64().unwrap() > 4 * 1024 * 1024,
        "{stat_b}"
    );
    assert!(stat_b["MessagesReceived"].as_u64().unwrap() > 0, "{stat_b}");
    assert_eq!(
        stat_b["Peers"],
        serde_json::json!([a.node.peer_id().to_base58()])
    );
    assert_eq!(stat_b["Wantlist"], serde_json::json!([]));
    let stat_a = a.post("/api/v0/stats/bitswap?human=true").await.json();
    assert!(stat_a["BlocksSent"].as_u64().unwrap() > 0, "{stat_a}");
    assert!(
        stat_a["DataSent"].as_u64().unwrap() > 4 * 1024 * 1024,
        "{stat_a}"
    );
    for field in [
        "ProvideBufLen",
        "DupBlksReceived",
        "DupDataReceived",
        "BlocksReceived",
        "DataReceived",
        "MessagesReceived",
    ] {
        assert!(stat_a[field].is_u64(), "{field}: {stat_a}");
    }
    let ledger = a
        .post(&format!("/api/v0/bitswap/ledger?arg={}", b.node.peer_id()))
        .await
        .json();
    assert_eq!(ledger["Peer"], b.node.peer_id().to_base58());
    assert!(
        ledger["Sent"].as_u64().unwrap() > 4 * 1024 * 1024,
        "{ledger}"
    );
    assert!(ledger["Exchanged"].as_u64().unwrap() > 0, "{ledger}");
    assert!(
        ledger["Value"].as_f64().unwrap() > 1.0,
        "A gave more than it got"
    );
    let ledger = b
        .post(&format!("/api/v0/bitswap/ledger?arg={}", a.node.peer_id()))
        .await
        .json();
    assert!(ledger["Recv"].as_u64().unwrap() > 0, "{ledger}");
    assert_kubo_error(
        &b.post("/api/v0/bitswap/ledger?arg=nope").await,
        400,
        "nope",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_and_timeout_are_kubos_global_options() {
    let (a, b) = two_nodes().await;
    let root = add(&a, &random_file(7, 600_000), "").await;
    let kubo_offline =
        format!("block was not found locally (offline): ipld: could not find {root}");
    for command in [
        "block/get",
        "block/stat",
        "cat",
        "refs",
        "dag/export",
        "pin/add",
    ] {
        let answer = b
            .post(&format!("/api/v0/{command}?arg={root}&offline=true"))
            .await;
        assert_kubo_error(&answer, 500, &kubo_offline);
        assert_eq!(answer.json()["Code"], 0, "{command}");
    }
    assert!(
        b.node
            .local_block(&root.parse().unwrap())
            .await
            .unwrap()
            .is_none(),
        "offline reads fetched nothing"
    );
    // dag/export's local-only implies offline.
    assert_kubo_error(
        &b.post(&format!("/api/v0/dag/export?arg={root}&local-only=true"))
            .await,
        500,
        &kubo_offline,
    );

    // A CID nobody has: timeout=1s ends the wait with Go's context error.
    let nobody = nobody();
    for command in ["block/get", "cat", "pin/add", "refs", "dag/export"] {
        let started = Instant::now();
        let answer = b
            .post(&format!("/api/v0/{command}?arg={nobody}&timeout=1s"))
            .await;
        let took = started.elapsed();
        assert_kubo_error(&answer, 500, "context deadline exceeded");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{command} took {took:?}"
        );
    }
    // A bad duration is a parse error (plain text 400), as in go-ipfs-cmds.
    let bad = b
        .post(&format!("/api/v0/block/get?arg={root}&timeout=soon"))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.text(), "time: invalid duration \"soon\"\n");
    // The timeout also cuts a stream that is still running: a progress stream for a DAG that
    // never arrives ends with the error in the trailer after its progress lines.
    let pin = post_t(
        &b,
        &format!("/api/v0/pin/add?arg={nobody}&progress=true&timeout=1200ms"),
    )
    .await;
    assert_eq!(pin.status, 200);
    // Kubo's progress loop ends with either its core API's `pin: context deadline exceeded` or
    // a bare `context deadline exceeded`; clients look for the latter inside the message.
    let error = pin.stream_error().unwrap();
    assert!(
        error == "context deadline exceeded" || error == "pin: context deadline exceeded",
        "{error}"
    );
    let ticks = pin.lines();
    assert!(!ticks.is_empty(), "a tick every 500 ms");
    assert!(
        ticks.iter().all(|t| *t == serde_json::json!({})),
        "nothing fetched: Progress 0 is omitted, as Go's omitempty does: {ticks:?}"
    );
    // Online and in time, the same request fetches.
    let got = b
        .post(&format!("/api/v0/block/stat?arg={root}&timeout=30s"))
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_want_shows_in_both_wantlists_and_is_served_once_a_adds_the_block() {
    let (a, b) = two_nodes().await;
    let b = std::sync::Arc::new(b);
    let data = random_file(8, 100_000);
    // The CID of data A does not store yet (only-hash stores nothing).
    let cid = add(&a, &data, "only-hash=true&cid-version=1&raw-leaves=true").await;
    assert!(
        a.node
            .local_block(&cid.parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let fetch = {
        let b = b.clone();
        let cid = cid.clone();
        tokio::spawn(async move {
            b.post(&format!("/api/v0/block/get?arg={cid}&timeout=60s"))
                .await
        })
    };
    let want = serde_json::json!([{"/": cid}]);
    assert!(
        eventually(Duration::from_secs(10), async || {
            b.post("/api/v0/bitswap/wantlist").await.json()["Keys"] == want
        })
        .await,
        "B's wantlist never showed the pending want"
    );
    assert!(
        eventually(Duration::from_secs(10), async || {
            b.post("/api/v0/bitswap/stat").await.json()["Wantlist"] == want
        })
        .await
    );
    let peer_wants = format!("/api/v0/bitswap/wantlist?peer={}", b.node.peer_id());
    assert!(
        eventually(Duration::from_secs(10), async || {
            a.post(&peer_wants).await.json()["Keys"] == want
        })
        .await,
        "A never saw B's want"
    );
    // A adds the data: `add` tells Bitswap, which sends the block to B's waiting want.
    assert_eq!(add(&a, &data, "cid-version=1&raw-leaves=true").await, cid);
    let got = tokio::time::timeout(Duration::from_secs(20), fetch)
        .await
        .expect("B's block/get was answered once A added the block")
        .unwrap();
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, data);
    assert_eq!(
        b.post("/api/v0/bitswap/wantlist").await.json()["Keys"],
        serde_json::json!([])
    );

    // A want that times out is cancelled: B's wantlist empties again.
    let nobody = nobody();
    let timed_out = b
        .post(&format!("/api/v0/block/get?arg={nobody}&timeout=500ms"))
        .await;
    assert_kubo_error(&timed_out, 500, "context deadline exceeded");
    assert!(
        eventually(Duration::from_secs(5), async || {
            b.post("/api/v0/bitswap/wantlist").await.json()["Keys"] == serde_json::json!([])
        })
        .await,
        "the timed-out want stayed in the wantlist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providing_reproviding_and_their_stats() {
    let (a, _b) = two_nodes().await;
    let file = random_file(9, 700_000);
    // Not pinned, so a leaf can be removed.
    let root = add(&a, &file, "pin=false").await;
    let provided = a
        .post(&format!(
            "/api/v0/routing/provide?arg={root}&recursive=true"
        ))
        .await;
    assert_eq!(provided.status, 200, "{}", provided.text());
    let leaves = refs(&a.post(&format!("/api/v0/refs?arg={root}")).await);
    assert_eq!(leaves.len(), 3);
    let rm = a.post(&format!("/api/v0/block/rm?arg={}", leaves[1])).await;
    assert!(rm.lines()[0].get("Error").is_none(), "{}", rm.text());
    assert_kubo_error(
        &a.post(&format!("/api/v0/routing/provide?arg={root}&r=true"))
            .await,
        500,
        &format!("block {} not found locally, cannot provide", leaves[1]),
    );
    // Without -r only the root must be here.
    assert_eq!(
        a.post(&format!("/api/v0/routing/provide?arg={root}"))
            .await
            .status,
        200
    );

    // `add` told the provider about what it wrote: announcements were queued and run.
    assert!(
        eventually(Duration::from_secs(10), async || {
            let s = a.post("/api/v0/provide/stat").await.json();
            s["TotalProvides"].as_u64().unwrap()
                + s["Queued"].as_u64().unwrap()
                + s["FailedProvides"].as_u64().unwrap()
                > 0
        })
        .await
    );
    let stat = a.post("/api/v0/stats/provide").await.json();
    for field in [
        "TotalProvides",
        "AvgProvideDuration",
        "LastReprovideDuration",
        "LastReprovideBatchSize",
    ] {
        assert!(stat[field].is_u64(), "{field}: {stat}");
    }
    let reprovide = a.post("/api/v0/bitswap/reprovide").await;
    assert_eq!(reprovide.status, 200, "{}", reprovide.text());
    assert_eq!(reprovide.header("x-chunked-output"), Some("1"));
    assert!(reprovide.body.is_empty());
}
