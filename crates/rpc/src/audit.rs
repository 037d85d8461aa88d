//! The RPC audit log: one JSON line per RPC call, off by default.
//!
//! ```json
//! "Cairn": { "AuditLog": { "Path": "audit.log", "MaxSize": "100MB", "MaxFiles": 5 } }
//! ```
//!
//! `Path` is relative to the repo unless absolute. Each line, written when the call's answer has
//! ended (its stream included), holds: `time` (RFC 3339, UTC), `remote` (the client's address),
//! `user` (the `API.Authorizations` entry whose secret it presented, or null), `command`,
//! `args` and `options` (from the query string, with secrets replaced by `<redacted>`: option
//! values whose names mention a secret, token, password or authorization, and the value of a
//! `config` call on `Identity.*` or `API.Authorizations.*`), `status`, `duration_ms` and
//! `bytes` (the answer's body bytes). Request bodies are never logged.
//!
//! Lines go through a bounded queue ([`QUEUE`]) to one writer task, so a slow disk never
//! blocks a request: when the queue is full a line is dropped and counted
//! (`cairn_audit_lines_dropped_total`). The file is rotated by size: past `MaxSize` it becomes
//! `<Path>.1` (older ones shift to `.2` … up to `MaxFiles`, the oldest deleted).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use cairn_node_core::Config;
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Lines waiting for the writer at most; beyond it lines are dropped (and counted) rather than
/// requests slowed. At ~300 bytes a line, about 1.2 MB.
pub const QUEUE: usize = 4096;

/// Default `MaxSize`: 100 MB (10^8 bytes).
pub const DEFAULT_MAX_SIZE: u64 = 100_000_000;

/// Default `MaxFiles`: rotated files kept besides the current one.
pub const DEFAULT_MAX_FILES: u32 = 5;

/// What replaces a secret in a logged line.
pub const REDACTED: &str = "<redacted>";

/// A `Cairn.AuditLog` section that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The section does not have the expected shape, or `MaxSize` is not a size.
    #[error("Cairn.AuditLog: {0}")]
    Malformed(String),
    /// The file cannot be opened for appending.
    #[error("audit log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RawAudit {
    path: String,
    max_size: Option<String>,
    max_files: Option<u32>,
}

/// A running audit log: a cheap handle to the writer task.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Value>,
    dropped: Counter,
}

impl AuditLog {
    /// The audit log the config's `Cairn.AuditLog` asks for (`None` when absent), writing under
    /// `repo` for a relative path. Starts the writer task (needs a Tokio runtime).
    ///
    /// # Errors
    /// [`AuditError`] for a malformed section or a file that cannot be opened.
    pub fn from_config(config: &Config, repo: Option<&Path>) -> Result<Option<Self>, AuditError> {
        let Some(section) = config.extra.get("Cairn").and_then(|c| c.get("AuditLog")) else {
            return Ok(None);
        };
        let raw: RawAudit = serde_json::from_value(section.clone())
            .map_err(|e| AuditError::Malformed(e.to_string()))?;
        if raw.path.is_empty() {
            return Ok(None);
        }
        let max_size = match raw.max_size {
            None => DEFAULT_MAX_SIZE,
            Some(text) => cairn_node_core::config::parse_size(&text)
                .ok_or_else(|| AuditError::Malformed(format!("MaxSize {text:?} is not a size")))?,
        };
        let path = match repo {
            Some(repo) if Path::new(&raw.path).is_relative() => repo.join(&raw.path),
            _ => PathBuf::from(&raw.path),
        };
        Self::open(path, max_size, raw.max_files.unwrap_or(DEFAULT_MAX_FILES)).map(Some)
    }

    /// An audit log appending to `path`, rotated past `max_size` bytes keeping `max_files`
    /// older files.
    ///
    /// # Errors
    /// [`AuditError::Open`] when the file cannot be opened.
    pub fn open(path: PathBuf, max_size: u64, max_files: u32) -> Result<Self, AuditError> {
        let file = open_append(&path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            path,
            file: std::io::BufWriter::new(file),
            written,
            max_size: max_size.max(1),
            max_files,
        };
        // Blocking file writes stay off the async workers.
        tokio::task::spawn_blocking(move || writer.run(rx));
        Ok(AuditLog {
            tx,
            dropped: Counter::default(),
        })
    }

    /// Registers `cairn_audit_lines_dropped_total`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "cairn_audit_lines_dropped",
            "Audit log lines dropped because the writer fell behind",
            self.dropped.clone(),
        );
    }

    fn record(&self, line: Value) {
        if self.tx.try_send(line).is_err() {
            self.dropped.inc();
        }
    }
}

