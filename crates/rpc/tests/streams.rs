//! `cat` over several paths with Kubo's joined `offset`/`length`, and no clean truncation: a
//! stream that fails after output began must fail for every client — the `X-Stream-Error`
//! trailer for a client that sent `TE: trailers`, an aborted response (no final chunk) for any
//! other: a raw TCP client, hyper, curl and Python's urllib.

mod common;

use std::io::{Read, Write};

use bytes::Bytes;
use common::{Api, assert_kubo_error};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Adds one file; its root CID.
async fn add(api: &Api, query: &str, data: &[u8]) -> String {
    let lines = api
        .post_files(&format!("/api/v0/add?{query}"), &[data])
        .await
        .lines();
    lines.last().unwrap()["Hash"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn cat_applies_offset_and_length_to_the_joined_files() {
    let api = common::start().await;
    let a = add(&api, "", &[b'A'; 10]).await;
    let b = add(&api, "", &[b'B'; 5]).await;
    let whole = api.post(&format!("/api/v0/cat?arg={a}&arg={b}")).await;
    assert_eq!(whole.text(), "AAAAAAAAAABBBBB");
    assert_eq!(whole.header("x-content-length"), Some("15"));
    assert_eq!(whole.header("x-stream-output"), Some("1"));
    for (query, want) in [
        ("offset=12", "BBB"),
        ("length=3", "AAA"),
        ("offset=8&length=4", "AABB"),
        ("o=10", "BBBBB"),
        ("offset=9&l=100", "ABBBBB"),
        ("offset=15", ""),
        ("offset=100", ""),
        ("length=0", ""),
    ] {
        let got = api
            .post(&format!("/api/v0/cat?arg={a}&arg={b}&{query}"))
            .await;
        assert_eq!(got.status, 200, "{query}: {}", got.text());
        assert_eq!(got.text(), want, "{query}");
        assert_eq!(
            got.header("x-content-length"),
            Some(want.len().to_string().as_str()),
            "{query}"
        );
        assert!(got.stream_error().is_none(), "{query}");
    }
    // The same path twice, and a multi-block file joined with a small one.
    let big: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let c = add(&api, "chunker=size-1024", &big).await;
    let got = api
        .post(&format!(
            "/api/v0/cat?arg={c}&arg={a}&arg={c}&offset=2990&length=30"
        ))
        .await;
    let mut want = big[2990..].to_vec();
    want.extend_from_slice(&[b'A'; 10]);
    want.extend_from_slice(&big[..10]);
    assert_eq!(got.body.as_ref(), want.as_slice());

    // Kubo refuses negative values with its own words (500, not a parse error).
    assert_kubo_error(
        &api.post(&format!("/api/v0/cat?arg={a}&length=-1")).await,
        500,
        "cannot specify negative length",
    );
    assert_kubo_error(
        &api.post(&format!("/api/v0/cat?arg={a}&offset=-1")).await,
        500,
        "cannot specify negative offset",
    );
    // Every path is resolved before output starts: a missing second file is an error status.
    let absent = "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR";
    assert_kubo_error(
        &api.post(&format!("/api/v0/cat?arg={a}&arg={absent}&offline=true"))
            .await,
        500,
        "not found locally",
    );
}

/// A node holding a 3-block file whose middle leaf is gone: `cat` of it offline sends the first
/// leaf, then fails. Returns the API and the file's root and first leaf's bytes.
async fn broken_file() -> (Api, String, Vec<u8>) {
    let api = common::start().await;
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 253) as u8).collect();
    let root = add(&api, "chunker=size-1024&cid-version=1", &data).await;
    let refs = api.post(&format!("/api/v0/refs?arg={root}")).await.lines();
    assert_eq!(refs.len(), 3, "{refs:?}");
    let middle = refs[1]["Ref"].as_str().unwrap().to_string();
    assert_eq!(
        api.post(&format!("/api/v0/pin/rm?arg={root}")).await.status,
        200
    );
    let rm = api
        .post(&format!("/api/v0/block/rm?arg={middle}"))
        .await
        .lines();
    assert!(rm[0].get("Error").is_none(), "{rm:?}");
    (api, root, data[..1024].to_vec())
}

/// A chunked body decoded: its data, and the trailer section if the body ended properly (with
/// the zero-length chunk); `None` if the connection closed first.
fn dechunk(mut body: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut data = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return (data, None);
        };
        let size_text = std::str::from_utf8(&body[..eol]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[eol + 2..];
        if size == 0 {
            // The trailer section ends with an empty line.
            return match body.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(end) => (data, Some(String::from_utf8_lossy(&body[..end]).into())),
                None if body == b"\r\n" => (data, Some(String::new())),
                None => (data, None),
            };
        }
        if body.len() < size + 2 {
            data.extend_from_slice(&body[..body.len().min(size)]);
            return (data, None);
        }
        data.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// One request over a fresh TCP connection; everything the server sent until it closed.
