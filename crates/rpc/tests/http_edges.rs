//! Issue 12 item 8: HTTP edges Go's server (and so Kubo) handles, over raw TCP so the request
//! bytes are exactly what the reported clients send.
//!
//! - A query string over hyper's 64 KiB URI limit (a 70,000-byte `arg`; `arg=<cid>` 2,000 times)
//!   gets the command's own answer, not a bare 414; Go reads up to 1 MiB of request head, so a
//!   head over that gets 431 as from Go.
//! - Long requests stay in step with keep-alive and pipelined requests after them, chunked
//!   bodies included.
//! - An HTTP/1.0 request whose client half-closes (`shutdown(SHUT_WR)`) is always answered.

mod common;

use common::start;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One parsed HTTP response.
#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn find(buf: &[u8], needle: &[u8]) -> Option<usize> {
    buf.windows(needle.len()).position(|w| w == needle)
}

/// Splits a byte stream holding whole responses into them (Content-Length or chunked bodies).
fn parse_responses(mut raw: &[u8]) -> Vec<Resp> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let end = find(raw, b"\r\n\r\n").unwrap_or_else(|| panic!("cut head: {raw:?}"));
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let lower = head.to_ascii_lowercase();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        raw = &raw[end + 4..];
        let mut body = Vec::new();
        if lower.contains("transfer-encoding: chunked") {
            loop {
                let nl = find(raw, b"\r\n").unwrap();
                let size_text = std::str::from_utf8(&raw[..nl]).unwrap();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap(), 16).unwrap();
                raw = &raw[nl + 2..];
                if size == 0 {
                    // Trailers, if any, up to the empty line.
                    let end = if raw.starts_with(b"\r\n") {
                        2
                    } else {
                        find(raw, b"\r\n\r\n").unwrap() + 4
                    };
                    raw = &raw[end..];
                    break;
                }
                body.extend_from_slice(&raw[..size]);
                raw = &raw[size + 2..];
            }
        } else if let Some(len) = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().unwrap())
        {
            body.extend_from_slice(&raw[..len]);
            raw = &raw[len..];
        } else {
            body.extend_from_slice(raw);
            raw = &[];
        }
        out.push(Resp { status, head, body });
    }
    out
}

/// Sends `request` bytes on a fresh connection and reads every response until the server
/// closes (the last request says `Connection: close`, or is HTTP/1.0); with `half_close` the
/// client also shuts its sending side after writing.
async fn exchange_with(port: u16, request: &[u8], half_close: bool) -> Vec<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request).await.unwrap();
    if half_close {
        s.shutdown().await.unwrap();
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    parse_responses(&raw)
}

/// [`exchange_with`] without the half-close.
async fn exchange(port: u16, request: &[u8]) -> Vec<Resp> {
    exchange_with(port, request, false).await
}