fn open_append(path: &Path) -> Result<std::fs::File, AuditError> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|source| AuditError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// The writer task's state.
struct Writer {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    written: u64,
    max_size: u64,
    max_files: u32,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Value>) {
        while let Some(line) = rx.blocking_recv() {
            self.write(&line);
            // Whatever else is queued goes in the same flush.
            while let Ok(line) = rx.try_recv() {
                self.write(&line);
            }
            if let Err(e) = self.file.flush() {
                tracing::warn!("audit log {}: {e}", self.path.display());
            }
        }
    }

    fn write(&mut self, line: &Value) {
        let mut text = line.to_string();
        text.push('\n');
        if self.written > 0 && self.written + text.len() as u64 > self.max_size {
            self.rotate();
        }
        match self.file.write_all(text.as_bytes()) {
            Ok(()) => self.written += text.len() as u64,
            Err(e) => tracing::warn!("audit log {}: {e}", self.path.display()),
        }
    }

    /// `path` → `path.1`, `path.1` → `path.2`, …; the oldest beyond `max_files` is removed.
    fn rotate(&mut self) {
        let _ = self.file.flush();
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.max_files == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(numbered(self.max_files));
            for n in (1..self.max_files).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            let _ = std::fs::rename(&self.path, numbered(1));
        }
        match open_append(&self.path) {
            Ok(file) => {
                self.file = std::io::BufWriter::new(file);
                self.written = 0;
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

/// Whether an option's value is a secret, by its name.
fn secret_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "token", "password", "passwd", "auth"]
        .iter()
        .any(|s| name.contains(s))
}

/// What is known of a call before it runs; completed into a line when its answer ends.
#[derive(Debug)]
pub(crate) struct Call {
    pub remote: Option<std::net::SocketAddr>,
    pub user: Option<String>,
    pub command: String,
    pub query: Vec<(String, String)>,
    pub started: Instant,
}

impl Call {
    /// The call's line, secrets redacted.
    fn line(&self, status: u16, bytes: u64) -> Value {
        let mut args = Vec::new();
        let mut options = serde_json::Map::new();
        for (k, v) in &self.query {
            if k == "arg" {
                args.push(v.clone());
            } else if secret_option(k) {
                options.insert(k.clone(), json!(REDACTED));
            } else {
                options.insert(k.clone(), json!(v));
            }
        }
        // `config <key> <value>` on the identity or the RPC's own credentials.
        if self.command == "config"
            && args
                .first()
                .is_some_and(|k| k.starts_with("Identity") || k.starts_with("API.Authorizations"))
            && args.len() > 1
        {
            for value in &mut args[1..] {
                *value = REDACTED.to_string();
            }
        }
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        json!({
            "time": time,
            "remote": self.remote.map(|r| r.to_string()),
            "user": self.user,
            "command": self.command,
            "args": args,
            "options": options,
            "status": status,
            "duration_ms": self.started.elapsed().as_secs_f64() * 1e3,
            "bytes": bytes,
        })
    }
}

/// A response body that counts its bytes and writes the call's audit line when it ends or is
/// dropped (a client that went away mid-stream included).
pub(crate) struct AuditedBody {
    inner: Body,
    bytes: u64,
    done: Option<(AuditLog, Call, u16)>,
}

impl AuditedBody {
    pub(crate) fn new(inner: Body, log: AuditLog, call: Call, status: u16) -> Self {
        AuditedBody {
            inner,
            bytes: 0,
            done: Some((log, call, status)),
        }
    }

    fn finish(&mut self) {
        if let Some((log, call, status)) = self.done.take() {
            log.record(call.line(status, self.bytes));
        }
    }
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        self.finish();
    }
}

impl HttpBody for AuditedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let call = Call {
            remote: None,
            user: Some("alice".into()),
            command: "config".into(),
            query: vec![
                ("arg".into(), "API.Authorizations".into()),
                (
                    "arg".into(),
                    "{\"bob\":{\"AuthSecret\":\"bearer:s3cret\"}}".into(),
                ),
                ("json".into(), "true".into()),
                ("auth-token".into(), "t0ken".into()),
            ],
            started: Instant::now(),
        };
        let line = call.line(200, 12).to_string();
        assert!(
            !line.contains("s3cret") && !line.contains("t0ken"),
            "{line}"
        );
        assert!(
            line.contains("API.Authorizations") && line.contains("alice"),
            "{line}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn lines_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(path.clone(), 2_000, 2).unwrap();
        for i in 0..40 {
            log.record(json!({"n": i, "pad": "x".repeat(100)}));
        }
        drop(log);
        let rotated = dir.path().join("audit.log.1");
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while !(rotated.exists() && dir.path().join("audit.log.2").exists()) {
            assert!(Instant::now() < deadline, "no rotation");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!dir.path().join("audit.log.3").exists());
        assert!(std::fs::metadata(&path).unwrap().len() <= 2_000);
    }
}
