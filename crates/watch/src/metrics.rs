//! The watcher's Prometheus metrics, registered into the RPC's registry by
//! [`WatchHandle::register_metrics`](crate::WatchHandle::register_metrics):
//!
//! | metric | what it counts |
//! |---|---|
//! | `cairn_watch_entries{state}` | entries by state now (`settling`, `importing`, `imported`, `failed`) |
//! | `cairn_watch_imports_total` | imports that finished (a changed entry imported again counts again) |
//! | `cairn_watch_import_failures_total` | imports that failed |
//! | `cairn_watch_imported_bytes_total` | file bytes read by finished imports |
//! | `cairn_watch_unpins_total` | pins removed for deleted or replaced entries |
//! | `cairn_watch_scans_total` | full scans of the folder (start, periodic, refresh, after lost events) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::state::EntryState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabel {
    state: &'static str,
}

/// The watcher's counters and gauges; clones share them.
#[derive(Clone, Debug, Default)]
pub(crate) struct WatchMetrics {
    entries: Family<StateLabel, Gauge>,
    pub imports: Counter,
    pub failures: Counter,
    pub bytes: Counter,
    pub unpins: Counter,
    pub scans: Counter,
}

impl WatchMetrics {
    /// Sets the per-state gauges from counts in [`EntryState::ALL`] order.
    pub fn set_counts(&self, counts: [usize; 4]) {
        for (state, n) in EntryState::ALL.iter().zip(counts) {
            self.entries
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(n as i64);
        }
    }

    /// Registers everything under the `cairn_watch_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cairn_watch");
        r.register(
            "entries",
            "Entries of the watched import folder by state (settling, importing, imported, failed)",
            self.entries.clone(),
        );
        r.register(
            "imports",
            "Imports of watched entries that finished",
            self.imports.clone(),
        );
        r.register(
            "import_failures",
            "Imports of watched entries that failed",
            self.failures.clone(),
        );
        r.register(
            "imported_bytes",
            "File bytes read by finished imports of watched entries",
            self.bytes.clone(),
        );
        r.register(
            "unpins",
            "Pins removed for deleted or replaced watched entries",
            self.unpins.clone(),
        );
        r.register(
            "scans",
            "Full scans of the watched folder",
            self.scans.clone(),
        );
    }
}
