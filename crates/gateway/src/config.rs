//! The gateway's settings, read from Kubo's `Gateway` config section with Kubo's key names and
//! defaults (Kubo 0.37+ `config/gateway.go`).

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use cairn_node_core::Config;
use cairn_node_core::config::parse_go_duration;
use serde_json::Value;

use crate::GatewayError;

/// Kubo's default `Gateway.RetrievalTimeout`: 30 s without a new byte to write ends the request.
pub const DEFAULT_RETRIEVAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Kubo's default `Gateway.MaxConcurrentRequests`.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 4096;
/// Kubo's default `Gateway.MaxRequestDuration`: one hour, a backstop for every other timeout.
pub const DEFAULT_MAX_REQUEST_DURATION: Duration = Duration::from_secs(3600);
/// The `Retry-After` (seconds) of a 429 beyond `Gateway.MaxConcurrentRequests` (boxo's
/// rate-limit middleware answers with a fixed 60 s as well).
pub const RETRY_AFTER_SECS: u64 = 60;

/// How the gateway behaves: Kubo's `Gateway.*` keys that cairn acts on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// `Gateway.NoFetch`: serve only blocks already in the local store (missing ones are 404),
    /// never fetch over Bitswap. Default false.
    pub no_fetch: bool,
    /// `Gateway.DeserializedResponses`: serve files, directories and tar archives; when false
    /// the gateway is trustless only (raw blocks and CARs; other requests get 406). Default true.
    pub deserialized_responses: bool,
    /// `Gateway.RetrievalTimeout`: the longest wait for the first byte of a response, and then
    /// between two writes; `None` when set to 0. Default 30 s.
    pub retrieval_timeout: Option<Duration>,
    /// `Gateway.MaxConcurrentRequests`: requests served at once before new ones get 429;
    /// `None` when set to 0. Default 4096.
    pub max_concurrent_requests: Option<usize>,
    /// `Gateway.MaxRequestDuration`: the longest any request may take, body included; `None`
    /// when set to 0. Default 1 h.
    pub max_request_duration: Option<Duration>,
    /// `Gateway.MaxRangeRequestFileSize` (bytes): range requests on larger files are refused
    /// with 501 (Kubo 0.39, for CDNs that mishandle ranges); `None` (the default) for no limit.
    pub max_range_request_file_size: Option<u64>,
    /// `Gateway.HTTPHeaders`: headers added to every response.
    pub http_headers: Vec<(HeaderName, HeaderValue)>,
    /// `Gateway.RootRedirect`: where `GET /` redirects; `None` when empty (then `/` is 404).
    pub root_redirect: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            no_fetch: false,
            deserialized_responses: true,
            retrieval_timeout: Some(DEFAULT_RETRIEVAL_TIMEOUT),
            max_concurrent_requests: Some(DEFAULT_MAX_CONCURRENT_REQUESTS),
            max_request_duration: Some(DEFAULT_MAX_REQUEST_DURATION),
            max_range_request_file_size: None,
            http_headers: Vec::new(),
            root_redirect: None,
        }
    }
}