fn raw_request(port: u16, path: &str, extra_headers: &str) -> Vec<u8> {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        tcp,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n{extra_headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    // A reset after the data is also an ending; what was received is kept.
    let _ = tcp.read_to_end(&mut out);
    out
}

/// Splits a raw response into its head and body.
fn split_response(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&raw[..end]).to_lowercase(),
        raw[end + 4..].to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_after_output_began_fails_every_client() {
    let (api, root, first_leaf) = broken_file().await;
    let cat = format!("/api/v0/cat?arg={root}&offline=true");

    // A client without `TE: trailers`: the response is aborted before the final chunk.
    let port = api.port;
    let path = cat.clone();
    let raw = tokio::task::spawn_blocking(move || raw_request(port, &path, ""))
        .await
        .unwrap();
    let (head, body) = split_response(&raw);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("trailer: x-stream-error"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let (data, end) = dechunk(&body);
    assert_eq!(end, None, "the body must not end cleanly");
    assert!(
        first_leaf.starts_with(&data) && data.len() < 3000,
        "a prefix of the file, got {} bytes",
        data.len()
    );

    // A client with `TE: trailers` gets the body's end with Kubo's trailer.
    let port = api.port;
    let path = cat.clone();
    let raw = tokio::task::spawn_blocking(move || raw_request(port, &path, "TE: trailers\r\n"))
        .await
        .unwrap();
    let (_, body) = split_response(&raw);
    let (data, end) = dechunk(&body);
    assert_eq!(data, first_leaf);
    let trailer = end.expect("a complete body with trailers");
    assert!(
        trailer.to_lowercase().starts_with("x-stream-error: ")
            && trailer.contains("not found locally"),
        "{trailer}"
    );
    let with_te = api
        .send("POST", &cat, &[("te", "trailers")], Bytes::new())
        .await;
    assert!(
        with_te
            .stream_error()
            .unwrap()
            .contains("not found locally"),
        "{with_te:?}"
    );

    // hyper's client without TE: reading the body fails. So does an NDJSON stream (`refs`).
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for path in [
        cat.clone(),
        format!("/api/v0/refs?arg={root}&recursive=true&offline=true"),
    ] {
        let req = hyper::Request::post(format!("{}{path}", api.base))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let read = resp.into_body().collect().await;
        assert!(read.is_err(), "{path}: the read must fail");
    }

    // curl exits non-zero (18: transfer closed with outstanding read data remaining).
    let url = format!("{}{cat}", api.base);
    let curl = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            std::process::Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-X", "POST", &url])
                .output()
        }
    })
    .await
    .unwrap();
    match curl {
        Ok(out) => assert!(
            !out.status.success(),
            "curl must fail: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("curl not run ({e}): skipped"),
    }

    // Python's `requests` raises (ChunkedEncodingError), where it is installed.
    let requests = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            std::process::Command::new("python3")
                .args([
                    "-c",
                    "import sys, importlib.util\n\
                     if importlib.util.find_spec('requests') is None: sys.exit(3)\n\
                     import requests\n\
                     requests.post(sys.argv[1]).content\n\
                     print('clean end')",
                    &url,
                ])
                .output()
        }
    })
    .await
    .unwrap();
    match requests {
        Ok(out) if out.status.code() == Some(3) => eprintln!("requests not installed: skipped"),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "requests must raise: {stderr}");
            assert!(stderr.contains("ChunkedEncodingError"), "{stderr}");
        }
        Err(e) => eprintln!("python3 not run ({e}): skipped"),
    }

    // Python's urllib raises (http.client.IncompleteRead).
    let python = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request\n\
                 r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], method='POST'))\n\
                 r.read()\n\
                 print('clean end')",
                &url,
            ])
            .output()
    })
    .await
    .unwrap();
    match python {
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "python must raise: {stderr}");
            assert!(stderr.contains("IncompleteRead"), "{stderr}");
        }
        Err(e) => eprintln!("python3 not run ({e}): skipped"),
    }

    // A stream that ends well still ends cleanly for a client without TE.
    let fine = api
        .post(&format!("/api/v0/cat?arg={root}&offline=true&length=1000"))
        .await;
    assert_eq!(fine.body.as_ref(), &first_leaf[..1000]);
    assert!(fine.stream_error().is_none());
}
