//! Requests per second for `POST /api/v0/block/get` of a 1 KiB block, beside a bare axum handler
//! that returns the same bytes, measured in the same run by the same load generator (keep-alive
//! HTTP/1.1 connections from a hyper client, on loopback).
//!
//! Run: `cargo bench --bench rpc_load` (release). `CAIRN_LOAD_SECONDS` (default 5) and
//! `CAIRN_LOAD_CONNECTIONS` (default 16) tune it. It prints both rates and their ratio.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::routing::post;
use bytes::Bytes;
use cairn::blockstore::{Block, codec::RAW};
use cairn::node::{Node, Profile};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Hammers `url` with POSTs from `connections` keep-alive clients for `seconds`; returns req/s.
async fn load(url: String, connections: u64, seconds: u64, expect: usize) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, done) = (url.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http::<Empty<Bytes>>();
            while Instant::now() < deadline {
                let req = hyper::Request::post(&url)
                    .body(Empty::new())
                    .expect("request");
                let resp = client.request(req).await.expect("response");
                let body = resp.into_body().collect().await.expect("body").to_bytes();
                assert!(expect == 0 || body.len() == expect);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (seconds, connections) = (
            env("CAIRN_LOAD_SECONDS", 5),
            env("CAIRN_LOAD_CONNECTIONS", 16),
        );
        let data = Bytes::from(vec![0x5a; 1024]);

        // cairn: a node in memory with its RPC.
        let node = Node::builder()
            .profile(Profile::Test)
            .listen_addrs([])
            .build()
            .await?;
        let block = Block::from_data(RAW, data.clone())?;
        node.put_block(&block).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let config = cairn::node::Config::default();
        let router = cairn::rpc::ApiBuilder::new(node.clone(), config)
            .port(port)
            .build();
        tokio::spawn(cairn::rpc::serve(listener, router, node.shutdown_token()));

        // The baseline: axum returning the same bytes.
        let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let bare_port = bare.local_addr()?.port();
        let bytes = data.clone();
        let app = axum::Router::new().route("/block", post(move || async move { bytes.clone() }));
        tokio::spawn(async move { axum::serve(bare, app).await });

        // CAIRN_LOAD_COMMAND=version measures the RPC without the blockstore (for profiling).
        let (cairn_url, expect) = match std::env::var("CAIRN_LOAD_COMMAND").as_deref() {
            Ok("version") => (format!("http://127.0.0.1:{port}/api/v0/version"), 0),
            Ok("stat") => (
                format!(
                    "http://127.0.0.1:{port}/api/v0/block/stat?arg={}",
                    block.cid()
                ),
                0,
            ),
            _ => (
                format!(
                    "http://127.0.0.1:{port}/api/v0/block/get?arg={}",
                    block.cid()
                ),
                1024,
            ),
        };
        let bare_url = format!("http://127.0.0.1:{bare_port}/block");
        // Warm up both, then measure each in turn.
        load(cairn_url.clone(), connections, 1, expect).await?;
        load(bare_url.clone(), connections, 1, 1024).await?;
        // CAIRN_LOAD_ONLY=cairn skips the baseline (for profiling cairn alone).
        let only_cairn = std::env::var("CAIRN_LOAD_ONLY").is_ok_and(|v| v == "cairn");
        let bare_rps = if only_cairn {
            f64::NAN
        } else {
            load(bare_url, connections, seconds, 1024).await?
        };
        let cairn_rps = load(cairn_url, connections, seconds, expect).await?;
        println!("bare axum handler (same 1 KiB body): {bare_rps:.0} req/s");
        println!("cairn block/get of a 1 KiB block:   {cairn_rps:.0} req/s");
        println!(
            "ratio: {:.0}% ({connections} connections, {seconds} s each)",
            100.0 * cairn_rps / bare_rps
        );
        node.shutdown().await?;
        Ok(())
    })
}
