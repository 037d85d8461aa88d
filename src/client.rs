//! The CLI's side of the RPC: finds the daemon (the repo's `api` file or `--api`), sends Kubo-style
//! requests (`arg=` parameters, options, multipart files, `--api-auth`), and turns Kubo errors
//! into `Error: <message>`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use cairn::node::RepoError;
use cairn::node::repo::RepoLock;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A connection to a daemon's RPC.
#[derive(Debug)]
pub struct RpcClient {
    base: String,
    auth: Option<String>,
    /// Kubo's global options (`offline`, `timeout`), sent with every command.
    global: Vec<(String, String)>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Body>,
}

/// A request body: in hand, or streamed (an upload of files read as it is sent).
type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A streamed multipart body: its boundary and its bytes.
pub struct Upload {
    /// The multipart boundary the stream uses.
    pub boundary: String,
    /// The body's bytes, produced as they are sent.
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("boundary", &self.boundary)
            .finish_non_exhaustive()
    }
}

/// A request being built.
#[derive(Debug, Default)]
pub struct Call {
    query: Vec<(String, String)>,
    files: Vec<Bytes>,
    upload: Option<Upload>,
}

impl Call {
    /// A positional argument.
    pub fn arg(mut self, v: impl Into<String>) -> Self {
        self.query.push(("arg".into(), v.into()));
        self
    }
    /// An option.
    pub fn opt(mut self, k: &str, v: impl ToString) -> Self {
        self.query.push((k.into(), v.to_string()));
        self
    }
    /// An option only when it has a value (Kubo tells "not given" from any value).
    pub fn maybe(self, k: &str, v: Option<impl ToString>) -> Self {
        match v {
            Some(v) => self.opt(k, v),
            None => self,
        }
    }
    /// A file part.
    pub fn file(mut self, data: impl Into<Bytes>) -> Self {
        self.files.push(data.into());
        self
    }
    /// A streamed multipart body (replaces file parts).
    pub fn upload(mut self, upload: Upload) -> Self {
        self.upload = Some(upload);
        self
    }
}

/// A body already in hand.
fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The start of a request.
pub fn call() -> Call {
    Call::default()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/ip4/127.0.0.1/tcp/5001` (or a URL) → `http://127.0.0.1:5001`.
pub fn api_base(api: &str) -> anyhow::Result<String> {
    if api.starts_with("http://") || api.starts_with("https://") {
        return Ok(api.trim_end_matches('/').to_string());
    }
    let parts: Vec<&str> = api.trim().split('/').collect();
    match parts.as_slice() {
        ["", "ip4" | "dns" | "dns4" | "dns6", host, "tcp", port, ..] => {
            Ok(format!("http://{host}:{port}"))
        }
        ["", "ip6", host, "tcp", port, ..] => Ok(format!("http://[{host}]:{port}")),
        _ => bail!(
            "cannot use API address {api:?}: expected /ip4/<host>/tcp/<port> or an http:// URL"
        ),
    }
}

/// How long the CLI waits for a TCP connection to the address in the `api` file before it
/// decides nothing answers there. A local daemon accepts (or the kernel refuses) at once.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The daemon address the CLI should talk to, or `None` when no daemon runs on the repo.
///
/// `--api` is taken as given (an unreachable one is an error later, as in Kubo). Otherwise the
/// repo's `api` file is read and its address probed with a TCP connect: a daemon killed with
/// `kill -9` (or by the OOM killer) leaves the file behind, and Kubo then runs offline-capable
/// commands on the repo instead of failing. When nothing answers and the repo lock is free, the
/// stale file is removed (as Kubo does); when a live process holds the lock (a daemon starting
/// up or hung), the file is kept and the address returned, so the request reports that the
/// daemon cannot be reached. An `api` file that is not an address is treated the same way.
pub async fn daemon_address(repo: &Path, api: Option<&str>) -> Option<String> {
    if let Some(a) = api {
        return Some(a.to_string());
    }
    let path = repo.join("api");
    let addr = std::fs::read_to_string(&path).ok()?;
    if answers(&addr).await {
        return Some(addr);
    }
    match RepoLock::acquire(repo) {
        Ok(_lock) => {
            // The lock is held while the file goes, so a daemon cannot start in between and
            // have its fresh file removed.
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(
                    "removed the stale api file {} ({addr:?} does not answer)",
                    path.display()
                ),
                Err(e) => {
                    tracing::warn!("cannot remove the stale api file {}: {e}", path.display())
                }
            }
            None
        }
        Err(RepoError::Locked { .. }) => Some(addr),
        // No lock file can be made (a read-only repo, another user's repo): nothing shows the
        // daemon is gone, so let the request say what happens.
        Err(_) => Some(addr),
    }
}

/// Whether anything accepts a TCP connection at the `api` file's address.
async fn answers(api: &str) -> bool {
    let Ok(base) = api_base(api) else {
        return false;
    };
    let Ok(uri) = base.parse::<hyper::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    // `Uri::host` keeps an IPv6 literal's brackets, which is what `host:port` needs.
    let target = format!("{host}:{port}");
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(target)).await,
        Ok(Ok(_))
    )
}

