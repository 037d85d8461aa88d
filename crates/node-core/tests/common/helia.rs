//! Drives `../shared/compat/helia-peer` (a js-libp2p/Helia node no one here wrote) through its
//! `--control` JSON protocol: one command per stdin line, replies matched by id, and every other
//! event line (received pubsub messages among them) kept for the test to wait on.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// A running helia-peer.
pub struct Helia {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Lines that were not the reply being waited for.
    pub backlog: Vec<Value>,
    next_id: u64,
    /// Its peer id.
    pub peer_id: String,
    /// Its listen address, with `/p2p/`.
    pub addr: String,
}

/// Where the compat peer lives: `$CAIRN_HELIA_PEER_DIR` (a copy with its `node_modules`, for a
/// read-only checkout of ../shared), else `../shared/compat/helia-peer` beside the project root.
pub fn helia_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAIRN_HELIA_PEER_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat/helia-peer")
}

/// Where the IPNS peer lives: `tests/js` of this crate (Helia with `@helia/ipns` and kad-dht).
pub fn ipns_peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

impl Helia {
    /// Starts helia-peer; fails with instructions if its npm dependencies are missing.
    pub async fn start() -> anyhow::Result<Self> {
        let args = [
            "--control",
            "--quiet",
            "--muxers",
            "yamux",
            "--timeout",
            "20000",
        ];
        Self::spawn(&helia_dir(), "helia-peer.js", &args).await
    }

    /// Starts `tests/js/ipns-peer.js` (same control protocol; IPNS commands `publish`,
    /// `resolve`, `put-raw`, `get-raw`, `make-record`), with a deterministic identity from `seed`.
    pub async fn start_ipns(seed: &str) -> anyhow::Result<Self> {
        Self::spawn(
            &ipns_peer_dir(),
            "ipns-peer.js",
            &["--control", "--seed", seed],
        )
        .await
    }

    async fn spawn(dir: &std::path::Path, script: &str, args: &[&str]) -> anyhow::Result<Self> {
        if !dir.join("node_modules").is_dir() {
            bail!(
                "{script} is not installed: run `npm ci --ignore-scripts` in {} (scripts/test.sh does)",
                dir.display()
            );
        }
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting node (Node.js 20 is needed)")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut helia = Helia {
            child,
            stdin,
            lines,
            backlog: Vec::new(),
            next_id: 1,
            peer_id: String::new(),
            addr: String::new(),
        };
        let ready = helia
            .wait_event(Duration::from_secs(30), |v| v["event"] == "ready")
            .await?;
        helia.peer_id = ready["peerId"].as_str().context("peerId")?.to_string();
        helia.addr = ready["multiaddrs"][0]
            .as_str()
            .context("multiaddr")?
            .to_string();
        Ok(helia)
    }

    /// Sends a command and returns its `result`; an `ok: false` reply is an error.
    pub async fn call(&mut self, cmd: &str, mut params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        params["id"] = json!(id);
        params["cmd"] = json!(cmd);
        self.stdin
            .write_all(format!("{params}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        let reply = self
            .wait_event(Duration::from_secs(40), |v| {
                v["event"] == "reply" && v["id"] == json!(id)
            })
            .await
            .with_context(|| format!("helia {cmd}"))?;
        if reply["ok"] != json!(true) {
            bail!("helia {cmd} failed: {}", reply["error"]);
        }
        Ok(reply["result"].clone())
    }

    /// Waits for an output line matching `pred` (looking at the backlog first).
    pub async fn wait_event(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return Ok(self.backlog.remove(i));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .context("timed out waiting for helia-peer")?
                .context("helia-peer exited")?;
            if pred(&line) {
                return Ok(line);
            }
            self.backlog.push(line);
        }
    }

    /// Stops it.
    pub async fn stop(mut self) {
        let _ = self.call("stop", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
