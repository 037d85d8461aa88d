//! `GET /cairn/status`: the daemon's status page, served on the RPC listener (a cairn extension;
//! Kubo has no such page).
//!
//! The page is three static files embedded in the binary (`status/status.html`, `status.css`,
//! `status.js`, plus a small icon): no build step and nothing fetched from anywhere but this
//! listener. Its script fetches the node's state from `POST /api/v0/cairn/status` (the snapshot
//! documented in the `cairn/status` command) when it loads and every few seconds (it samples the
//! bandwidth totals into a small graph from those fetches), and follows the event stream
//! `/api/v0/cairn/events` ([`crate::events`]) to update the peers, bootstrap and service rows the
//! moment something changes, re-fetching the counters after each burst of events.
//!
//! ## Security
//!
//! The page and its assets obey the RPC's rules ([`crate::security`]), in the same order:
//!
//! 1. `API.Authorizations` first: without a valid secret whose allowed paths cover
//!    `/cairn/status`, Kubo's 403 and text.
//! 2. Origin and Referer: a request that names an origin the RPC does not allow (its own
//!    `http(s)://{127.0.0.1,[::1],localhost}:<port>` and `API.HTTPHeaders`'
//!    `Access-Control-Allow-Origin`) is refused with `403 - Forbidden`, as a command would be.
//!    A browser that opens the page from its address bar sends neither header; that navigation
//!    is allowed (the RPC refuses it for commands, which change state; this page changes
//!    nothing and its own data requests carry the page's origin, which the RPC checks), unless
//!    the browser says (`Sec-Fetch-Site`) it came from another site with its referrer stripped.
//!
//! The page's own calls carry `Origin: http://127.0.0.1:<port>` (or whichever host the page was
//! opened on), which the RPC allows by default, as Kubo allows its web UI. Every answer has a
//! strict [`CSP`] (everything from this listener only, nothing inline, no framing),
//! `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY`.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::text_response;
use crate::server::ApiState;

/// Where the page is served.
pub const PATH: &str = "/cairn/status";

/// The Content-Security-Policy of the page and its assets: scripts, styles, images and
/// connections (the snapshot fetches and the event WebSocket) from this listener only, nothing
/// inline, no plugins, no forms, and no framing by any page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page and its assets: (file name under [`PATH`], content type, contents).
pub const ASSETS: &[(&str, &str, &str)] = &[
    (
        "status.css",
        "text/css; charset=utf-8",
        include_str!("status/status.css"),
    ),
    (
        "status.js",
        "text/javascript; charset=utf-8",
        include_str!("status/status.js"),
    ),
    ("icon.svg", "image/svg+xml", include_str!("status/icon.svg")),
];

/// The page itself.
pub const HTML: &str = include_str!("status/status.html");

/// The asset a request path names: the page for [`PATH`] (with or without a trailing slash),
/// else one of [`ASSETS`].
fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    let rest = path.strip_prefix(PATH)?;
    if rest.is_empty() || rest == "/" {
        return Some(("text/html; charset=utf-8", HTML));
    }
    let name = rest.strip_prefix('/')?;
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, ty, body)| (*ty, *body))
}

/// Whether a request with neither Origin nor Referer is a navigation the browser says came
/// from elsewhere (`Sec-Fetch-Site: cross-site` or `same-site`, i.e. a link whose referrer was
/// stripped). Browsers that do not send the header are let through, as for the address bar.
fn arrived_from_elsewhere(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| !matches!(site, "none" | "same-origin"))
}

/// `GET`/`HEAD` of the page or one of its assets, with the RPC's checks (see the
/// [module docs](self)).
pub(crate) async fn handler(
    State(state): State<ApiState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let security = &state.inner.security;
    let path = uri.path();
    let mut response = if let Some(denied) = security.check_auth(path, &headers) {
        denied
    } else if headers.contains_key(header::ORIGIN) || headers.contains_key(header::REFERER) {
        security
            .check_origin(&headers)
            .unwrap_or_else(|| serve(&method, path))
    } else if arrived_from_elsewhere(&headers) {
        tracing::warn!("status page: refused a navigation from another site without a Referer");
        text_response(StatusCode::FORBIDDEN, "403 - Forbidden\n".into())
    } else {
        serve(&method, path)
    };
    security.decorate(&headers, response.headers_mut());
    state
        .inner
        .metrics
        .record("cairn/status-page", response.status(), started);
    response
}

/// The asset `path` names, with the page's headers; 404 for an unknown one, 405 for a method
/// other than `GET`/`HEAD`.
fn serve(method: &Method, path: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = text_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 - Method Not Allowed\n".into(),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let Some((content_type, body)) = asset(path) else {
        return text_response(StatusCode::NOT_FOUND, "404 page not found\n".into());
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // The assets change with the binary: always revalidated, never served stale after an upgrade.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_page_and_its_assets() {
        assert_eq!(asset("/cairn/status").unwrap().1, HTML);
        assert_eq!(asset("/cairn/status/").unwrap().1, HTML);
        assert_eq!(
            asset("/cairn/status/status.js").unwrap().0,
            "text/javascript; charset=utf-8"
        );
        assert!(asset("/cairn/status/../status.js").is_none());
        assert!(asset("/cairn/statusx").is_none());
        assert!(asset("/cairn/status/nope.js").is_none());
    }

    /// Everything the page loads comes from [`ASSETS`] under [`PATH`], and nothing is inline
    /// (the CSP forbids inline scripts and styles). `tests/status.rs` checks that no served
    /// file names a URL elsewhere.
    #[test]
    fn the_page_loads_only_its_own_assets() {
        for (name, _, _) in ASSETS {
            assert!(HTML.contains(&format!("{PATH}/{name}")), "{name}");
        }
        assert!(!HTML.contains("<script>"), "inline script");
        assert!(!HTML.contains("style="), "inline style");
        assert!(!HTML.contains("<style"), "inline style");
    }

    #[test]
    fn elsewhere_means_another_site() {
        let mut h = HeaderMap::new();
        assert!(!arrived_from_elsewhere(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("none"));
        assert!(!arrived_from_elsewhere(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(arrived_from_elsewhere(&h));
    }
}
