//! A real node with its RPC on 127.0.0.1 port 0, and a small HTTP client that sees status,
//! headers, body and trailers.
#![allow(dead_code)]

pub mod ws;

use std::collections::BTreeMap;

use bytes::Bytes;
use cairn_node_core::{Config, Node, Profile};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A running node and its API.
pub struct Api {
    pub node: Node,
    pub base: String,
    pub port: u16,
    pub repo: tempfile::TempDir,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub trailers: Option<hyper::HeaderMap>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn stream_error(&self) -> Option<String> {
        self.trailers
            .as_ref()?
            .get("x-stream-error")
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// Starts a node (from a fresh repo with the test profile, pubsub on) and its API.
pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Api {
    start_full(edit, None).await
}

/// [`start_with`], with the log channel the event stream's `{"log":…}` reads.
pub async fn start_full(
    edit: impl FnOnce(&mut Config),
    logs: Option<cairn_node_core::LogBus>,
) -> Api {
    let repo = tempfile::tempdir().unwrap();
    let mut config = cairn_node_core::Repo::init(repo.path(), &[Profile::Test]).unwrap();
    config.pubsub.enabled = Some(true);
    edit(&mut config);
    cairn_node_core::repo::write_config(repo.path(), &config).unwrap();
    let node = Node::builder().repo(repo.path()).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut builder = cairn_rpc::ApiBuilder::new(node.clone(), config)
        .repo_path(repo.path())
        .port(port);
    if let Some(logs) = logs {
        builder = builder.log_bus(logs);
    }
    let router = builder.build();
    tokio::spawn(cairn_rpc::serve(listener, router, node.shutdown_token()));
    let client = Client::builder(TokioExecutor::new()).build_http();
    Api {
        node,
        base: format!("http://127.0.0.1:{port}"),
        port,
        repo,
        client,
    }
}

pub async fn start() -> Api {
    start_with(|_| {}).await
}

impl Api {
    /// Sends a request with any method, headers and body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Answer {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .client
            .request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let collected = resp.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        Answer {
            status,
            headers,
            body: collected.to_bytes(),
            trailers,
        }
    }

    /// POST with no body.
    pub async fn post(&self, path: &str) -> Answer {
        self.send("POST", path, &[], Bytes::new()).await
    }

    /// POST with multipart file parts, as Kubo clients send them.
    pub async fn post_files(&self, path: &str, files: &[&[u8]]) -> Answer {
        let boundary = "------------------------cairntestboundary";
        let mut body = Vec::new();
        for f in files {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(f);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let ct = format!("multipart/form-data; boundary={boundary}");
        self.send("POST", path, &[("content-type", &ct)], Bytes::from(body))
            .await
    }
}

/// Kubo's error JSON.
pub fn assert_kubo_error(a: &Answer, status: u16, contains: &str) {
    assert_eq!(a.status, status, "{}", a.text());
    let v = a.json();
    assert_eq!(v["Type"], "error", "{v}");
    assert!(v["Message"].as_str().unwrap().contains(contains), "{v}");
    let _: BTreeMap<String, serde_json::Value> = serde_json::from_value(v).unwrap();
}
