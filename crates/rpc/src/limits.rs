//! Limits every cairn HTTP listener enforces, so that a hostile or broken client cannot hold a
//! connection or a slot for ever: how long a request head may take (and so how long an idle
//! keep-alive connection stays open), how long an upload may stall, and how many connections a
//! listener serves at once. Each limit that triggers is counted in
//! `cairn_http_limits_triggered_total{listener,limit}`.
//!
//! Set in the config's cairn-only section (Kubo has no such keys; Go's server, and so Kubo's,
//! has none of these limits by default):
//!
//! ```json
//! "Cairn": { "Limits": {
//!     "HeaderReadTimeout": "30s",
//!     "BodyReadTimeout": "30s",
//!     "MaxConnections": 4096
//! } }
//! ```
//!
//! - `HeaderReadTimeout` (Go duration, default 30 s; `0` turns it off): the longest a connection
//!   waits for a complete request head. hyper starts this clock whenever the connection is ready
//!   for a request, so it is also the idle keep-alive timeout: a connection with no request in
//!   flight is closed after it. A request that is running (a `pubsub/sub` stream that is quiet
//!   for an hour) is not affected.
//! - `BodyReadTimeout` (default 30 s; `0` off): the longest an upload may go without a byte
//!   arriving. It is an idle timer, reset by every chunk: a large `add` that keeps flowing is never
//!   cut, a stalled one fails with `request body stalled for 30s` and its connection closes.
//! - `MaxConnections` (default 4096; `0` for no cap): connections served at once per listener.
//!   At the cap the listener stops accepting (new clients wait in the kernel's backlog) until one
//!   ends; each time it reaches the cap is counted.

use std::time::Duration;

use axum::body::Body;
use cairn_node_core::Config;
use futures::StreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Deserialize;

/// Default for `HeaderReadTimeout` and `BodyReadTimeout`: hyper's own header default, and long
/// enough for a client on a slow link to send a chunk.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default for `MaxConnections`: far above what one RPC user opens, below the usual 65,536
/// descriptor limit with room for the swarm.
///
/// Kubo (Go's server) has no cap at all; this one is high enough that a client Kubo would serve
/// is served too: `benches/daemon_load.rs` holds 1,000 concurrent connections under it with no
/// error, and nothing there needed raising it. Each connection costs the daemon two descriptors
/// (the socket and the close watch's duplicate), so the cap means up to 8,192 of them; the daemon
/// raises its soft descriptor limit to the hard one at start, as Go does. Memory per connection is
/// bounded by its head buffers: about 3 MiB while a 1 MiB head (Go's `DefaultMaxHeaderBytes`) is
/// read (the held head, its rewritten copy, hyper's 1 MiB read buffer; `HeaderReadTimeout` bounds
/// how long), and the long-URI layer keeps at most 64 KiB of that once it has gone to hyper. An
/// idle connection costs far less: BENCHMARKS.md, "Daemon under load", has the measured figure.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// A `Cairn.Limits` value that does not parse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// The section is not an object of the expected shape (a number where a duration string
    /// belongs, an unknown key).
    #[error("Cairn.Limits: {0}")]
    Malformed(String),
    /// A duration that is not a Go duration (`30s`, `1m`, `0`).
    #[error("Cairn.Limits.{key}: {value:?} is not a duration (such as \"30s\")")]
    BadDuration {
        /// The key.
        key: &'static str,
        /// What it held.
        value: String,
    },
}

/// `Cairn.Limits` as written in the config.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RawLimits {
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    max_connections: Option<usize>,
}

/// The limits of one listener, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest wait for a complete request head (also the idle keep-alive timeout); `None` off.
    pub header_read_timeout: Option<Duration>,
    /// Longest an upload may stall between chunks; `None` off.
    pub body_read_timeout: Option<Duration>,
    /// Connections served at once; `None` for no cap.
    pub max_connections: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Some(DEFAULT_READ_TIMEOUT),
            body_read_timeout: Some(DEFAULT_READ_TIMEOUT),
            max_connections: Some(DEFAULT_MAX_CONNECTIONS),
        }
    }
}

