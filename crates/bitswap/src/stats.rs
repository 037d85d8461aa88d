//! Counters behind `bitswap/stat` and the Prometheus metrics (`cairn_bitswap_*`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{Transfer, TransferHook};

/// Bitswap's counters since start. Atomic: read them from any thread.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub blocks_received: Counter,
    pub data_received: Counter,
    pub dup_blocks: Counter,
    pub dup_data: Counter,
    pub messages_received: Counter,
    pub blocks_sent: Counter,
    pub data_sent: Counter,
    pub unwanted_blocks: Counter,
    pub invalid_blocks: Counter,
    pub bad_messages: Counter,
    pub peers_dropped: Counter,
    pub wants_dropped: Counter,
    pub wants_reasked: Counter,
    pub provider_searches: Counter,
    pub wants_rerouted: Counter,
    pub wantlist: Gauge,
    pub peers: Gauge,
    /// Told of every block received or sent, once [`crate::Bitswap::on_transfer`] set it.
    pub hook: HookSlot,
}

/// Where the transfer hook lives (a `OnceLock`, so reading it costs one atomic load).
#[derive(Default)]
pub(crate) struct HookSlot(std::sync::OnceLock<TransferHook>);

impl HookSlot {
    pub(crate) fn set(&self, hook: TransferHook) -> Result<(), TransferHook> {
        self.0.set(hook)
    }
}

impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "HookSlot(set)"
        } else {
            "HookSlot(unset)"
        })
    }
}

impl Stats {
    /// Reports a transfer to the hook, if any; `make` runs only when there is one.
    pub(crate) fn transfer(&self, make: impl FnOnce() -> Transfer) {
        if let Some(hook) = self.hook.0.get() {
            hook(make());
        }
    }

    pub(crate) fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cairn_bitswap");
        r.register(
            "blocks_received",
            "Blocks received from peers (duplicates included)",
            self.blocks_received.clone(),
        );
        r.register(
            "data_received_bytes",
            "Bytes of blocks received from peers",
            self.data_received.clone(),
        );
        r.register(
            "dup_blocks_received",
            "Blocks received that were already received",
            self.dup_blocks.clone(),
        );
        r.register(
            "dup_data_received_bytes",
            "Bytes of duplicate blocks received",
            self.dup_data.clone(),
        );
        r.register(
            "messages_received",
            "Bitswap messages received",
            self.messages_received.clone(),
        );
        r.register(
            "blocks_sent",
            "Blocks sent to peers",
            self.blocks_sent.clone(),
        );
        r.register(
            "data_sent_bytes",
            "Bytes of blocks sent to peers",
            self.data_sent.clone(),
        );
        r.register(
            "unwanted_blocks",
            "Blocks received that nobody asked for (including corrupt ones)",
            self.unwanted_blocks.clone(),
        );
        r.register(
            "invalid_blocks",
            "Blocks received whose prefix could not be hashed",
            self.invalid_blocks.clone(),
        );
        r.register(
            "bad_messages",
            "Messages that could not be decoded",
            self.bad_messages.clone(),
        );
        r.register(
            "peers_dropped",
            "Peers disconnected for sending unrequested or invalid blocks",
            self.peers_dropped.clone(),
        );
        r.register(
            "wants_dropped",
            "Wants refused because a peer's ledger was full",
            self.wants_dropped.clone(),
        );
        r.register(
            "wants_reasked",
            "Wants asked again because the peer chosen for them was silent for the rebroadcast interval",
            self.wants_reasked.clone(),
        );
        r.register(
            "provider_searches",
            "Provider lookups started for wanted blocks",
            self.provider_searches.clone(),
        );
        r.register(
            "wants_rerouted",
            "Want-blocks sent again because the peer asked was late (to another peer, or to an idle late one)",
            self.wants_rerouted.clone(),
        );
        r.register(
            "wantlist_length",
            "CIDs this node is fetching",
            self.wantlist.clone(),
        );
        r.register(
            "peers",
            "Connected peers that speak Bitswap",
            self.peers.clone(),
        );
    }
}
