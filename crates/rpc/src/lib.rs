//! The Kubo-compatible `/api/v0` HTTP RPC (filled in by the rpc issue).
