//! The daemon's status page in a real browser: a `cairn daemon` with a peer connected, its page
//! (`/cairn/status`) opened in headless Chromium by `tests/js/status_page.mjs` (puppeteer-core on
//! the system's `chromium`), then a second peer connected while the page is open.
//!
//! Asserted from what the browser reports: the page shows the node's peer id and the first peer
//! in its peers table; the second peer's row appears in the same document (no reload), after
//! the event stream delivered its `peer_connected`; and nothing went wrong on the way: no
//! console error (a CSP violation would be one), no page error, no failed request and no HTTP
//! error answer. The daemon watches an import folder holding one file: the page's "Watch
//! folder" card shows its import.
//!
//! Needs Debian's `chromium` (`$CHROMIUM`, default `/usr/bin/chromium`) and `npm ci` in
//! `tests/js` (`scripts/test.sh` installs both). Without them the test FAILS, unless
//! `CAIRN_SKIP_BROWSER=1` is set on purpose. `CAIRN_STATUS_SCREENSHOT=<file.png>` also saves a
//! full-page screenshot (how `docs/status-page.png` was made).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cairn::node::{Node, Profile};
use serde_json::Value;
use support::{Daemon, init_repo, ok, post};

/// How long the browser script may take for each step before the test gives up: a bound on a
/// wait for its report, not a pause.
const STEP: Duration = Duration::from_secs(90);

/// The browser and the script's packages, or why they are missing.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        return Err(format!(
            "{} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM",
            chromium.display()
        ));
    }
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !js.join("node_modules/puppeteer-core").is_dir() {
        return Err(format!(
            "{}/node_modules is missing: run `npm ci --ignore-scripts --prefix tests/js`",
            js.display()
        ));
    }
    Ok((chromium, js))
}

