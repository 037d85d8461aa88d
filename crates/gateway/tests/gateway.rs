//! The gateway over a real node on 127.0.0.1, checked with real clients: `curl` for the path
//! gateway (Range, HEAD, ETags, listings, redirects, errors) and the trustless formats, every
//! CAR parsed and hash-checked by `@ipld/car` (JavaScript, `tests/js/car.mjs`) and compared with
//! the blocks its `dag-scope`/`entity-bytes` names, worked out here from the DAG's links and the
//! chunk size (not by the gateway's walk); `@helia/verified-fetch` fetching and verifying a
//! 10 MiB file and a directory; Bitswap fetches from a second node; Kubo's limits (429, 504)
//! and `NoFetch` / `DeserializedResponses`.
//!
//! Needs `curl` and `node` with `npm ci` run in `tests/js` (scripts/test.sh does both).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cairn_gateway::{Gateway, GatewayConfig, GatewayMetrics};
use cairn_node_core::add::AddOptions;
use cairn_node_core::unixfs::refs::RefsOptions;
use cairn_node_core::{FetchOptions, Multiaddr, Node, Profile};
use cid::Cid;
use futures::StreamExt;
use sha2::Digest;

/// The chunk size of the imports below (Kubo's default).
const CHUNK: usize = 256 * 1024;

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn node() -> Node {
    Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse::<Multiaddr>().unwrap()])
        .build()
        .await
        .expect("node starts")
}