/// Takes the repo lock for a command that runs on the repo without a daemon (`config`,
/// `bootstrap`), as Kubo's offline commands do: a daemon that starts meanwhile waits for it.
pub fn lock_repo(repo: &Path) -> anyhow::Result<RepoLock> {
    if !cairn::node::Repo::is_initialized(repo) {
        bail!(
            "no cairn repo found in {}: please run `cairn init`",
            repo.display()
        );
    }
    Ok(RepoLock::acquire(repo)?)
}

impl RpcClient {
    /// A client for the daemon at `addr` (from [`daemon_address`]); `None` means no daemon runs.
    pub fn connect(repo: &Path, addr: Option<String>, auth: Option<&str>) -> anyhow::Result<Self> {
        let addr = addr.ok_or_else(|| {
            anyhow!(
                "cairn daemon is not running (no api file in {}): start it with `cairn daemon`, or pass --api",
                repo.display()
            )
        })?;
        let auth = auth
            .map(|s| {
                cairn::rpc::security::header_for_secret(s)
                    .ok_or_else(|| anyhow!("unknown --api-auth type in {s:?}"))
            })
            .transpose()?;
        Ok(RpcClient {
            base: api_base(&addr)?,
            auth,
            global: Vec::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Sends Kubo's global `offline` and `timeout` options with every command.
    pub fn global_options(mut self, offline: bool, timeout: Option<&str>) -> Self {
        if offline {
            self.global.push(("offline".into(), "true".into()));
        }
        if let Some(t) = timeout {
            self.global.push(("timeout".into(), t.into()));
        }
        self
    }

    /// `GET /health`: the status code and body (`OK`, `shutting down`, ...).
    pub async fn health(&self) -> anyhow::Result<(u16, String)> {
        let url = format!("{}/health", self.base);
        let mut req = hyper::Request::get(&url);
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        let resp = self
            .client
            .request(req.body(full(Bytes::new()))?)
            .await
            .with_context(|| format!("cannot reach the cairn daemon at {}", self.base))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).trim().to_string()))
    }

    async fn send(
        &self,
        command: &str,
        call: Call,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let query: Vec<String> = call
            .query
            .iter()
            .chain(&self.global)
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let url = format!("{}/api/v0/{command}?{}", self.base, query.join("&"));
        let mut req = hyper::Request::post(&url);
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        let body: Body = if let Some(upload) = call.upload {
            req = req.header(
                "content-type",
                format!("multipart/form-data; boundary={}", upload.boundary),
            );
            StreamBody::new(upload.stream.map_ok(Frame::data)).boxed_unsync()
        } else if call.files.is_empty() {
            full(Bytes::new())
        } else {
            let boundary = "cairn-cli-boundary-7d3f1a";
            req = req.header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            );
            let mut body = Vec::new();
            for f in &call.files {
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                        .as_bytes(),
                );
                body.extend_from_slice(f);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            full(Bytes::from(body))
        };
        let resp = self
            .client
            .request(req.header("te", "trailers").body(body)?)
            .await
            .with_context(|| format!("cannot reach the cairn daemon at {}", self.base))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let json = resp
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            let body = resp.into_body().collect().await?.to_bytes();
            let message = if json {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["Message"].as_str().map(String::from))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into())
            } else {
                String::from_utf8_lossy(&body).trim().to_string()
            };
            bail!(
                "{}",
                if message.is_empty() {
                    status.to_string()
                } else {
                    message
                }
            );
        }
        Ok(resp)
    }

    /// The whole body (and a trailer error, if the stream ended with one).
    pub async fn bytes(&self, command: &str, call: Call) -> anyhow::Result<Bytes> {
        let resp = self.send(command, call).await?;
        let collected = resp.into_body().collect().await?;
        if let Some(e) = collected.trailers().and_then(|t| t.get("x-stream-error")) {
            bail!("{}", e.to_str().unwrap_or("stream error"));
        }
        Ok(collected.to_bytes())
    }

    /// Raw output handed to `each` chunk by chunk as it arrives (a file, a CAR: never held
    /// whole); a trailer error after the last chunk is an error.
    pub async fn raw(
        &self,
        command: &str,
        call: Call,
        mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut body = self.send(command, call).await?.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(t) = frame.trailers_ref()
                && let Some(e) = t.get("x-stream-error")
            {
                bail!("{}", e.to_str().unwrap_or("stream error"));
            }
            if let Ok(data) = frame.into_data() {
                each(&data)?;
            }
        }
        Ok(())
    }

    /// One JSON value.
    pub async fn json(&self, command: &str, call: Call) -> anyhow::Result<serde_json::Value> {
        let body = self.bytes(command, call).await?;
        serde_json::from_slice(&body).with_context(|| {
            format!("the daemon answered {command} with something that is not JSON")
        })
    }

    /// NDJSON values, each handed to `each` as it arrives.
    pub async fn stream(
        &self,
        command: &str,
        call: Call,
        mut each: impl FnMut(serde_json::Value) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut body = self.send(command, call).await?.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(t) = frame.trailers_ref()
                && let Some(e) = t.get("x-stream-error")
            {
                bail!("{}", e.to_str().unwrap_or("stream error"));
            }
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    if line.len() > 1 {
                        each(serde_json::from_slice(&line)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}
