//! The gateway's own metrics, registered into the daemon's Prometheus registry.
//!
//! Kubo's names where Kubo has the metric (`ipfs_http_gw_responses_total{code}`,
//! `ipfs_http_gw_concurrent_requests`, `ipfs_http_gw_retrieval_timeouts_total{code,truncated}`),
//! so dashboards made for Kubo's gateway keep working; cairn's own under `cairn_gateway_`:
//! bytes sent and time to first byte by response kind.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeoutLabels {
    code: u16,
    truncated: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

fn ttfb_histogram() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The gateway's counters. Cheap to clone (each metric is shared); register once per registry
/// with [`GatewayMetrics::register`].
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    responses: Family<CodeLabel, Counter>,
    concurrent: Gauge,
    timeouts: Family<TimeoutLabels, Counter>,
    bytes: Counter,
    ttfb: Family<KindLabel, Histogram, fn() -> Histogram>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        GatewayMetrics {
            responses: Family::default(),
            concurrent: Gauge::default(),
            timeouts: Family::default(),
            bytes: Counter::default(),
            ttfb: Family::new_with_constructor(ttfb_histogram),
        }
    }
}

impl GatewayMetrics {
    /// Adds the metrics to `registry` (a registry may be given the same metrics as another:
    /// each RPC listener's `/debug/metrics/prometheus` shows them).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ipfs_http_gw_responses",
            "Gateway responses by HTTP status code",
            self.responses.clone(),
        );
        registry.register(
            "ipfs_http_gw_concurrent_requests",
            "Gateway requests being served now",
            self.concurrent.clone(),
        );
        registry.register(
            "ipfs_http_gw_retrieval_timeouts",
            "Gateway requests ended by Gateway.RetrievalTimeout or MaxRequestDuration, by status and whether the body was cut short",
            self.timeouts.clone(),
        );
        let cairn = registry.sub_registry_with_prefix("cairn_gateway");
        cairn.register(
            "response_bytes",
            "Body bytes the gateway sent",
            self.bytes.clone(),
        );
        cairn.register(
            "time_to_first_byte_seconds",
            "Time from a gateway request to its status and first body bytes, by response kind",
            self.ttfb.clone(),
        );
    }

    pub(crate) fn response(&self, code: u16) {
        self.responses.get_or_create(&CodeLabel { code }).inc();
    }

    pub(crate) fn timeout(&self, code: u16, truncated: bool) {
        self.timeouts
            .get_or_create(&TimeoutLabels { code, truncated })
            .inc();
    }

    pub(crate) fn sent(&self, n: usize) {
        self.bytes.inc_by(n as u64);
    }

    pub(crate) fn first_byte(&self, kind: &'static str, seconds: f64) {
        self.ttfb
            .get_or_create(&KindLabel { kind })
            .observe(seconds);
    }

    pub(crate) fn concurrent(&self) -> &Gauge {
        &self.concurrent
    }

    /// Responses sent with status `code` so far (for tests and the status page).
    pub fn responses_with(&self, code: u16) -> u64 {
        self.responses.get_or_create(&CodeLabel { code }).get()
    }

    /// Retrieval timeouts so far with status `code`, `truncated` or not.
    pub fn timeouts_with(&self, code: u16, truncated: bool) -> u64 {
        self.timeouts
            .get_or_create(&TimeoutLabels { code, truncated })
            .get()
    }
}
