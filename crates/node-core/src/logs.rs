//! Log lines for live subscribers: a [`tracing_subscriber::Layer`] that turns tracing events into
//! [`LogLine`]s on a broadcast channel, for the RPC's event stream (`{"log":"debug"}`).
//!
//! The daemon installs [`LogBus::layer`] next to its console output and hands the same
//! [`LogBus`] to the RPC. The layer does nothing until somebody holds a [`LogSubscription`]:
//! it asks tracing for nothing more verbose than the most verbose level any subscriber wants
//! (the call-site cache is rebuilt when that changes), so a `debug` subscriber makes the node
//! evaluate `debug!` call sites (and pay for them) only while it is connected. `trace` is never offered. The channel holds [`LOG_CAPACITY`] lines;
//! a subscriber that falls further behind loses the oldest (`RecvError::Lagged`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter};

/// Lines the log channel holds for its slowest subscriber.
pub const LOG_CAPACITY: usize = 1024;

/// The levels a subscriber may ask for, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Informational lines and above.
    Info,
    /// Debug lines and above.
    Debug,
}

impl LogLevel {
    const ALL: [LogLevel; 4] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
    ];

    /// Parses `error`, `warn`, `info` or `debug` (ASCII case-insensitive); `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(text))
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }

    /// Whether a tracing event at `level` is at or above this level.
    pub fn admits(self, level: &Level) -> bool {
        *level <= self.tracing_level()
    }

    fn tracing_level(self) -> Level {
        match self {
            LogLevel::Error => Level::ERROR,
            LogLevel::Warn => Level::WARN,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One formatted log event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LogLine {
    /// `ERROR`, `WARN`, `INFO` or `DEBUG`.
    pub level: &'static str,
    /// The module path or target the event was logged from (`cairn_node_core::event_loop`).
    pub target: String,
    /// The message, then the other fields as ` key=value`.
    pub message: String,
    /// When it was logged, in milliseconds since the Unix epoch.
    pub time_ms: u64,
}

#[derive(Debug)]
struct Shared {
    tx: broadcast::Sender<LogLine>,
    /// Subscribers per [`LogLevel`] (by index).
    wanted: [AtomicUsize; 4],
}

impl Shared {
    /// The most verbose level anybody wants, or `None`.
    fn max_wanted(&self) -> Option<LogLevel> {
        LogLevel::ALL
            .into_iter()
            .rev()
            .find(|l| self.wanted[l.index()].load(Ordering::Relaxed) > 0)
    }
}

/// The log channel: the [`Layer`](tracing_subscriber::Layer) that feeds it and the subscriptions
/// that read it. Cheap to clone; every clone is the same channel.
#[derive(Clone, Debug)]
pub struct LogBus {
    shared: Arc<Shared>,
}

impl Default for LogBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LogBus {
    /// A channel of [`LOG_CAPACITY`] lines, with nobody subscribed.
    pub fn new() -> Self {
        LogBus {
            shared: Arc::new(Shared {
                tx: broadcast::channel(LOG_CAPACITY).0,
                wanted: Default::default(),
            }),
        }
    }

    /// The layer to install in the process's tracing subscriber (it carries its own filter, so
    /// it can be combined with a console layer that has an `EnvFilter` of its own):
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    /// let logs = cairn_node_core::LogBus::new();
    /// tracing_subscriber::registry()
    ///     .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::EnvFilter::new("info")))
    ///     .with(logs.layer())
    ///     .init();
    /// ```
    pub fn layer<S: Subscriber>(
        &self,
    ) -> tracing_subscriber::filter::Filtered<LogLayer, LogGate, S> {
        use tracing_subscriber::Layer as _;
        LogLayer {
            shared: self.shared.clone(),
        }
        .with_filter(LogGate {
            shared: self.shared.clone(),
        })
    }

    /// Starts receiving lines at `level` and above. The returned subscription's receiver also
    /// sees lines other subscribers asked for; keep those with [`LogLevel::admits`] (or use
    /// [`LogSubscription::recv`], which does).
    pub fn subscribe(&self, level: LogLevel) -> LogSubscription {
        self.shared.wanted[level.index()].fetch_add(1, Ordering::Relaxed);
        // Call sites cached as uninteresting must be asked again now that more is wanted.
        tracing::callsite::rebuild_interest_cache();
        LogSubscription {
            rx: self.shared.tx.subscribe(),
            level,
            shared: self.shared.clone(),
        }
    }
}

/// Someone reading log lines; dropping it lowers the level the layer asks tracing for.
#[derive(Debug)]
pub struct LogSubscription {
    rx: broadcast::Receiver<LogLine>,
    level: LogLevel,
    shared: Arc<Shared>,
}

impl LogSubscription {
    /// The level this subscription asked for.
    pub fn level(&self) -> LogLevel {
        self.level
    }

    /// The next line at this subscription's level or above. `Err(Lagged(n))` when `n` lines were
    /// lost because this reader fell [`LOG_CAPACITY`] lines behind; `Err(Closed)` never happens
    /// while the subscription (which holds the channel) lives.
    pub async fn recv(&mut self) -> Result<LogLine, broadcast::error::RecvError> {
        loop {
            let line = self.rx.recv().await?;
            let level = match line.level {
                "ERROR" => Level::ERROR,
                "WARN" => Level::WARN,
                "INFO" => Level::INFO,
                _ => Level::DEBUG,
            };
            if self.level.admits(&level) {
                return Ok(line);
            }
        }
    }
}

impl Drop for LogSubscription {
    fn drop(&mut self) {
        self.shared.wanted[self.level.index()].fetch_sub(1, Ordering::Relaxed);
        tracing::callsite::rebuild_interest_cache();
    }
}

/// The per-layer filter of [`LogLayer`]: lets through what the most verbose subscriber wants,
/// nothing while nobody is subscribed.
#[derive(Debug)]
pub struct LogGate {
    shared: Arc<Shared>,
}

impl LogGate {
    fn wants(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event()
            && self
                .shared
                .max_wanted()
                .is_some_and(|l| l.admits(meta.level()))
    }
}

impl<S> Filter<S> for LogGate {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        self.wants(meta)
    }

    /// Cached per call site; [`LogBus::subscribe`] and dropping a [`LogSubscription`] rebuild
    /// the cache, so with nobody subscribed a call site this layer alone would enable costs
    /// nothing.
    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if self.wants(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match self.shared.max_wanted() {
            Some(l) => LevelFilter::from_level(l.tracing_level()),
            None => LevelFilter::OFF,
        })
    }
}