impl Limits {
    /// The limits set in `config`'s `Cairn.Limits`, with the defaults for what is not set.
    ///
    /// # Errors
    /// [`LimitsError`] for a malformed section or duration.
    pub fn from_config(config: &Config) -> Result<Self, LimitsError> {
        let Some(section) = config.extra.get("Cairn").and_then(|c| c.get("Limits")) else {
            return Ok(Limits::default());
        };
        let raw: RawLimits = serde_json::from_value(section.clone())
            .map_err(|e| LimitsError::Malformed(e.to_string()))?;
        let duration = |key: &'static str, value: Option<String>| match value {
            None => Ok(Some(DEFAULT_READ_TIMEOUT)),
            Some(text) => match cairn_node_core::config::parse_go_duration(&text) {
                Some(Duration::ZERO) => Ok(None),
                Some(d) => Ok(Some(d)),
                None => Err(LimitsError::BadDuration { key, value: text }),
            },
        };
        Ok(Limits {
            header_read_timeout: duration("HeaderReadTimeout", raw.header_read_timeout)?,
            body_read_timeout: duration("BodyReadTimeout", raw.body_read_timeout)?,
            max_connections: match raw.max_connections {
                None => Some(DEFAULT_MAX_CONNECTIONS),
                Some(0) => None,
                Some(n) => Some(n),
            },
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    listener: String,
    limit: &'static str,
}

/// The counters of triggered limits, shared by every listener (labelled by listener name).
#[derive(Clone, Debug, Default)]
pub struct LimitCounters(Family<LimitLabels, Counter>);

impl LimitCounters {
    /// Registers `cairn_http_limits_triggered_total` in `registry`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "cairn_http_limits_triggered",
            "HTTP listener limits that cut a client off: header_timeout (request head or idle \
             keep-alive), body_timeout (stalled upload), connections (listener at its cap)",
            self.0.clone(),
        );
    }

    /// Counts one trigger of `limit` on `listener`.
    pub fn hit(&self, listener: &str, limit: &'static str) {
        self.0
            .get_or_create(&LimitLabels {
                listener: listener.to_string(),
                limit,
            })
            .inc();
    }

    /// How often `limit` triggered on `listener`.
    pub fn get(&self, listener: &str, limit: &'static str) -> u64 {
        self.0
            .get_or_create(&LimitLabels {
                listener: listener.to_string(),
                limit,
            })
            .get()
    }
}

/// How a listener is served: its name (a metrics label), its limits and where triggers are
/// counted. [`crate::ApiBuilder::build_server`] makes the RPC's.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The listener's name in metrics (`api`, `gateway`, `metrics`).
    pub name: &'static str,
    /// Its limits.
    pub limits: Limits,
    /// Where triggered limits are counted.
    pub counters: LimitCounters,
    /// Serve TLS with this acceptor (see [`crate::tls`]); plain HTTP when `None`.
    pub tls: Option<std::sync::Arc<crate::tls::ReloadingAcceptor>>,
    /// Tripped to close the connections still open after shutdown (a token never tripped by
    /// default: connections are waited for).
    pub abort: tokio_util::sync::CancellationToken,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            name: "api",
            limits: Limits::default(),
            counters: LimitCounters::default(),
            tls: None,
            abort: tokio_util::sync::CancellationToken::new(),
        }
    }
}

/// The body limit of one request, carried to the handler as a request extension.
#[derive(Clone, Debug)]
pub(crate) struct BodyLimit {
    pub timeout: Duration,
    pub listener: &'static str,
    pub counters: LimitCounters,
}

impl BodyLimit {
    /// `body`, failing with `request body stalled for <timeout>` when no chunk arrives within
    /// the timeout (counted once).
    pub(crate) fn apply(self, body: Body) -> Body {
        let timeout = self.timeout;
        let stream = body
            .into_data_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other));
        let limited = futures::stream::unfold(Some((stream, self)), move |state| async move {
            let (mut stream, limit) = state?;
            match tokio::time::timeout(timeout, stream.next()).await {
                Ok(Some(item)) => Some((item, Some((stream, limit)))),
                Ok(None) => None,
                Err(_) => {
                    limit.counters.hit(limit.listener, "body_timeout");
                    let e = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("request body stalled for {timeout:?}"),
                    );
                    // Nothing after a stall is read: the body ends with the error.
                    Some((Err(e), None))
                }
            }
        });
        Body::from_stream(limited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(limits: serde_json::Value) -> Config {
        let mut c = Config::default();
        c.extra
            .insert("Cairn".into(), serde_json::json!({ "Limits": limits }));
        c
    }

    #[test]
    fn defaults_and_settings() {
        assert_eq!(
            Limits::from_config(&Config::default()).unwrap(),
            Limits::default()
        );
        let l = Limits::from_config(&config(serde_json::json!({
            "HeaderReadTimeout": "2s", "BodyReadTimeout": "0", "MaxConnections": 3
        })))
        .unwrap();
        assert_eq!(l.header_read_timeout, Some(Duration::from_secs(2)));
        assert_eq!(l.body_read_timeout, None);
        assert_eq!(l.max_connections, Some(3));
        let e = Limits::from_config(&config(serde_json::json!({"HeaderReadTimeout": "soon"})))
            .unwrap_err();
        assert!(e.to_string().contains("HeaderReadTimeout"), "{e}");
        let e = Limits::from_config(&config(serde_json::json!({"MaxConection": 3}))).unwrap_err();
        assert!(e.to_string().contains("MaxConection"), "{e}");
    }
}
