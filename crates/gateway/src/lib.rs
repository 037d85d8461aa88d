//! The HTTP gateway of cairn: what a Kubo daemon serves on `Addresses.Gateway`, so browsers,
//! web apps and Helia's HTTP clients can read content from the node.
//!
//! - **Path gateway** (<https://specs.ipfs.tech/http-gateways/path-gateway/>): `GET`/`HEAD
//!   /ipfs/{cid}[/path]` serves UnixFS files (content type from the name, else sniffed from
//!   the bytes; `Range`; `ETag` and `If-None-Match`; `Cache-Control: immutable`), directories
//!   (their `index.html`, else an HTML listing of names, sizes and CIDs), `?filename=` and
//!   `?download=true`, and tar archives (`format=tar`).
//! - **Trustless gateway** (<https://specs.ipfs.tech/http-gateways/trustless-gateway/>): one
//!   block with `?format=raw` or `Accept: application/vnd.ipld.raw`; a CARv1 in depth-first
//!   order with `?format=car` or `Accept: application/vnd.ipld.car`, with `dag-scope`
//!   (`block`, `entity`, `all`) and `entity-bytes`.
//! - **Limits as Kubo 0.37+**: `Gateway.MaxConcurrentRequests` (429 with `Retry-After`
//!   beyond it), `Gateway.RetrievalTimeout` (504 before the first byte; after it, the body is
//!   cut short and the connection closed, so no cache keeps a truncated answer),
//!   `Gateway.MaxRequestDuration`; `Gateway.NoFetch` serves only local blocks.
//!
//! Blocks are read through [`Node`]: a stored block in place (through the node's store handle,
//! as the RPC's `block/get` does), a missing one fetched over Bitswap (unless `NoFetch`). The
//! gateway never writes and never serves RPC commands (`/api/v0` is 404 here).
//! Status codes follow the specs: 400 for a bad CID or parameter, 404 for a path that does not
//! exist or a block that is not available without fetching, 504 when retrieval times out, 502
//! when it fails otherwise, 406 for deserialized responses when `DeserializedResponses` is
//! false. An `/ipns/<name>/...` path is resolved through the node's IPNS (the DHT) and served
//! as the content path it names (404 when no valid record is found, 400 for a malformed or
//! DNSLink name, which cairn does not resolve).
//!
//! # Memory bound
//! Per request: one block in flight plus a few queued chunks ([`cairn_node_core::files::STREAM_BUFFER`]);
//! a CAR also holds the set of CIDs it sent (about 100 bytes a block). Requests are capped by
//! `Gateway.MaxConcurrentRequests`.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use cairn_node_core::Node;

pub mod config;
mod handler;
mod listing;
pub mod metrics;
pub mod request;
pub mod sniff;

pub use config::GatewayConfig;
pub use metrics::GatewayMetrics;

/// Errors of the gateway: its configuration, and requests it refuses before touching content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// A `Gateway` config value is malformed; the message names the key.
    #[error("invalid gateway config: {0}")]
    Config(String),
    /// A request parameter is not valid (answered with 400 and this text).
    #[error("{0}")]
    BadRequest(String),
}

impl GatewayError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Builds the gateway's router over a [`Node`].
///
/// ```no_run
/// # async fn run(node: cairn_node_core::Node) -> Result<(), Box<dyn std::error::Error>> {
/// let router = cairn_gateway::Gateway::new(node, cairn_gateway::GatewayConfig::default()).router();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, router).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Gateway {
    node: Node,
    config: GatewayConfig,
    metrics: GatewayMetrics,
}

impl Gateway {
    /// A gateway over `node` with `config` (see [`GatewayConfig::from_config`]) and metrics of
    /// its own.
    pub fn new(node: Node, config: GatewayConfig) -> Self {
        Gateway {
            node,
            config,
            metrics: GatewayMetrics::default(),
        }
    }

    /// Counts into `metrics` (shared with the registry that exports them).
    pub fn metrics(mut self, metrics: GatewayMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The axum router: every path and method, answered as the module documentation says.
    pub fn router(self) -> Router {
        let slots = self
            .config
            .max_concurrent_requests
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
        let inner = Arc::new(handler::Inner {
            node: self.node,
            config: self.config,
            metrics: self.metrics,
            slots,
        });
        Router::new().fallback(handler::serve).with_state(inner)
    }
}
