//! `../shared/compat/kubo-client-smoke`: the real kubo-rpc-client (JS) against cairn's RPC, with a
//! js-libp2p/Helia peer as the second node. Every check must pass, add/cat of 1 MiB and 10 MiB
//! files with Kubo's CIDs included. Needs Node.js and `npm ci` in the compat folders
//! (scripts/test.sh does that).

mod common;

use std::path::PathBuf;

/// Checks allowed to fail (none: add/cat are implemented for files).
const NEEDS_UNIXFS: &[&str] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_rpc_client_smoke_passes() -> anyhow::Result<()> {
    let compat = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat");
    let smoke = compat.join("kubo-client-smoke");
    anyhow::ensure!(
        smoke.join("node_modules").is_dir() && compat.join("helia-peer/node_modules").is_dir(),
        "run `npm ci --ignore-scripts` in {}/kubo-client-smoke and helia-peer (scripts/test.sh does)",
        compat.display()
    );
    let api = common::start().await;
    let report = tempfile::NamedTempFile::new()?;
    let out = tokio::process::Command::new("node")
        .arg(smoke.join("smoke.js"))
        .args(["--api", &api.base, "--helia-muxers", "yamux", "--json"])
        .arg(report.path())
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report.path())?)?;
    let results = json["results"].as_array().expect("results");
    let mut unexpected = Vec::new();
    let mut expected_failures = 0;
    for r in results {
        let name = r["name"].as_str().unwrap_or_default();
        // `ok` is true (pass), false (fail) or null (skipped).
        let allowed = NEEDS_UNIXFS.iter().any(|p| name.starts_with(p));
        match (r["ok"].as_bool(), allowed) {
            (Some(true), _) => {}
            (Some(false), true) => expected_failures += 1,
            (outcome, _) => unexpected.push(format!(
                "{name}: {outcome:?}: {}",
                r["reason"].as_str().unwrap_or("")
            )),
        }
    }
    println!(
        "passed {}, failed only because UnixFS is missing {expected_failures}",
        json["passed"]
    );
    assert!(
        unexpected.is_empty(),
        "checks that must pass failed:\n{}",
        unexpected.join("\n")
    );
    assert!(
        json["passed"].as_u64().unwrap_or(0) >= 20,
        "too few checks passed: {}",
        json["passed"]
    );
    // The smoke test ends with a remote shutdown, which must have stopped the node.
    assert!(!api.node.is_running());
    Ok(())
}
