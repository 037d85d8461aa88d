//! # cairn
//!
//! An embeddable, Kubo-compatible IPFS node in Rust. This crate is the facade: it re-exports the
//! crates that make up cairn, so an embedder depends on `cairn` alone.
//!
//! - [`blockstore`]: the content-addressed, hash-verified sled blockstore with pins and GC.
//! - [`bootstrap`]: joining the network (bootstrap lists, retry, private networks).
//! - [`node`]: the libp2p node and its embedding API.
//! - [`rpc`]: the Kubo-compatible `/api/v0` HTTP RPC.

pub use cairn_bitswap as bitswap;
pub use cairn_blockstore as blockstore;
pub use cairn_bootstrap as bootstrap;
pub use cairn_gateway as gateway;
pub use cairn_node_core as node;
pub use cairn_rpc as rpc;
pub use cairn_watch as watch;

/// cairn's version, as the binary and the RPC report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
