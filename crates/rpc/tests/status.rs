//! The status page (`GET /cairn/status`) and its snapshot command (`POST /api/v0/cairn/status`)
//! on a real node's RPC: the page and its assets are served with a strict CSP and name no URL
//! outside the listener; `API.Authorizations` and the Origin/Referer rules apply to them as to
//! the RPC; the snapshot carries the node's id, peers, repo, pins, Bitswap and services.
//! (The page in a browser: `tests/status_page.rs` at the workspace root.)

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use cairn_node_core::config::Authorization;
use cairn_node_core::{Node, Profile};
use cairn_rpc::security::ACCESS_DENIED;
use common::{start, start_with};

/// The page and the assets it loads.
const FILES: &[(&str, &str)] = &[
    ("/cairn/status", "text/html"),
    ("/cairn/status/status.js", "text/javascript"),
    ("/cairn/status/status.css", "text/css"),
    ("/cairn/status/icon.svg", "image/svg+xml"),
];

/// Every `http(s)://` or protocol-relative reference in `text`, except XML namespace names.
fn external_urls(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("//") {
        let before = &text[..i];
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        let line = &text[line_start..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        let scheme_url = before.ends_with("http:") || before.ends_with("https:");
        let protocol_relative = ['"', '\'', '(', '='].iter().any(|c| before.ends_with(*c));
        if (scheme_url || protocol_relative) && !line.contains("xmlns") {
            found.push(line.trim().to_string());
        }
    }
    found
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_csp_and_only_its_own_assets() {
    let api = start().await;
    for (path, content_type) in FILES {
        let a = api.send("GET", path, &[], Bytes::new()).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert!(
            a.header("content-type").unwrap().starts_with(content_type),
            "{path}: {:?}",
            a.header("content-type")
        );
        let csp = a.header("content-security-policy").expect("a CSP");
        assert_eq!(csp, cairn_rpc::status::CSP);
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("x-frame-options"), Some("DENY"));
        assert_eq!(external_urls(&a.text()), Vec::<String>::new(), "{path}");
        let head = api.send("HEAD", path, &[], Bytes::new()).await;
        assert_eq!(head.status, 200, "HEAD {path}");
    }
    let html = api
        .send("GET", "/cairn/status", &[], Bytes::new())
        .await
        .text();
    for (asset, _) in &FILES[1..] {
        assert!(html.contains(asset), "the page loads {asset}");
    }
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "nothing inline"
    );
    assert_eq!(
        api.send("GET", "/cairn/status/nope.js", &[], Bytes::new())
            .await
            .status,
        404
    );
    let post = api.send("POST", "/cairn/status", &[], Bytes::new()).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn external_urls_are_found() {
    assert_eq!(
        external_urls("<script src=\"https://cdn.example/x.js\">"),
        ["<script src=\"https://cdn.example/x.js\">"]
    );
    assert_eq!(
        external_urls("@import url(//fonts.example/f.css);").len(),
        1
    );
    assert!(external_urls("// a comment\nconst a = b; // another").is_empty());
    assert!(external_urls("<svg xmlns=\"http://www.w3.org/2000/svg\">").is_empty());
}

#[tokio::test]
async fn authorizations_guard_the_page_as_every_route() {
    let api = start_with(|c| {
        c.api.authorizations = BTreeMap::from([
            (
                "ops".to_string(),
                Authorization {
                    auth_secret: "bearer:s3cret".into(),
                    allowed_paths: vec!["/cairn/status".into(), "/api/v0".into()],
                    ..Default::default()
                },
            ),
            (
                "reader".to_string(),
                Authorization {
                    auth_secret: "bearer:r34d".into(),
                    allowed_paths: vec!["/api/v0/id".into()],
                    ..Default::default()
                },
            ),
        ]);
    })
    .await;
    for (path, _) in FILES {
        for (who, headers) in [
            ("nobody", &[][..]),
            ("a wrong token", &[("authorization", "Bearer nope")][..]),
            (
                "a token without the path",
                &[("authorization", "Bearer r34d")][..],
            ),
        ] {
            let a = api.send("GET", path, headers, Bytes::new()).await;
            assert_eq!(
                (a.status, a.text().as_str()),
                (403, ACCESS_DENIED),
                "{who} on {path}"
            );
        }
        let ok = [("authorization", "Bearer s3cret")];
        let a = api.send("GET", path, &ok, Bytes::new()).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
    }
    // The snapshot command is an RPC command like the others.
    let denied = api.post("/api/v0/cairn/status").await;
    assert_eq!(
        (denied.status, denied.text().as_str()),
        (403, ACCESS_DENIED)
    );
    let a = api
        .send(
            "POST",
            "/api/v0/cairn/status",
            &[("authorization", "Bearer s3cret")],
            Bytes::new(),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
}

#[tokio::test]
async fn origin_and_referer_rules_apply_to_the_page_and_its_data() {
    let api = start().await;
    let own = api.base.clone();
    let page = format!("{own}/cairn/status");
    let browser = "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0";
    // Refused: another site's Origin or Referer, on the page and on its data.
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![("referer", "http://evil.example/page")],
        vec![("origin", "http://127.0.0.1:1"), ("user-agent", browser)],
        // A link from elsewhere whose referrer was stripped.
        vec![("user-agent", browser), ("sec-fetch-site", "cross-site")],
    ] {
        let a = api
            .send("GET", "/cairn/status", &headers, Bytes::new())
            .await;
        assert_eq!(
            (a.status, a.text().as_str()),
            (403, "403 - Forbidden\n"),
            "{headers:?}"
        );
        let js = api
            .send("GET", "/cairn/status/status.js", &headers, Bytes::new())
            .await;
        assert_eq!(js.status, 403, "{headers:?}");
    }
    let a = api
        .send(
            "POST",
            "/api/v0/cairn/status",
            &[("origin", "http://evil.example")],
            Bytes::new(),
        )
        .await;
    assert_eq!(a.status, 403);
    // Allowed: the address bar (a browser with neither header), the page's own assets and data
    // requests (its own origin, as Chromium sends them), and non-browser clients.
    for headers in [
        vec![("user-agent", browser)],
        vec![("user-agent", browser), ("sec-fetch-site", "none")],
        vec![("user-agent", browser), ("referer", page.as_str())],
        vec![("user-agent", browser), ("origin", own.as_str())],
        vec![("user-agent", "curl/8.5.0")],
    ] {
        let a = api
            .send("GET", "/cairn/status", &headers, Bytes::new())
            .await;
        assert_eq!(a.status, 200, "{headers:?}: {}", a.text());
    }
    let a = api
        .send(
            "POST",
            "/api/v0/cairn/status",
            &[
                ("user-agent", browser),
                ("origin", own.as_str()),
                ("referer", page.as_str()),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("access-control-allow-origin"), Some(own.as_str()));
}

#[tokio::test]
async fn the_snapshot_shows_the_node() {
    let api = start().await;
    let peer = Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .build()
        .await
        .unwrap();
    let addr = format!(
        "{}/p2p/{}",
        peer.listen_addrs().await.unwrap()[0],
        peer.peer_id()
    );
    api.node.connect(addr.parse().unwrap()).await.unwrap();
    let put = api
        .post_files("/api/v0/block/put?pin=true", &[b"status"])
        .await;
    assert_eq!(put.status, 200, "{}", put.text());

    let s = api.post("/api/v0/cairn/status").await.json();
    assert_eq!(s["ID"], api.node.peer_id().to_base58());
    assert!(s["AgentVersion"].as_str().unwrap().starts_with("cairn/"));
    assert!(!s["Addresses"].as_array().unwrap().is_empty(), "{s}");
    let peers = s["Peers"].as_array().unwrap();
    assert_eq!(peers.len(), 1, "{s}");
    assert_eq!(peers[0]["Peer"], peer.peer_id().to_base58());
    assert_eq!(peers[0]["Direction"], "outbound");
    assert!(
        peers[0]["Addr"]
            .as_str()
            .unwrap()
            .starts_with("/ip4/127.0.0.1/tcp/")
    );
    assert!(peers[0]["ConnectedSinceMs"].as_u64().unwrap() > 0);
    assert!(s["Bootstrap"]["Phase"].is_string(), "{s}");
    assert!(s["Bandwidth"]["TotalIn"].is_u64() && s["Bandwidth"]["TotalOut"].is_u64());
    assert_eq!(s["Repo"]["NumObjects"], 1, "{s}");
    assert!(s["Repo"]["RepoSize"].as_u64().unwrap() > 0);
    assert_eq!(s["Repo"]["StorageMax"], 10_000_000_000u64);
    assert_eq!(s["Pins"]["Recursive"], 1, "{s}");
    assert_eq!(s["Pins"]["Direct"], 0);
    for key in [
        "BlocksReceived",
        "DataReceived",
        "BlocksSent",
        "DataSent",
        "WantlistLength",
    ] {
        assert!(s["Bitswap"][key].is_u64(), "{key}: {s}");
    }
    // An embedder's RPC has no supervised services: the node is ok and the list is empty.
    assert_eq!(s["Services"]["Status"], "ok");
    assert!(s["Services"]["Services"].as_array().unwrap().is_empty());
    assert!(s["UptimeMs"].is_u64());
}
