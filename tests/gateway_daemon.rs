//! The gateway as `cairn daemon` runs it: `Addresses.Gateway` with port 0 (the test profile's),
//! the `Gateway server listening on <multiaddr>` line Kubo prints, the `gateway` repo file,
//! a supervised service in `/health?verbose`, metrics on the RPC's `/debug/metrics/prometheus`,
//! content added through the RPC served over HTTP, `Gateway.*` config honoured, a malformed
//! `Gateway` section refused at start, and the file removed at shutdown.

mod support;

use std::time::{Duration, Instant};

use support::{Daemon, get, init_repo, ok, post};

#[test]
fn daemon_serves_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    init_repo(repo);
    // Kubo's keys: fetching off, extra response headers.
    ok(repo, &["config", "--json", "Gateway.NoFetch", "true"]);
    ok(
        repo,
        &[
            "config",
            "--json",
            "Gateway.HTTPHeaders",
            r#"{"X-Served-By":["cairn-test"]}"#,
        ],
    );
    let mut daemon = Daemon::start(repo);
    let gw = daemon
        .gateway
        .clone()
        .expect("Gateway server listening on ...");
    assert!(!gw.ends_with(":0"), "port 0 became a real port: {gw}");
    assert_eq!(
        std::fs::read_to_string(repo.join("gateway")).unwrap(),
        format!("http://{gw}")
    );

    // Content added through the RPC, read back through the gateway.
    let added = post(
        &daemon.api,
        "add?cid-version=1",
        Some(b"through the gateway\n"),
    )
    .unwrap();
    assert_eq!(added.status, 200, "{}", added.text());
    let v: serde_json::Value = serde_json::from_str(added.text().trim()).unwrap();
    let cid = v["Hash"].as_str().unwrap().to_string();
    let (answer, headers) = get(&gw, &format!("/ipfs/{cid}"), &[]).unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "through the gateway\n");
    assert!(
        headers.contains(&"x-served-by: cairn-test".to_string()),
        "{headers:?}"
    );
    assert!(headers.contains(&"content-type: text/plain; charset=utf-8".to_string()));
    // NoFetch: a block the node does not have is 404 at once, not a network wait.
    let started = Instant::now();
    let missing = support::cid_of(b"nobody has this");
    let (answer, _) = get(&gw, &format!("/ipfs/{missing}"), &[]).unwrap();
    assert_eq!(answer.status, 404, "{}", answer.text());
    assert!(started.elapsed() < Duration::from_secs(5));
    // The gateway never serves the RPC.
    let (answer, _) = get(&gw, "/api/v0/id", &[]).unwrap();
    assert_eq!(answer.status, 404);

    // A supervised service of its own, and Kubo's metric names on the RPC's metrics.
    let (health, _) = get(&daemon.api, "/health?verbose=true", &[]).unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(
        health
            .text()
            .contains(&format!("gateway /ip4/{}", gw.replace(':', "/tcp/"))),
        "{}",
        health.text()
    );
    let (metrics, _) = get(&daemon.api, "/debug/metrics/prometheus", &[]).unwrap();
    let text = metrics.text();
    assert!(
        text.contains("ipfs_http_gw_responses_total{code=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ipfs_http_gw_responses_total{code=\"404\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("cairn_gateway_response_bytes_total"),
        "{text}"
    );

    // Shutdown removes the gateway file with the api file.
    let down = post(&daemon.api, "shutdown", None).unwrap();
    assert_eq!(down.status, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    while daemon.alive() {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!repo.join("gateway").exists());
    assert!(!repo.join("api").exists());
}

#[test]
fn malformed_gateway_config_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    init_repo(repo);
    // The schema checks the shape (an object of string arrays); HTTP's rules for header names
    // are checked when the gateway is built, and stop the start.
    ok(
        repo,
        &[
            "config",
            "--json",
            "Gateway.HTTPHeaders",
            r#"{"bad name":["x"]}"#,
        ],
    );
    let out = support::cli(repo, &["daemon"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Gateway.HTTPHeaders"), "{stderr}");
    assert!(!repo.join("api").exists() && !repo.join("gateway").exists());
}
