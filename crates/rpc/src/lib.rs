//! # cairn-rpc
//!
//! The Kubo-compatible `/api/v0` HTTP RPC, on axum. Programs written for Kubo (kubo-rpc-client,
//! ipfs-http-client, the `ipfs` CLI with `--api`, Rust's ipfs-api crates) talk to cairn unchanged:
//! POST only, `arg=` parameters, options by name or alias, multipart file parts, errors as
//! `{"Message","Code","Type":"error"}`, NDJSON streams with `X-Chunked-Output: 1`, raw output with
//! `X-Stream-Output: 1`, errors after output began in the `X-Stream-Error` trailer.
//!
//! Security is Kubo's: `API.Authorizations` (Bearer/Basic secrets with allowed path prefixes),
//! the Origin/Referer/User-Agent checks against cross-site use, `API.HTTPHeaders` for CORS, and
//! body size limits. `GET /debug/metrics/prometheus` serves metrics and `GET /health` says `OK`
//! (503 once shutdown has begun; `?verbose` lists the [`supervisor`]'s services).
//!
//! One cairn extension: `/api/v0/cairn/events`, a WebSocket streaming the node's events, pubsub
//! messages and log lines as JSON, under the same authorization and Origin rules, with a bounded
//! queue per client (see [`events`]). And the daemon's status page, `GET /cairn/status` (see
//! [`status`]): a small embedded page that shows the node's state live, from the
//! `cairn/status` snapshot command and that event stream.
//!
//! ```no_run
//! # async fn demo(node: cairn_node_core::Node, config: cairn_node_core::Config) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5001").await?;
//! let port = listener.local_addr()?.port();
//! let router = cairn_rpc::ApiBuilder::new(node.clone(), config).port(port).build();
//! cairn_rpc::serve(listener, router, node.shutdown_token()).await
//! # }
//! ```

pub mod addrs;
pub mod audit;
pub mod client_gone;
mod commands;
pub mod error;
pub mod events;
pub mod limits;
pub mod long_uri;
mod metrics;
pub mod request;
pub mod response;
pub mod security;
mod server;
pub mod status;
pub mod supervisor;
pub mod tls;

pub use commands::COMMANDS;
pub use error::{ApiError, ErrorCode};
pub use limits::{Limits, ServeOptions};
pub use server::{
    ApiBuilder, ApiState, BuildError, InFlightRequests, serve, serve_tls, serve_until, serve_with,
};
