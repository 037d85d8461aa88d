//! Kubo's security model for the RPC: `API.Authorizations` (Bearer/Basic secrets with path
//! prefixes, checked before anything else), and the Origin/Referer/User-Agent checks that stop a
//! browser page from driving the API cross-site, with `API.HTTPHeaders` feeding CORS.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use cairn_node_core::config::Authorization;

use crate::error::text_response;

/// Kubo's exact refusal text.
pub const ACCESS_DENIED: &str = "Kubo RPC Access Denied: Please provide a valid authorization token as defined in the API.Authorizations configuration.\n";

/// The checks for one API listener.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// Accepted `Authorization` header values and the path prefixes each may call.
    auth: Vec<(String, Vec<String>)>,
    /// Accepted `Authorization` header values and the name of their `API.Authorizations` entry.
    users: Vec<(String, String)>,
    /// Whether any authorization is configured (then every request needs one).
    auth_enabled: bool,
    /// Origins a browser may call from (`*` for any).
    origins: Vec<String>,
    /// Extra headers copied onto every response.
    headers: Vec<(String, String)>,
    /// `Access-Control-Allow-Methods` (default `POST`).
    allow_methods: Option<String>,
    /// `Access-Control-Allow-Credentials`.
    allow_credentials: Option<String>,
}

/// Kubo's `ConvertAuthSecret`: the `Authorization` header a secret stands for, or `None` for an
/// unknown type (such an entry is ignored, as Kubo ignores it).
pub fn header_for_secret(secret: &str) -> Option<String> {
    match secret.split_once(':') {
        None => Some(format!("Bearer {secret}")),
        Some(("bearer", token)) => Some(format!("Bearer {token}")),
        Some(("basic", rest)) if rest.contains(':') => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(rest)
        )),
        Some(("basic", b64)) => Some(format!("Basic {b64}")),
        Some(_) => None,
    }
}