/// A `Connection: close` request (unless `keep_alive`).
fn request(path_and_query: &str, extra: &str, body: &[u8], keep_alive: bool) -> Vec<u8> {
    let close = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    let mut r = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\n{close}{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn post(path_and_query: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    request(path_and_query, extra, body, false)
}

fn multipart(files: &[Vec<u8>]) -> (String, Vec<u8>) {
    let boundary = "edgeboundary";
    let mut body = Vec::new();
    for f in files {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(f);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_64_kib_gets_the_commands_answer() {
    let api = start().await;
    // A 70,000-byte `arg`: Kubo's error for a bad CID (as for a short bad one), not 414.
    let long_arg = "a".repeat(70_000);
    let short = exchange(api.port, &post("/api/v0/block/stat?arg=aaaa", "", b"")).await;
    let long = exchange(
        api.port,
        &post(&format!("/api/v0/block/stat?arg={long_arg}"), "", b""),
    )
    .await;
    assert_eq!(long.len(), 1);
    assert_eq!(long[0].status, short[0].status, "{}", long[0].head);
    assert_ne!(long[0].status, 414);
    assert_eq!(long[0].json()["Type"], "error");
    assert!(
        long[0].head.contains("application/json"),
        "{}",
        long[0].head
    );

    // 2,000 blocks, then `arg=<cid>` 2,000 times (about 128 KB of query) to remove them all.
    let files: Vec<Vec<u8>> = (0..2000)
        .map(|i| format!("edge {i}").into_bytes())
        .collect();
    let (ct, body) = multipart(&files);
    let put = exchange(
        api.port,
        &post(
            "/api/v0/block/put",
            &format!("Content-Type: {ct}\r\n"),
            &body,
        ),
    )
    .await;
    let cids: Vec<String> = put[0]
        .lines()
        .iter()
        .map(|v| v["Key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cids.len(), 2000);
    let query: Vec<String> = cids.iter().map(|c| format!("arg={c}")).collect();
    let query = query.join("&");
    assert!(query.len() > 65_535);
    let rm = exchange(
        api.port,
        &post(&format!("/api/v0/block/rm?{query}"), "", b""),
    )
    .await;
    assert_eq!(rm[0].status, 200, "{}", rm[0].text());
    let removed: Vec<String> = rm[0]
        .lines()
        .iter()
        .map(|v| {
            assert!(v.get("Error").is_none(), "{v}");
            v["Hash"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(removed, cids);

    // Over Go's 1 MiB of head: 431, as Go answers.
    let huge = exchange(
        api.port,
        &post(
            &format!("/api/v0/block/stat?arg={}", "a".repeat(1_100_000)),
            "",
            b"",
        ),
    )
    .await;
    assert_eq!(huge[0].status, 431);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_requests_stay_in_step_with_keep_alive_and_chunked_bodies() {
    let api = start().await;
    let pad = "p".repeat(70_000);
    let (ct, body) = multipart(&[b"pipelined".to_vec()]);
    // 1: a long query (an unknown option, which Kubo ignores) with a chunked body.
    let mut stream =
        format!("POST /api/v0/block/put?pad={pad} HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for piece in body.chunks(7) {
        stream.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
        stream.extend_from_slice(piece);
        stream.extend_from_slice(b"\r\n");
    }
    stream.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    // 2: a long query with a Content-Length body. 3: a short request.
    let cid =
        cairn_blockstore::Block::from_data(cairn_blockstore::codec::RAW, b"pipelined".to_vec())
            .unwrap()
            .cid()
            .to_string();
    stream.extend(request(
        &format!("/api/v0/block/stat?arg={cid}&pad={pad}"),
        "",
        b"ignored",
        true,
    ));
    stream.extend(post("/api/v0/version", "", b""));
    let answers = exchange(api.port, &stream).await;
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0].status, 200, "{}", answers[0].text());
    assert_eq!(answers[0].lines()[0]["Key"], cid.as_str());
    assert_eq!(answers[1].status, 200, "{}", answers[1].text());
    assert_eq!(answers[1].json()["Key"], cid.as_str());
    assert_eq!(answers[1].json()["Size"], 9);
    assert!(answers[2].json()["Version"].is_string());
}

/// An HTTP/1.0 request, then `shutdown(SHUT_WR)`: the answer must always come.
async fn half_closed_version(port: u16) -> Resp {
    let mut answers = exchange_with(
        port,
        b"POST /api/v0/version HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
        true,
    )
    .await;
    assert_eq!(answers.len(), 1, "no answer to a half-closed request");
    answers.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closed_http_1_0_requests_are_always_answered() {
    let api = start().await;
    // Idle: one at a time (the report saw about 1 in 300 lost).
    for _ in 0..600 {
        let r = half_closed_version(api.port).await;
        assert_eq!(r.status, 200);
        assert!(r.json()["Version"].is_string());
    }
    // Under load: many at once (the report saw 777 of 3,815 lost).
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let port = api.port;
            tokio::spawn(async move {
                for _ in 0..60 {
                    let r = half_closed_version(port).await;
                    assert_eq!(r.status, 200);
                    assert!(r.json()["Version"].is_string());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