/// Serves a gateway over `node` on 127.0.0.1 port 0; returns its base URL.
async fn serve(node: &Node, config: GatewayConfig, metrics: GatewayMetrics) -> String {
    let router = Gateway::new(node.clone(), config).metrics(metrics).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// Adds `files` (path → bytes) as one import (CIDv1, raw leaves, 256 KiB chunks); returns
/// every path's CID (directories too).
async fn add(
    node: &Node,
    files: &[(&str, Vec<u8>)],
    hamt_threshold: Option<usize>,
) -> BTreeMap<String, Cid> {
    let mut opts = AddOptions::default();
    opts.import.cid_version = Some(1);
    opts.pin = true;
    if let Some(t) = hamt_threshold {
        opts.import.hamt_threshold = t;
    }
    let mut adder = node.adder(opts).unwrap();
    let mut out = BTreeMap::new();
    for (path, data) in files {
        let stream = futures::stream::iter([Ok(Bytes::from(data.clone()))]);
        let ev = adder.add_file(path, stream, &mut |_| {}).await.unwrap();
        out.insert(ev.name, ev.cid);
    }
    for ev in adder.finish().await.unwrap() {
        out.insert(ev.name, ev.cid);
    }
    out
}

/// Every block under `root` in depth-first first-seen order (from `refs -r --unique`), the root
/// first.
async fn dag(node: &Node, root: Cid) -> Vec<Cid> {
    let opts = RefsOptions::from_flags(None, false, true, true, None).unwrap();
    let mut out = vec![root];
    let mut refs = node.refs(vec![root], opts, FetchOptions::offline());
    while let Some(line) = refs.next().await {
        out.push(line.unwrap().trim().parse().unwrap());
    }
    out
}

/// One curl answer.
#[derive(Debug)]
struct Got {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs `curl -sS` with `args` on `url`, returning status, headers (lower-cased names) and body.
async fn curl(url: &str, args: &[&str]) -> Got {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("curl runs (install curl)");
    let status: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let raw = std::fs::read_to_string(&head).unwrap_or_default();
    // After redirects or 100s, the last header block is the answer's.
    let last = raw
        .trim_end()
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_string();
    let headers = last
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Got {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

fn node_modules() -> PathBuf {
    let dir = js_dir().join("node_modules");
    assert!(
        dir.is_dir(),
        "{} is missing: run `npm ci --prefix crates/gateway/tests/js` (scripts/test.sh does)",
        dir.display()
    );
    dir
}

#[derive(Debug, serde::Deserialize)]
struct CarSummary {
    version: u64,
    roots: Vec<String>,
    blocks: Vec<String>,
}

/// Fetches `url` with curl and parses the answer with `@ipld/car` (every block hash-checked).
async fn car(url: &str, args: &[&str]) -> (Got, CarSummary) {
    node_modules();
    let got = curl(url, args).await;
    assert_eq!(got.status, 200, "{url}: {}", got.text());
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &got.body).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(js_dir().join("car.mjs"))
        .arg(file.path())
        .output()
        .await
        .expect("node runs");
    assert!(
        out.status.success(),
        "@ipld/car refused the CAR of {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (got, serde_json::from_slice(&out.stdout).unwrap())
}

fn names(cids: &[Cid]) -> Vec<String> {
    cids.iter().map(Cid::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_gateway_with_curl() {
    let node = node().await;
    let gw = serve(&node, GatewayConfig::default(), GatewayMetrics::default()).await;
    // A file of 4 chunks and 123 bytes; a site with index.html; a directory to list.
    let big = content(4 * CHUNK + 123, 1);
    let index = b"<!DOCTYPE html><html><body>cairn site</body></html>".to_vec();
    let cids = add(
        &node,
        &[
            ("big.bin", big.clone()),
            ("site/index.html", index.clone()),
            ("site/sub/hello.txt", b"hello gateway\n".to_vec()),
            ("docs/a b.txt", b"spaces".to_vec()),
            ("docs/<x>&.md", b"# escaped".to_vec()),
            ("docs/readme", b"plain text, no extension".to_vec()),
        ],
        None,
    )
    .await;
    let file = cids["big.bin"];
    let url = format!("{gw}/ipfs/{file}");

    // GET: the bytes, with the immutable-content headers.
    let got = curl(&url, &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(sha256(&got.body), sha256(&big));
    assert_eq!(got.header("content-length"), big.len().to_string());
    assert_eq!(got.header("etag"), format!("\"{file}\""));
    assert_eq!(
        got.header("cache-control"),
        "public, max-age=29030400, immutable"
    );
    assert_eq!(got.header("accept-ranges"), "bytes");
    assert_eq!(got.header("x-ipfs-path"), format!("/ipfs/{file}"));
    assert_eq!(got.header("x-ipfs-roots"), file.to_string());
    assert_eq!(got.header("content-type"), "application/octet-stream");
    assert_eq!(got.header("access-control-allow-origin"), "*");

    // HEAD: the same headers, no body.
    let got = curl(&url, &["-I"]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-length"), big.len().to_string());
    // (curl -I writes the headers where the body would go.)
    assert!(got.body.starts_with(b"HTTP/1.1 200"), "no body after HEAD");
    assert!(got.body.len() < 4096);

    // Ranges: inside a chunk, across a chunk boundary, a suffix, past the end.
    for (range, start, end) in [
        ("1000-1999", 1000, 2000),
        ("262140-262150", CHUNK - 4, CHUNK + 7),
        ("-100", big.len() - 100, big.len()),
        ("1048000-", 1_048_000, big.len()),
    ] {
        let got = curl(&url, &["-r", range]).await;
        assert_eq!(got.status, 206, "range {range}");
        assert_eq!(got.body, big[start..end], "range {range}");
        assert_eq!(
            got.header("content-range"),
            format!("bytes {start}-{}/{}", end - 1, big.len())
        );
    }
    let got = curl(&url, &["-r", &format!("{}-", big.len())]).await;
    assert_eq!(got.status, 416);
    assert_eq!(
        got.header("content-range"),
        format!("bytes */{}", big.len())
    );

    // If-None-Match with the ETag: 304, no body.
    let got = curl(&url, &["-H", &format!("If-None-Match: \"{file}\"")]).await;
    assert_eq!(got.status, 304);
    assert!(got.body.is_empty());

    // filename and download.
    let got = curl(&format!("{url}?filename=data.bin&download=true"), &["-I"]).await;
    assert!(
        got.header("content-disposition")
            .starts_with("attachment; filename=\"data.bin\""),
        "{:?}",
        got.headers
    );
    let got = curl(&format!("{url}?filename=report.pdf"), &["-I"]).await;
    assert_eq!(got.header("content-type"), "application/pdf");
    assert!(got.header("content-disposition").starts_with("inline;"));

    // A directory with index.html: redirected to the slash URL, then the page.
    let site = cids["site"];
    let got = curl(&format!("{gw}/ipfs/{site}?x=1"), &[]).await;
    assert_eq!(got.status, 301);
    assert_eq!(got.header("location"), format!("/ipfs/{site}/?x=1"));
    let got = curl(&format!("{gw}/ipfs/{site}/"), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, index);
    assert_eq!(got.header("content-type"), "text/html; charset=utf-8");
    // A file below: typed by its name, one root per path segment.
    let got = curl(&format!("{gw}/ipfs/{site}/sub/hello.txt"), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "hello gateway\n");
    assert_eq!(got.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(
        got.header("x-ipfs-roots"),
        format!("{site},{},{}", cids["site/sub"], cids["site/sub/hello.txt"])
    );
    // A file without an extension: typed by its bytes.
    let docs = cids["docs"];
    let got = curl(&format!("{gw}/ipfs/{docs}/readme"), &["-I"]).await;
    assert_eq!(got.header("content-type"), "text/plain; charset=utf-8");

    // A directory without index.html: an HTML listing with names (escaped, linked), sizes and
    // CIDs.
    let got = curl(&format!("{gw}/ipfs/{docs}/"), &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), "text/html; charset=utf-8");
    let html = got.text();
    assert!(html.contains("&lt;x&gt;&amp;.md"), "{html}");
    assert!(html.contains("href=\"a%20b.txt\""), "{html}");
    assert!(html.contains(&cids["docs/a b.txt"].to_string()), "{html}");
    assert!(html.contains("6 B"), "{html}");
    assert!(!html.contains("<x>"), "names are escaped: {html}");
    let got = curl(&format!("{gw}/ipfs/{docs}/a%20b.txt"), &[]).await;
    assert_eq!(got.text(), "spaces");

    // Bad input and missing content.
    let got = curl(&format!("{gw}/ipfs/not-a-cid"), &[]).await;
    assert_eq!(got.status, 400, "{}", got.text());
    assert!(got.text().contains("invalid cid"), "{}", got.text());
    let got = curl(&format!("{gw}/ipfs/{site}/nope.txt"), &[]).await;
    assert_eq!(got.status, 404);
    assert!(
        got.text().contains("no link named \"nope.txt\""),
        "{}",
        got.text()
    );
    let got = curl(&format!("{url}?format=car&dag-scope=everything"), &[]).await;
    assert_eq!(got.status, 400);
    let got = curl(&format!("{url}?format=car&entity-bytes=10:2"), &[]).await;
    assert_eq!(got.status, 400);
    let got = curl(&format!("{url}?format=json5"), &[]).await;
    assert_eq!(got.status, 400);

    // Read-only, and never the RPC.
    let got = curl(&url, &["-X", "POST"]).await;
    assert_eq!(got.status, 405);
    assert_eq!(got.header("allow"), "GET, HEAD, OPTIONS");
    let got = curl(&format!("{gw}/api/v0/version"), &["-X", "POST"]).await;
    assert_eq!(got.status, 405);
    let got = curl(&format!("{gw}/api/v0/id"), &[]).await;
    assert_eq!(got.status, 404);
    // DNSLink names are not resolved by cairn: a clear 400.
    let got = curl(&format!("{gw}/ipns/example.com"), &[]).await;
    assert_eq!(got.status, 400);
    assert!(got.text().contains("DNSLink"), "{}", got.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipns_paths_serve_what_the_name_points_at() {
    let node = node().await;
    let gw = serve(&node, GatewayConfig::default(), GatewayMetrics::default()).await;
    let added = add(
        &node,
        &[
            ("site/sub/hello.txt", b"hello".to_vec()),
            ("site/a.txt", b"a".to_vec()),
        ],
        None,
    )
    .await;
    let site = added["site"];
    let mut opts = cairn_node_core::names::PublishOptions::default();
    opts.allow_offline = true; // a lone node: the record stays in its own store
    let name = node
        .name_publish(&format!("/ipfs/{site}"), opts)
        .await
        .unwrap()
        .name;

    let path = format!("/ipns/{name}/sub/hello.txt");
    let got = curl(&format!("{gw}{path}"), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, b"hello");
    assert_eq!(got.header("x-ipfs-path"), path);
    // Publishing a new target changes what the same URL serves.
    let mut opts = cairn_node_core::names::PublishOptions::default();
    opts.allow_offline = true;
    node.name_publish(&format!("/ipfs/{}", added["site/sub"]), opts)
        .await
        .unwrap();
    let got = curl(&format!("{gw}/ipns/{name}/hello.txt"), &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, b"hello");
    let got = curl(&format!("{gw}/ipns/{name}/a.txt"), &[]).await;
    assert_eq!(got.status, 404, "{}", got.text());

    // A name nobody published, and a name that is no name.
    let nobody = cairn_node_core::ipns::Name::from_peer_id(cairn_node_core::PeerId::random());
    let got = curl(&format!("{gw}/ipns/{nobody}"), &[]).await;
    assert_eq!(got.status, 404, "{}", got.text());
    assert!(
        got.text().contains("could not resolve name"),
        "{}",
        got.text()
    );
    let got = curl(&format!("{gw}/ipns/k51notaname"), &[]).await;
    assert_eq!(got.status, 400, "{}", got.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustless_raw_and_car_scopes() {
    let node = node().await;
    let gw = serve(&node, GatewayConfig::default(), GatewayMetrics::default()).await;
    let big = content(4 * CHUNK + 123, 2);
    let names_in_hamt: Vec<String> = (0..40).map(|i| format!("h/entry-{i:02}.txt")).collect();
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("big.bin", big.clone()),
        ("site/sub/hello.txt", b"hello".to_vec()),
        ("site/other.txt", b"other".to_vec()),
    ];
    for (i, n) in names_in_hamt.iter().enumerate() {
        files.push((n, format!("entry {i}").into_bytes()));
    }
    // A threshold of 1 byte makes every directory a HAMT; `h` is then a sharded directory.
    let plain = add(&node, &files[..3], None).await;
    let hamt = add(&node, &files[3..], Some(1)).await;
    let file = plain["big.bin"];
    let url = format!("{gw}/ipfs/{file}");

    // format=raw and the Accept header: exactly the block's bytes.
    let block = node.local_block(&file).await.unwrap().unwrap();
    for args in [vec![], vec!["-H", "Accept: application/vnd.ipld.raw"]] {
        let u = if args.is_empty() {
            format!("{url}?format=raw")
        } else {
            url.clone()
        };
        let got = curl(&u, &args).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.body, block.data().as_ref());
        assert_eq!(got.header("content-type"), "application/vnd.ipld.raw");
        assert_eq!(got.header("etag"), format!("\"{file}.raw\""));
        assert!(got.header("content-disposition").starts_with("attachment;"));
    }
    let missing = Cid::new_v1(
        0x55,
        cid::multihash::Multihash::wrap(0x12, &[7; 32]).unwrap(),
    );

    // The file's DAG: the root, then its leaves in order (4 full chunks and a short one).
    let all = dag(&node, file).await;
    assert_eq!(all.len(), 6, "{all:?}");
    let leaves = &all[1..];
    let leaf = |i: usize| leaves[i];

    // Each scope, with format=car and with the Accept header.
    for (query, accept, want) in [
        ("format=car&dag-scope=block", None, vec![file]),
        ("format=car&dag-scope=entity", None, all.clone()),
        ("format=car", None, all.clone()),
        (
            "dag-scope=all",
            Some("application/vnd.ipld.car"),
            all.clone(),
        ),
        // First KiB: the first leaf only.
        ("format=car&entity-bytes=0:1023", None, vec![file, leaf(0)]),
        // Across the first chunk boundary: two leaves.
        (
            "format=car&entity-bytes=262140:262150",
            None,
            vec![file, leaf(0), leaf(1)],
        ),
        // The last 100 bytes: the last leaf.
        ("format=car&entity-bytes=-100:*", None, vec![file, leaf(4)]),
        // From the third chunk to 1000 bytes before the end (inside the fourth chunk).
        (
            "format=car&entity-bytes=524288:-1000",
            None,
            vec![file, leaf(2), leaf(3)],
        ),
        // Outside the file: the root block alone (the spec's fallback to `block`).
        ("format=car&entity-bytes=99999999:*", None, vec![file]),
    ] {
        let u = format!("{url}?{query}");
        let args: Vec<String> = accept
            .map(|a| vec!["-H".into(), format!("Accept: {a}")])
            .unwrap_or_default();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (got, summary) = car(&u, &args).await;
        assert_eq!(summary.blocks, names(&want), "{query}");
        assert_eq!(summary.roots, vec![file.to_string()]);
        assert_eq!(summary.version, 1);
        assert_eq!(
            got.header("content-type"),
            "application/vnd.ipld.car; version=1; order=dfs; dups=n"
        );
        assert!(got.header("etag").starts_with("W/\""), "{query}");
    }

    // A path: the blocks that resolve it, then the terminal element.
    let site = plain["site"];
    let sub = plain["site/sub"];
    let hello = plain["site/sub/hello.txt"];
    let (_, s) = car(
        &format!("{gw}/ipfs/{site}/sub/hello.txt?format=car&dag-scope=block"),
        &[],
    )
    .await;
    assert_eq!(s.blocks, names(&[site, sub, hello]));
    let (_, s) = car(
        &format!("{gw}/ipfs/{site}/sub?format=car&dag-scope=all"),
        &[],
    )
    .await;
    assert_eq!(s.blocks, names(&[site, sub, hello]));
    // A plain directory's entity is its one block; `all` is the whole DAG.
    let (_, s) = car(
        &format!("{gw}/ipfs/{site}?format=car&dag-scope=entity"),
        &[],
    )
    .await;
    assert_eq!(s.blocks, names(&[site]));
    let (_, s) = car(&format!("{gw}/ipfs/{site}?format=car"), &[]).await;
    assert_eq!(s.blocks, names(&dag(&node, site).await));

    // A HAMT directory: entity is its shard nodes (dag-pb), not its entries (raw leaves).
    let h = hamt["h"];
    let whole = dag(&node, h).await;
    let shards: Vec<Cid> = whole
        .iter()
        .copied()
        .filter(|c| c.codec() == 0x70)
        .collect();
    assert!(shards.len() > 1, "a sharded directory: {whole:?}");
    assert!(whole.len() > shards.len());
    let (_, s) = car(&format!("{gw}/ipfs/{h}?format=car&dag-scope=entity"), &[]).await;
    assert_eq!(s.blocks, names(&shards));
    let (_, s) = car(&format!("{gw}/ipfs/{h}?format=car&dag-scope=all"), &[]).await;
    assert_eq!(s.blocks, names(&whole));
    // A path through the HAMT: the shards on the way to the entry, then the entry.
    let entry = hamt["h/entry-07.txt"];
    let (_, s) = car(
        &format!("{gw}/ipfs/{h}/entry-07.txt?format=car&dag-scope=block"),
        &[],
    )
    .await;
    assert_eq!(s.blocks.first(), Some(&h.to_string()));
    assert_eq!(s.blocks.last(), Some(&entry.to_string()));
    assert!(
        s.blocks[1..s.blocks.len() - 1]
            .iter()
            .all(|b| shards.iter().any(|c| c.to_string() == *b))
    );

    // Errors before any byte: a bad CID is 400; a path that does not exist is 404.
    let got = curl(&format!("{gw}/ipfs/bafy-nope?format=car"), &[]).await;
    assert_eq!(got.status, 400);
    let got = curl(&format!("{gw}/ipfs/{site}/absent?format=car"), &[]).await;
    assert_eq!(got.status, 404);
    let _ = missing;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_timeouts_and_no_fetch() {
    // RetrievalTimeout of 2 s and two slots: two requests for a block nobody has hold both
    // slots (the gauge says so), a third gets 429, then both end in 504.
    let node = node().await;
    let metrics = GatewayMetrics::default();
    let mut config = GatewayConfig::default();
    config.retrieval_timeout = Some(Duration::from_secs(2));
    config.max_concurrent_requests = Some(2);
    let gw = serve(&node, config, metrics.clone()).await;
    let missing = Cid::new_v1(
        0x55,
        cid::multihash::Multihash::wrap(0x12, &[9; 32]).unwrap(),
    );
    let url = format!("{gw}/ipfs/{missing}");
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { curl(&url, &[]).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    while metrics_gauge(&metrics) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the two requests never arrived"
        );
        ticks.tick().await;
    }
    let got = curl(&url, &[]).await;
    assert_eq!(got.status, 429, "{}", got.text());
    assert_eq!(got.header("retry-after"), "60");
    assert_eq!(got.header("cache-control"), "no-store");
    for w in waiting {
        let got = w.await.unwrap();
        assert_eq!(got.status, 504, "{}", got.text());
    }
    assert_eq!(metrics.timeouts_with(504, false), 2);
    assert_eq!(metrics.responses_with(429), 1);

    // NoFetch: a missing block is 404 at once; DeserializedResponses=false: only raw and CAR.
    let mut config = GatewayConfig::default();
    config.no_fetch = true;
    config.deserialized_responses = false;
    let gw = serve(&node, config, GatewayMetrics::default()).await;
    let got = curl(&format!("{gw}/ipfs/{missing}?format=raw"), &[]).await;
    assert_eq!(got.status, 404, "{}", got.text());
    let got = curl(&format!("{gw}/ipfs/{missing}?format=car"), &[]).await;
    assert_eq!(got.status, 404, "{}", got.text());
    // only-if-cached: 412 for what is not here, whatever NoFetch says.
    let got = curl(
        &format!("{gw}/ipfs/{missing}?format=raw"),
        &["-H", "Cache-Control: only-if-cached"],
    )
    .await;
    assert_eq!(got.status, 412, "{}", got.text());
    let cids = add(&node, &[("f.txt", b"local".to_vec())], None).await;
    let f = cids["f.txt"];
    let got = curl(&format!("{gw}/ipfs/{f}"), &[]).await;
    assert_eq!(got.status, 406, "{}", got.text());
    let got = curl(&format!("{gw}/ipfs/{f}?format=raw"), &[]).await;
    assert_eq!((got.status, got.text().as_str()), (200, "local"));
    let got = curl(
        &format!("{gw}/ipfs/{f}?format=raw"),
        &["-H", "Cache-Control: only-if-cached"],
    )
    .await;
    assert_eq!(got.status, 200);
}

/// The in-flight gauge, read through the text exposition as a scraper would.
fn metrics_gauge(metrics: &GatewayMetrics) -> i64 {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ipfs_http_gw_concurrent_requests "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_over_bitswap_and_serves_verified_fetch() {
    // The content is on `a`; the gateway runs on `b`, which fetches it over Bitswap.
    let (a, b) = (node().await, node().await);
    let ten = content(10 << 20, 3);
    let cids = add(
        &a,
        &[
            ("ten.bin", ten.clone()),
            (
                "dir/index.html",
                b"<!DOCTYPE html><p>dir index</p>".to_vec(),
            ),
            ("dir/notes/a.txt", b"note a".to_vec()),
            ("dir/notes/b.txt", content(300_000, 4)),
        ],
        None,
    )
    .await;
    let addr = a.listen_addrs().await.unwrap().into_iter().next().unwrap();
    let addr: Multiaddr = format!("{addr}/p2p/{}", a.peer_id()).parse().unwrap();
    b.connect(addr).await.unwrap();
    let gw = serve(&b, GatewayConfig::default(), GatewayMetrics::default()).await;
    let got = curl(&format!("{gw}/ipfs/{}/notes/a.txt", cids["dir"]), &[]).await;
    assert_eq!((got.status, got.text().as_str()), (200, "note a"));

    // @helia/verified-fetch with only this gateway: it fetches raw blocks and checks each.
    let ten_cid = cids["ten.bin"];
    let dir = cids["dir"];
    let urls = [
        format!("ipfs://{ten_cid}"),
        format!("ipfs://{dir}/"),
        format!("ipfs://{dir}/notes/a.txt"),
        format!("ipfs://{dir}/notes/b.txt"),
    ];
    node_modules();
    let out = tokio::process::Command::new("node")
        .arg(js_dir().join("verified.mjs"))
        .arg(&gw)
        .args(&urls)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verified-fetch failed ({}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want = [
        (sha256(&ten), ten.len()),
        (sha256(b"<!DOCTYPE html><p>dir index</p>"), 31),
        (sha256(b"note a"), 6),
        (sha256(&content(300_000, 4)), 300_000),
    ];
    for (line, (sha, len)) in lines.iter().zip(want) {
        assert_eq!(line["status"], 200, "{line}");
        assert_eq!(line["sha256"], sha.as_str(), "{line}");
        assert_eq!(line["bytes"], len, "{line}");
    }
    assert_eq!(lines.len(), 4);
}