/// A node on 127.0.0.1 in this process, to connect to the daemon.
async fn peer() -> Node {
    Node::builder()
        .profile(Profile::Test)
        .listen_addrs(["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
        .build()
        .await
        .unwrap()
}

async fn dial_address(node: &Node) -> String {
    format!(
        "{}/p2p/{}",
        node.listen_addrs().await.unwrap()[0],
        node.peer_id()
    )
}

/// Puts blocks of a few hundred KiB on the daemon and has `peer` fetch each over Bitswap, until
/// `stop`.
async fn fetch_blocks(api: String, peer: Node, stop: tokio_util::sync::CancellationToken) {
    use rand::RngCore;
    let work = async {
        for round in 0u32.. {
            let mut data = vec![0u8; 64 << 10 << (round % 3)];
            rand::rng().fill_bytes(&mut data);
            let api = api.clone();
            let put = tokio::task::spawn_blocking(move || post(&api, "block/put", Some(&data)))
                .await
                .unwrap()
                .unwrap();
            let put: Value = serde_json::from_slice(&put.body).unwrap();
            let cid = put["Key"].as_str().unwrap().parse().unwrap();
            peer.get_block(&cid).await.unwrap();
        }
    };
    tokio::select! {
        () = work => {}
        () = stop.cancelled() => {}
    }
}

/// The next JSON line the script prints, failing the test with its report if it is an error.
fn next_report(lines: &mpsc::Receiver<String>, stderr: &support::Spawned) -> Value {
    loop {
        let line = lines.recv_timeout(STEP).unwrap_or_else(|_| {
            panic!(
                "no report from the browser script; its stderr:\n{}",
                stderr.stderr.lock().unwrap()
            )
        });
        let Ok(report) = serde_json::from_str::<Value>(&line) else {
            continue; // not a report (a warning from node itself)
        };
        assert_ne!(
            report["event"], "error",
            "the browser script failed: {report:#}"
        );
        return report;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_in_headless_chromium() {
    let (chromium, js) = match browser() {
        Ok(found) => found,
        Err(why) if std::env::var("CAIRN_SKIP_BROWSER").is_ok_and(|v| v == "1") => {
            eprintln!("skipped (CAIRN_SKIP_BROWSER=1): {why}");
            return;
        }
        Err(why) => panic!("{why} (CAIRN_SKIP_BROWSER=1 skips this test on purpose)"),
    };
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("dropped.txt"),
        b"imported from the watch folder",
    )
    .unwrap();
    let mut daemon_cmd = Command::new(support::BIN);
    daemon_cmd.args(["daemon", "--watch"]).arg(folder.path());
    let daemon = Daemon::start_cmd(repo.path(), daemon_cmd);
    // The file is imported before the page opens (the daemon's state, polled).
    let watched = loop {
        let ls: Value =
            serde_json::from_slice(&post(&daemon.api, "cairn/watch/ls", None).unwrap().body)
                .unwrap();
        if ls["Counts"]["Imported"] == 1 {
            break ls["Entries"][0]["Cid"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id: Value = serde_json::from_str(&ok(repo.path(), &["id"])).unwrap();
    let node_id = id["ID"].as_str().unwrap().to_string();
    let node_addr = id["Addresses"][0].as_str().unwrap().to_string();

    // A first peer, connected before the page opens, which fetches a block over Bitswap (so the
    // page has transfers to show).
    let first = peer().await;
    ok(
        repo.path(),
        &["swarm", "connect", &dial_address(&first).await],
    );
    let put = post(
        &daemon.api,
        "block/put?pin=true",
        Some(b"shown on the status page"),
    )
    .unwrap();
    assert_eq!(put.status, 200, "{}", put.text());
    let put: Value = serde_json::from_slice(&put.body).unwrap();
    let cid = put["Key"].as_str().unwrap().parse().unwrap();
    tokio::time::timeout(STEP, first.get_block(&cid))
        .await
        .expect("the peer fetched the block in time")
        .unwrap();

    let url = format!("http://{}/cairn/status", daemon.api);
    let mut cmd = Command::new("node");
    cmd.current_dir(&js)
        .env("CHROMIUM", &chromium)
        .arg("status_page.mjs")
        .arg(&url)
        .arg(&node_id)
        .arg(first.peer_id().to_base58())
        .stdin(Stdio::piped());
    let screenshot = std::env::var_os("CAIRN_STATUS_SCREENSHOT");
    if let Some(shot) = &screenshot {
        cmd.arg(shot);
    }
    // For a screenshot, traffic for the bandwidth graph: the first peer fetches fresh blocks
    // over Bitswap, one after another, until the page has been photographed.
    let traffic = tokio_util::sync::CancellationToken::new();
    if screenshot.is_some() {
        tokio::spawn(fetch_blocks(
            daemon.api.clone(),
            first.clone(),
            traffic.clone(),
        ));
    }
    let (mut script, output) = support::spawn_reading(cmd);
    let mut stdin = script.stdin.take().unwrap();

    let ready = next_report(&output.lines, &output);
    assert_eq!(ready["event"], "ready", "{ready}");
    assert_eq!(ready["peerIdText"], node_id.as_str(), "{ready}");
    assert_eq!(ready["peerIdVisible"], true, "{ready}");
    let first_row = ready["firstPeerRow"].as_str().unwrap();
    assert!(first_row.contains(&first.peer_id().to_base58()), "{ready}");
    assert!(first_row.contains("/ip4/127.0.0.1/tcp/"), "{ready}");

    // A second peer dials the daemon while the page is open.
    let second = peer().await;
    second.connect(node_addr.parse().unwrap()).await.unwrap();
    writeln!(stdin, "{}", second.peer_id().to_base58()).unwrap();

    let done = next_report(&output.lines, &output);
    assert_eq!(done["event"], "done", "{done}");
    assert_eq!(done["sameDocument"], true, "the page reloaded: {done}");
    let rows: Vec<&str> = done["peerRows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for p in [&first, &second] {
        assert!(rows.contains(&p.peer_id().to_base58().as_str()), "{done}");
    }
    assert!(
        done["newPeerRow"]
            .as_str()
            .unwrap()
            .contains(&second.peer_id().to_base58()),
        "{done}"
    );
    assert_eq!(done["newPeerVisible"], true, "{done}");
    assert_eq!(done["watchVisible"], true, "{done}");
    let watch_row = done["watchRows"][0].as_str().unwrap();
    assert!(
        watch_row.contains("dropped.txt") && watch_row.contains(&watched),
        "{done}"
    );
    let frames = done["eventFrames"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f.as_str().unwrap().contains("\"peer_connected\"")),
        "the event stream delivered no peer_connected for the new peer: {done}"
    );
    for key in [
        "consoleErrors",
        "pageErrors",
        "failedRequests",
        "httpErrors",
    ] {
        assert_eq!(done[key], serde_json::json!([]), "{key}: {done}");
    }
    traffic.cancel();
    drop(stdin);
    let status = script.wait().unwrap();
    assert!(
        status.success(),
        "the browser script exited with {status}: {}",
        output.stderr.lock().unwrap()
    );
}