/// Formats events into [`LogLine`]s; built by [`LogBus::layer`].
#[derive(Debug)]
pub struct LogLayer {
    shared: Arc<Shared>,
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if self.shared.tx.receiver_count() == 0 {
            return;
        }
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        if !fields.rest.is_empty() {
            if !message.is_empty() {
                message.push(' ');
            }
            message.push_str(&fields.rest);
        }
        let time_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let _ = self.shared.tx.send(LogLine {
            level: meta.level().as_str(),
            target: meta.target().to_string(),
            message,
            time_ms,
        });
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.sep();
            let _ = write!(self.rest, "{}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.sep();
            let _ = write!(self.rest, "{}={value:?}", field.name());
        }
    }
}

impl Fields {
    fn sep(&mut self) {
        if !self.rest.is_empty() {
            self.rest.push(' ');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[tokio::test]
    async fn lines_reach_subscribers_at_their_level() {
        let bus = LogBus::new();
        let subscriber = tracing_subscriber::registry().with(bus.layer());
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::debug!("nobody listens");
        let mut info = bus.subscribe(LogLevel::Info);
        let mut debug = bus.subscribe(LogLevel::Debug);
        tracing::debug!(peer = "p1", "a debug line");
        tracing::warn!("a warning");
        let first = debug.recv().await.unwrap();
        assert_eq!(first.level, "DEBUG");
        assert_eq!(first.message, "a debug line peer=p1");
        assert_eq!(debug.recv().await.unwrap().message, "a warning");
        // The info subscriber skips the debug line.
        let line = info.recv().await.unwrap();
        assert_eq!((line.level, line.message.as_str()), ("WARN", "a warning"));
        drop(debug);
        drop(info);
        assert_eq!(bus.shared.max_wanted(), None);
        assert_eq!(LogLevel::parse("DEBUG"), Some(LogLevel::Debug));
        assert_eq!(LogLevel::parse("trace"), None);
    }
}
