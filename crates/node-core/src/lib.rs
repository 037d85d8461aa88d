//! The libp2p node behind cairn: its swarm, its repo on disk and the embedding API (filled in by the node-core issue).
