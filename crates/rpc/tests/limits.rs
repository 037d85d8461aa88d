//! Issue 13: the limits every listener enforces (`Cairn.Limits`) and the audit log
//! (`Cairn.AuditLog`), on a real node and RPC served by `serve_with` as the daemon serves it.

use std::time::{Duration, Instant};

use cairn_node_core::{Config, Node, Profile};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Served {
    port: u16,
    repo: tempfile::TempDir,
    _node: Node,
}

async fn serve(edit: impl FnOnce(&mut Config)) -> Served {
    let repo = tempfile::tempdir().unwrap();
    let mut config = cairn_node_core::Repo::init(repo.path(), &[Profile::Test]).unwrap();
    edit(&mut config);
    cairn_node_core::repo::write_config(repo.path(), &config).unwrap();
    let node = Node::builder().repo(repo.path()).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (router, options) = cairn_rpc::ApiBuilder::new(node.clone(), config)
        .repo_path(repo.path())
        .port(port)
        .build_server()
        .unwrap();
    tokio::spawn(cairn_rpc::serve_with(
        listener,
        router,
        node.shutdown_token(),
        options,
    ));
    Served {
        port,
        repo,
        _node: node,
    }
}

fn cairn(section: Value) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.extra.insert("Cairn".into(), section);
    }
}

/// A raw request on a new connection; returns the socket after writing.
async fn send(port: u16, bytes: &[u8]) -> TcpStream {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    tcp
}

/// Reads until the peer closes (or `within` passes, which fails the test); returns what came.
async fn read_to_close(tcp: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(within, tcp.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "still open after {within:?}: {}",
                String::from_utf8_lossy(&out)
            )
        })
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

async fn limit_count(port: u16, limit: &str) -> u64 {
    let mut tcp = send(
        port,
        b"GET /debug/metrics/prometheus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = read_to_close(&mut tcp, Duration::from_secs(10)).await;
    let wanted =
        format!("cairn_http_limits_triggered_total{{listener=\"api\",limit=\"{limit}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&wanted))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_slow_head_and_an_idle_connection_are_closed() {
    let s = serve(cairn(json!({"Limits": {"HeaderReadTimeout": "1s"}}))).await;
    // Half a request head, then nothing (slowloris).
    let started = Instant::now();
    let mut tcp = send(s.port, b"POST /api/v0/id HTTP/1.1\r\nHost: x\r\n").await;
    read_to_close(&mut tcp, Duration::from_secs(5)).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A keep-alive connection that served a request and then sits idle.
    let mut tcp = send(s.port, b"POST /api/v0/version HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let started = Instant::now();
    let answer = read_to_close(&mut tcp, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(limit_count(s.port, "header_timeout").await >= 2);
}

#[tokio::test]
async fn a_stalled_upload_is_cut_and_a_flowing_one_is_not() {
    let s = serve(cairn(json!({"Limits": {"BodyReadTimeout": "1s"}}))).await;
    let part = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
                Content-Type: application/octet-stream\r\n\r\n";
    // A flowing upload: a chunk every 400 ms for 2.4 s, longer than the timeout in total.
    let head = "POST /api/v0/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut tcp = send(s.port, head.as_bytes()).await;
    let chunk = |data: &str| format!("{:x}\r\n{data}\r\n", data.len());
    tcp.write_all(chunk(part).as_bytes()).await.unwrap();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        tcp.write_all(chunk("slow but steady ").as_bytes())
            .await
            .unwrap();
    }
    tcp.write_all(chunk("\r\n--b--\r\n").as_bytes())
        .await
        .unwrap();
    tcp.write_all(b"0\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut tcp, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"Hash\""), "{answer}");
    assert_eq!(limit_count(s.port, "body_timeout").await, 0);
    // A stalled one: half the body, then silence. It fails and its connection closes.
    let head = format!(
        "POST /api/v0/add HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n\
         TE: trailers\r\nContent-Length: 100000\r\n\r\n{part}some bytes"
    );
    let started = Instant::now();
    let mut tcp = send(s.port, head.as_bytes()).await;
    let answer = read_to_close(&mut tcp, Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(answer.contains("stalled"), "{answer}");
    assert_eq!(limit_count(s.port, "body_timeout").await, 1);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_slot() {
    let s = serve(cairn(json!({"Limits": {"MaxConnections": 2}}))).await;
    // Two connections hold both slots (each mid-way through a request head).
    let first = send(s.port, b"POST /api/v0/id HTTP/1.1\r\n").await;
    let _second = send(s.port, b"POST /api/v0/id HTTP/1.1\r\n").await;
    // A third is accepted by the kernel but not served while the cap holds.
    let mut third = send(
        s.port,
        b"POST /api/v0/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut byte)).await;
    assert!(early.is_err(), "served beyond the cap");
    // One ends: the third is served.
    drop(first);
    let answer = read_to_close(&mut third, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(_second);
    assert!(limit_count(s.port, "connections").await >= 1);
}

#[tokio::test]
async fn the_audit_log_has_a_line_per_call_without_secrets() {
    let s = serve(|c: &mut Config| {
        c.api.authorizations.insert(
            "alice".into(),
            cairn_node_core::config::Authorization {
                auth_secret: "bearer:alices-s3cret".into(),
                allowed_paths: vec!["/api/v0".into()],
                ..Default::default()
            },
        );
        c.extra
            .insert("Cairn".into(), json!({"AuditLog": {"Path": "audit.log"}}));
    })
    .await;
    let call = |path: &'static str, auth: bool| async move {
        let auth = if auth {
            "Authorization: Bearer alices-s3cret\r\n"
        } else {
            ""
        };
        let mut tcp = send(
            s.port,
            format!("POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        read_to_close(&mut tcp, Duration::from_secs(10)).await
    };
    assert!(call("/api/v0/id", true).await.starts_with("HTTP/1.1 200"));
    assert!(
        call("/api/v0/version", false)
            .await
            .starts_with("HTTP/1.1 403")
    );
    let secret_set = "/api/v0/config?arg=API.Authorizations.bob.AuthSecret&arg=bearer:bobs-s3cret";
    call(secret_set, true).await;
    call("/api/v0/version?auth-token=t0ken-s3cret", true).await;
    let log = s.repo.path().join("audit.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines: Vec<Value> = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 4 {
            assert!(
                !text.contains("s3cret"),
                "a secret in the audit log: {text}"
            );
            break lines;
        }
        assert!(Instant::now() < deadline, "audit lines: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let id = &lines[0];
    assert_eq!(id["command"], "id");
    assert_eq!(id["user"], "alice");
    assert_eq!(id["status"], 200);
    assert!(id["bytes"].as_u64().unwrap() > 100, "{id}");
    assert!(id["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(id["time"].as_str().unwrap().ends_with('Z'));
    assert!(id["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(lines[1]["status"], 403);
    assert_eq!(lines[1]["user"], Value::Null);
    assert_eq!(lines[2]["command"], "config");
    assert_eq!(lines[2]["args"][1], "<redacted>");
    assert_eq!(lines[3]["options"]["auth-token"], "<redacted>");
}
