//! Kubo's security model over HTTP: `API.Authorizations` on every route (shutdown included), and
//! the Origin/Referer/User-Agent checks that keep browsers from driving the API cross-site.

mod common;

use std::collections::BTreeMap;

use cairn_node_core::config::Authorization;
use cairn_rpc::security::ACCESS_DENIED;
use common::start_with;

fn auth(secret: &str, paths: &[&str]) -> Authorization {
    Authorization {
        auth_secret: secret.into(),
        allowed_paths: paths.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn authorizations_guard_every_route() {
    let api = start_with(|c| {
        c.api.authorizations = BTreeMap::from([
            ("alice".to_string(), auth("bearer:s3cret", &["/api/v0"])),
            ("bob".to_string(), auth("basic:bob:pw", &["/api/v0/id"])),
        ]);
    })
    .await;
    let alice = [("authorization", "Bearer s3cret")];
    let bob = [("authorization", "Basic Ym9iOnB3")];
    let wrong = [("authorization", "Bearer nope")];
    for command in cairn_rpc::COMMANDS {
        let path = format!("/api/v0/{command}");
        for (who, headers) in [("nobody", &[][..]), ("wrong token", &wrong[..])] {
            let a = api.send("POST", &path, headers, Default::default()).await;
            assert_eq!(
                (a.status, a.text().as_str()),
                (403, ACCESS_DENIED),
                "{who} on {path}"
            );
        }
        // bob may call only /api/v0/id (and version, which every valid user may call).
        let b = api.send("POST", &path, &bob, Default::default()).await;
        if *command == "id" || *command == "version" {
            assert_ne!(b.status, 403, "bob on {path}");
        } else {
            assert_eq!(
                (b.status, b.text().as_str()),
                (403, ACCESS_DENIED),
                "bob on {path}"
            );
        }
        // alice may call everything; the route exists (no 404) and passes auth (no 403).
        if *command != "shutdown" && *command != "pubsub/sub" {
            let a = api.send("POST", &path, &alice, Default::default()).await;
            assert!(
                a.status != 403 && a.status != 404,
                "alice on {path}: {} {}",
                a.status,
                a.text()
            );
        }
    }
    // Even an OPTIONS preflight needs a valid header, as in Kubo.
    assert_eq!(
        api.send("OPTIONS", "/api/v0/id", &[], Default::default())
            .await
            .status,
        403
    );
    // Metrics and health are not behind authorization (Kubo's /debug/* is not either).
    assert_eq!(
        api.send("GET", "/health", &[], Default::default())
            .await
            .status,
        200
    );
    // Shutdown, last: refused without the header, obeyed with it.
    assert_eq!(api.post("/api/v0/shutdown").await.status, 403);
    assert!(api.node.is_running());
    assert_eq!(
        api.send("POST", "/api/v0/shutdown", &alice, Default::default())
            .await
            .status,
        200
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), api.node.stopped())
        .await
        .unwrap();
}

#[tokio::test]
async fn browsers_cannot_drive_the_api_cross_site() {
    let api = start_with(|c| {
        c.api.http_headers = BTreeMap::from([
            (
                "Access-Control-Allow-Origin".to_string(),
                vec!["https://webui.example".to_string()],
            ),
            ("X-Custom".to_string(), vec!["yes".to_string()]),
        ]);
    })
    .await;
    let post = |headers: Vec<(&'static str, String)>| {
        let api = &api;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            api.send("POST", "/api/v0/id", &h, Default::default()).await
        }
    };
    let evil = post(vec![("origin", "https://evil.example".into())]).await;
    assert_eq!(
        (evil.status, evil.text().as_str()),
        (403, "403 - Forbidden\n")
    );
    let evil_referer = post(vec![("referer", "https://evil.example/page".into())]).await;
    assert_eq!(evil_referer.status, 403);
    let browser = post(vec![("user-agent", "Mozilla/5.0 (X11)".into())]).await;
    assert_eq!(browser.status, 403, "a browser without Origin or Referer");
    let electron = post(vec![("user-agent", "Mozilla/5.0 Electron/30".into())]).await;
    assert_eq!(electron.status, 200);
    let local = post(vec![("origin", format!("http://127.0.0.1:{}", api.port))]).await;
    assert_eq!(local.status, 200, "the API's own origin is allowed");
    let allowed = post(vec![("origin", "https://webui.example".into())]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://webui.example")
    );
    assert_eq!(
        allowed.header("x-custom"),
        Some("yes"),
        "API.HTTPHeaders are copied"
    );
    let curl = post(vec![("user-agent", "curl/8".into())]).await;
    assert_eq!(curl.status, 200);
}
