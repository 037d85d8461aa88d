//! Joining the network: bootstrap lists, retry with backoff, and private-network keys (filled in by the bootstrap issue).