impl Security {
    /// The checks for an API listening on `port`, from `API.Authorizations` and `API.HTTPHeaders`.
    pub fn new(
        port: u16,
        authorizations: &BTreeMap<String, Authorization>,
        http_headers: &BTreeMap<String, Vec<String>>,
    ) -> Self {
        let auth: Vec<(String, Vec<String>)> = authorizations
            .values()
            .filter_map(|a| header_for_secret(&a.auth_secret).map(|h| (h, a.allowed_paths.clone())))
            .collect();
        let users = authorizations
            .iter()
            .filter_map(|(name, a)| header_for_secret(&a.auth_secret).map(|h| (h, name.clone())))
            .collect();
        let mut origins: Vec<String> = http_headers
            .get("Access-Control-Allow-Origin")
            .cloned()
            .unwrap_or_default();
        for scheme in ["http", "https"] {
            for host in ["127.0.0.1", "[::1]", "localhost"] {
                origins.push(format!("{scheme}://{host}:{port}"));
            }
        }
        let headers = http_headers
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "Access-Control-Allow-Origin"
                        | "Access-Control-Allow-Methods"
                        | "Access-Control-Allow-Credentials"
                )
            })
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect();
        Security {
            auth_enabled: !authorizations.is_empty(),
            auth,
            users,
            origins,
            headers,
            allow_methods: http_headers
                .get("Access-Control-Allow-Methods")
                .map(|v| v.join(", ")),
            allow_credentials: http_headers
                .get("Access-Control-Allow-Credentials")
                .and_then(|v| v.first().cloned()),
        }
    }

    /// Whether `API.Authorizations` is in force.
    pub fn auth_enabled(&self) -> bool {
        self.auth_enabled
    }

    /// The authorization check: `None` to go on, or Kubo's 403.
    pub fn check_auth(&self, path: &str, headers: &HeaderMap) -> Option<Response> {
        if !self.auth_enabled {
            return None;
        }
        let given = headers.get("authorization").and_then(|v| v.to_str().ok());
        let allowed = given.is_some_and(|given| {
            self.auth.iter().any(|(expected, paths)| {
                expected == given
                    && (path == "/api/v0/version"
                        || paths.iter().any(|p| path.starts_with(p.as_str())))
            })
        });
        (!allowed).then(|| text_response(StatusCode::FORBIDDEN, ACCESS_DENIED.into()))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == "*" || o == origin)
    }

    /// The `API.Authorizations` entry whose secret the request presents, by name (for the audit
    /// log); `None` without one.
    pub fn user(&self, headers: &HeaderMap) -> Option<&str> {
        let given = headers.get("authorization")?.to_str().ok()?;
        self.users
            .iter()
            .find(|(expected, _)| expected == given)
            .map(|(_, name)| name.as_str())
    }

    /// The cross-site checks: `None` to go on, or `403 - Forbidden`.
    pub fn check_origin(&self, headers: &HeaderMap) -> Option<Response> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let forbidden = || {
            Some(text_response(
                StatusCode::FORBIDDEN,
                "403 - Forbidden\n".into(),
            ))
        };
        if let Some(origin) = get("origin")
            && !self.origin_allowed(origin)
        {
            tracing::warn!(%origin, "API blocked request from a disallowed Origin (possible CSRF)");
            return forbidden();
        }
        if let Some(referer) = get("referer") {
            let origin = referer_origin(referer);
            if !origin.is_some_and(|o| self.origin_allowed(&o)) {
                tracing::warn!(%referer, "API blocked request from a disallowed Referer (possible CSRF)");
                return forbidden();
            }
        }
        if get("origin").is_none() && get("referer").is_none() {
            let ua = get("user-agent").unwrap_or_default();
            if ua.starts_with("Mozilla") && !ua.contains("Electron") {
                tracing::warn!(user_agent = %ua, "API blocked a browser request without Origin or Referer (possible CSRF)");
                return forbidden();
            }
        }
        None
    }

    /// Adds CORS headers (for an allowed Origin) and `API.HTTPHeaders` to a response.
    pub fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        if let Some(origin) = request.get("origin").and_then(|v| v.to_str().ok()) {
            if self.origin_allowed(origin) {
                if let Ok(v) = HeaderValue::from_str(origin) {
                    response.insert("access-control-allow-origin", v);
                }
                if let Some(c) = self
                    .allow_credentials
                    .as_deref()
                    .and_then(|c| HeaderValue::from_str(c).ok())
                {
                    response.insert("access-control-allow-credentials", c);
                }
            }
            response.append("vary", HeaderValue::from_static("Origin"));
        }
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                axum::http::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                response.append(k, v);
            }
        }
    }

    /// The methods a CORS preflight is told are allowed.
    pub fn allow_methods(&self) -> &str {
        self.allow_methods.as_deref().unwrap_or("POST")
    }
}

/// `scheme://host[:port]` of a Referer URL.
fn referer_origin(referer: &str) -> Option<String> {
    let (scheme, rest) = referer.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !host.is_empty()).then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_become_headers_as_in_kubo() {
        assert_eq!(header_for_secret("bearer:tok").unwrap(), "Bearer tok");
        assert_eq!(header_for_secret("plain").unwrap(), "Bearer plain");
        assert_eq!(
            header_for_secret("basic:user:pass").unwrap(),
            "Basic dXNlcjpwYXNz"
        );
        assert_eq!(
            header_for_secret("basic:dXNlcjpwYXNz").unwrap(),
            "Basic dXNlcjpwYXNz"
        );
        assert_eq!(header_for_secret("digest:x"), None);
    }

    #[test]
    fn referer_origins() {
        assert_eq!(
            referer_origin("http://127.0.0.1:5001/webui/x?y").unwrap(),
            "http://127.0.0.1:5001"
        );
        assert_eq!(referer_origin("nonsense"), None);
    }
}