impl GatewayConfig {
    /// The settings in `config`'s `Gateway` section, Kubo's defaults for what is not set.
    ///
    /// # Errors
    /// [`GatewayError::Config`] naming the key for a value of the wrong type, a duration Go's
    /// `time.ParseDuration` would refuse, or a header name or value HTTP does not allow.
    pub fn from_config(config: &Config) -> Result<Self, GatewayError> {
        let mut out = GatewayConfig::default();
        let Some(section) = config.extra.get("Gateway") else {
            return Ok(out);
        };
        let bad = |key: &str, why: &str| GatewayError::Config(format!("Gateway.{key}: {why}"));
        let get = |key: &str| section.get(key).filter(|v| !v.is_null());
        let flag = |key: &str, default: bool| match get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(key, "expected true, false or null")),
        };
        let duration = |key: &str, default: Option<Duration>| match get(key) {
            None => Ok(default),
            Some(Value::String(s)) => match parse_go_duration(s) {
                Some(Duration::ZERO) => Ok(None),
                Some(d) => Ok(Some(d)),
                None => Err(bad(key, &format!("{s:?} is not a duration"))),
            },
            Some(_) => Err(bad(key, "expected a duration string such as \"30s\"")),
        };
        out.no_fetch = flag("NoFetch", false)?;
        out.deserialized_responses = flag("DeserializedResponses", true)?;
        out.retrieval_timeout = duration("RetrievalTimeout", out.retrieval_timeout)?;
        out.max_request_duration = duration("MaxRequestDuration", out.max_request_duration)?;
        out.max_concurrent_requests = match get("MaxConcurrentRequests") {
            None => out.max_concurrent_requests,
            Some(v) => match v.as_u64() {
                Some(0) => None,
                Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                None => return Err(bad("MaxConcurrentRequests", "expected an integer ≥ 0")),
            },
        };
        out.max_range_request_file_size = match get("MaxRangeRequestFileSize") {
            None => None,
            Some(Value::Number(n)) => n.as_u64().filter(|n| *n > 0),
            Some(Value::String(s)) => parse_bytes(s)
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| bad("MaxRangeRequestFileSize", &format!("{s:?} is not a size")))?,
            Some(_) => return Err(bad("MaxRangeRequestFileSize", "expected a size")),
        };
        if let Some(headers) = get("HTTPHeaders") {
            let map = headers
                .as_object()
                .ok_or_else(|| bad("HTTPHeaders", "expected an object of string arrays"))?;
            for (name, values) in map {
                let header = HeaderName::try_from(name.as_str())
                    .map_err(|_| bad("HTTPHeaders", &format!("{name:?} is not a header name")))?;
                let values = values.as_array().ok_or_else(|| {
                    bad(
                        "HTTPHeaders",
                        &format!("{name}: expected an array of strings"),
                    )
                })?;
                for v in values {
                    let v = v
                        .as_str()
                        .and_then(|s| HeaderValue::from_str(s).ok())
                        .ok_or_else(|| {
                            bad("HTTPHeaders", &format!("{name}: {v} is not a header value"))
                        })?;
                    out.http_headers.push((header.clone(), v));
                }
            }
        }
        out.root_redirect = match get("RootRedirect") {
            None => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad("RootRedirect", "expected a string")),
        };
        Ok(out)
    }
}

/// A size as Kubo's `OptionalBytes` takes it: a number of bytes, or with a unit (`5GiB`,
/// `100MB`, `1KiB`).
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(gateway: Value) -> Config {
        let mut c = Config::default();
        c.extra.insert("Gateway".into(), gateway);
        c
    }

    #[test]
    fn defaults_and_kubo_keys() {
        let d = GatewayConfig::from_config(&Config::default()).unwrap();
        assert_eq!(d.retrieval_timeout, Some(Duration::from_secs(30)));
        assert_eq!(d.max_concurrent_requests, Some(4096));
        assert!(!d.no_fetch && d.deserialized_responses);
        let c = GatewayConfig::from_config(&config(serde_json::json!({
            "NoFetch": true, "DeserializedResponses": false, "RetrievalTimeout": "0s",
            "MaxConcurrentRequests": 2, "MaxRangeRequestFileSize": "5GiB",
            "HTTPHeaders": {"X-Test": ["a", "b"]}, "RootRedirect": "/ipfs/x"
        })))
        .unwrap();
        assert!(c.no_fetch && !c.deserialized_responses);
        assert_eq!(c.retrieval_timeout, None);
        assert_eq!(c.max_concurrent_requests, Some(2));
        assert_eq!(c.max_range_request_file_size, Some(5 << 30));
        assert_eq!(c.http_headers.len(), 2);
        assert_eq!(c.root_redirect.as_deref(), Some("/ipfs/x"));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (v, key) in [
            (serde_json::json!({"NoFetch": "yes"}), "Gateway.NoFetch"),
            (
                serde_json::json!({"RetrievalTimeout": "soon"}),
                "Gateway.RetrievalTimeout",
            ),
            (
                serde_json::json!({"MaxConcurrentRequests": -1}),
                "Gateway.MaxConcurrentRequests",
            ),
            (
                serde_json::json!({"HTTPHeaders": {"X": "y"}}),
                "Gateway.HTTPHeaders",
            ),
        ] {
            let e = GatewayConfig::from_config(&config(v))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
    }
}
