//! TLS for cairn's HTTP listeners, from a PEM certificate chain and key on disk that may be
//! renewed while the daemon runs.
//!
//! The files are named in the config's `Cairn.TLS` object (cairn's own section; Kubo ignores
//! it):
//!
//! ```json
//! "Cairn": { "TLS": { "CertFile": "/etc/cairn/fullchain.pem", "KeyFile": "/etc/cairn/privkey.pem" } }
//! ```
//!
//! Without it the listeners speak plain HTTP, as Kubo's do. With it, [`ReloadingAcceptor`] loads
//! the pair once at start (a bad pair is a [`TlsError`] naming the file and the reason) and
//! then watches the files' directories: once changes have settled for [`SETTLE`], the pair is
//! read again and, if it is good, served to every new connection (connections already open
//! keep the certificate they were made with). A bad renewal — unreadable, not PEM, no key, a key
//! that does not belong to the certificate — leaves the old pair in use, is logged as a warning
//! and counted ([`ReloadingAcceptor::reload_failures`]). The directory, not the file, is watched
//! because renewals usually replace files by renaming over them (certbot, Kubernetes secrets),
//! which a watch on the old file's inode would never see.
//!
//! The crypto provider is aws-lc-rs, named explicitly: libp2p's QUIC already builds it, and
//! naming it means no process-wide default provider has to be installed.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use cairn_node_core::Config;
use notify::Watcher as _;
use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

/// How long a TLS handshake may take before the connection is dropped: long enough for a slow
/// client on a bad link, short enough that idle sockets do not pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the watched files must stay unchanged before they are read again. Renewals write
/// two files (and some tools write each in several steps); reading after the first event would
/// pair the new certificate with the old key.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Where the certificate and key are: the config's `Cairn.TLS` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `CertFile`: the PEM certificate chain, leaf first, as certbot's `fullchain.pem`.
    #[serde(rename = "CertFile")]
    pub cert_path: PathBuf,
    /// `KeyFile`: the PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    #[serde(rename = "KeyFile")]
    pub key_path: PathBuf,
}

impl TlsConfig {
    /// Reads `Cairn.TLS` from the config's sections that cairn's config types do not model.
    ///
    /// Returns `Ok(None)` when `Cairn` or `Cairn.TLS` is absent or `null` (plain HTTP), and
    /// [`TlsError::Config`] when `Cairn.TLS` is there but is not an object with string
    /// `CertFile` and `KeyFile`. Relative paths stay relative (to the daemon's working
    /// directory), as Kubo's file paths in the config do.
    pub fn from_config(config: &Config) -> Result<Option<Self>, TlsError> {
        let Some(tls) = config.extra.get("Cairn").and_then(|c| c.get("TLS")) else {
            return Ok(None);
        };
        if tls.is_null() {
            return Ok(None);
        }
        serde_json::from_value(tls.clone())
            .map(Some)
            .map_err(TlsError::Config)
    }
}

/// Why a certificate and key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// `Cairn.TLS` in the config is malformed.
    #[error("Cairn.TLS in the config: {0}")]
    Config(#[source] serde_json::Error),
    /// A file could not be read (missing, permissions, ...).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The certificate file holds no `CERTIFICATE` PEM block.
    #[error("{}: no PEM certificate in the file", path.display())]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The key file holds no private key PEM block.
    #[error("{}: no PEM private key in the file", path.display())]
    NoKey {
        /// The key file.
        path: PathBuf,
    },
    /// A PEM block is malformed (bad base64, missing end line, ...).
    #[error("{}: bad PEM: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is of a kind the crypto provider cannot sign with, or is corrupt.
    #[error("{}: unusable private key: {source}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The key does not belong to the leaf certificate, or the certificate is not valid DER.
    #[error("{} does not go with {}: {source}", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The TLS configuration could not be built (protocol versions the provider lacks).
    #[error("TLS configuration: {0}")]
    Rustls(#[source] rustls::Error),
    /// The files' directories could not be watched for renewals.
    #[error("cannot watch {} for certificate renewals: {source}", path.display())]
    Watch {
        /// The directory.
        path: PathBuf,
        /// What the watcher said.
        source: notify::Error,
    },
}

/// Reads and checks a certificate chain and its key.
fn load(config: &TlsConfig, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let pem_error = |path: &Path, e: rustls::pki_types::pem::Error| TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let cert_pem = read(&config.cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&config.cert_path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: config.cert_path.clone(),
        });
    }
    let key_pem = read(&config.key_path)?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                path: config.key_path.clone(),
            });
        }
        Err(e) => return Err(pem_error(&config.key_path, e)),
    };
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::Key {
            path: config.key_path.clone(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // A provider that cannot derive the public key (not the case for aws-lc-rs's key
        // types) leaves the pairing unchecked; rustls's own `from_der` accepts that too.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(source) => Err(TlsError::Mismatch {
            cert: config.cert_path.clone(),
            key: config.key_path.clone(),
            source,
        }),
    }
}

/// The state the handshakes and the reloader share.
struct Shared {
    config: TlsConfig,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    reloads: Counter,
    reload_failures: Counter,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("reloads", &self.reloads)
            .field("reload_failures", &self.reload_failures)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Shared {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

impl Shared {
    /// Reads the pair again and swaps it in if it is good.
    fn reload(&self) -> Result<bool, TlsError> {
        let fresh = load(&self.config, &self.provider)?;
        let mut current = self.current.write();
        if current.cert == fresh.cert {
            // Touched but not renewed (or the events of a renewal already loaded).
            return Ok(false);
        }
        *current = Arc::new(fresh);
        self.reloads.inc();
        Ok(true)
    }

    /// [`Shared::reload`] for the watcher: outcomes go to the log and the counters.
    fn reload_logged(&self) {
        match self.reload() {
            Ok(true) => tracing::info!(
                cert = %self.config.cert_path.display(),
                "TLS certificate reloaded; new connections use it"
            ),
            Ok(false) => {}
            Err(e) => {
                self.reload_failures.inc();
                tracing::warn!("TLS certificate not reloaded, the previous one stays in use: {e}");
            }
        }
    }
}

/// Accepts TLS connections with the current certificate of a [`TlsConfig`], reloading it when
/// its files change (see the module docs).
///
/// Dropping it stops the watch.
pub struct ReloadingAcceptor {
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    handshake_timeout: Duration,
    // Held for its drop: the watcher's event thread owns the channel's sender, so dropping the
    // watcher ends the reload thread too.
    _watcher: notify::RecommendedWatcher,
}

impl fmt::Debug for ReloadingAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingAcceptor")
            .field("shared", &self.shared)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl ReloadingAcceptor {
    /// Loads the certificate and key and starts watching their directories.
    ///
    /// Offers ALPN `h2` and `http/1.1`, TLS 1.3 and 1.2. Errors: the pair cannot be read or
    /// used ([`TlsError::Read`], [`TlsError::NoCertificate`], [`TlsError::NoKey`],
    /// [`TlsError::Pem`], [`TlsError::Key`], [`TlsError::Mismatch`]) or a directory cannot be
    /// watched ([`TlsError::Watch`]). Needs no async runtime: reloads run on a thread of their
    /// own, as they read files.
    pub fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let first = load(config, &provider)?;
        let shared = Arc::new(Shared {
            config: config.clone(),
            provider: provider.clone(),
            current: RwLock::new(Arc::new(first)),
            reloads: Counter::default(),
            reload_failures: Counter::default(),
        });
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_cert_resolver(shared.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let watcher = watch(&shared)?;
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            shared,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            _watcher: watcher,
        })
    }

    /// Replaces the handshake timeout (default [`HANDSHAKE_TIMEOUT`]).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Does the server side of the TLS handshake on an accepted connection.
    ///
    /// Errors: the handshake failed (the client does not trust the certificate, speaks no TLS,
    /// ...) or took longer than the handshake timeout ([`io::ErrorKind::TimedOut`]). Run it in
    /// the connection's task, not the accept loop, so that one slow client does not hold up
    /// the others.
    pub async fn accept<IO>(&self, io: IO) -> io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(io))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }

    /// Reads the files again now, as a change to them would; the watch normally makes this
    /// unnecessary.
    ///
    /// Returns whether the certificate changed. On error the previous pair stays in use (the
    /// error is returned, not logged or counted).
    pub fn reload(&self) -> Result<bool, TlsError> {
        self.shared.reload()
    }

    /// The leaf certificate (DER) new connections are given.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.shared.current.read().cert[0].clone()
    }

    /// How many times the watch replaced the certificate since start.
    pub fn reloads(&self) -> u64 {
        self.shared.reloads.get()
    }

    /// How many times the watch saw changed files it could not use (the old pair stayed).
    pub fn reload_failures(&self) -> u64 {
        self.shared.reload_failures.get()
    }

    /// Registers [`Self::reloads`] and [`Self::reload_failures`] as the Prometheus counters
    /// `tls_certificate_reloads_total` and `tls_certificate_reload_failures_total`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "tls_certificate_reloads",
            "Times a renewed TLS certificate was loaded from its files",
            self.shared.reloads.clone(),
        );
        registry.register(
            "tls_certificate_reload_failures",
            "Times changed TLS certificate files could not be used (the old pair stayed)",
            self.shared.reload_failures.clone(),
        );
    }

    /// The files served.
    pub fn config(&self) -> &TlsConfig {
        &self.shared.config
    }
}

/// Watches the directories of the certificate and key, and reloads once their events settle.
fn watch(shared: &Arc<Shared>) -> Result<notify::RecommendedWatcher, TlsError> {
    let files = [&shared.config.cert_path, &shared.config.key_path];
    let names: BTreeSet<_> = files
        .iter()
        .filter_map(|p| p.file_name().map(ToOwned::to_owned))
        .collect();
    let dirs: BTreeSet<PathBuf> = files
        .iter()
        .map(|p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if is_renewal(&event, &names) {
            let _ = tx.send(());
        }
    })
    .map_err(|source| TlsError::Watch {
        path: dirs.first().cloned().unwrap_or_default(),
        source,
    })?;
    for dir in &dirs {
        watcher
            .watch(dir, notify::RecursiveMode::NonRecursive)
            .map_err(|source| TlsError::Watch {
                path: dir.clone(),
                source,
            })?;
    }
    let weak = Arc::downgrade(shared);
    std::thread::Builder::new()
        .name("cairn-tls-reload".into())
        .spawn(move || reload_loop(&weak, &rx))
        .map_err(|source| TlsError::Watch {
            path: dirs.first().cloned().unwrap_or_default(),
            source: notify::Error::io(source),
        })?;
    Ok(watcher)
}

/// Whether a directory event may be a renewal of one of the files.
fn is_renewal(event: &notify::Event, names: &BTreeSet<std::ffi::OsString>) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode};
    let relevant_kind = match event.kind {
        // Our own reads show up as opens and closes: reacting to them would loop.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    relevant_kind
        && event.paths.iter().any(|p| {
            p.file_name().is_some_and(|n| {
                // `..data` is the symlink Kubernetes swaps to renew every file of a secret.
                names.contains(n) || n == "..data"
            })
        })
}

/// Waits for events, lets them settle, reloads; ends when the watcher is dropped.
fn reload_loop(shared: &Weak<Shared>, rx: &std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    while rx.recv().is_ok() {
        loop {
            match rx.recv_timeout(SETTLE) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.reload_logged();
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
    use notify::{Event, EventKind};

    use super::*;

    fn names() -> BTreeSet<std::ffi::OsString> {
        ["fullchain.pem", "privkey.pem"]
            .into_iter()
            .map(Into::into)
            .collect()
    }

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn renewals_are_told_from_our_own_reads_and_other_files() {
        let names = names();
        let renewal = |kind, path| is_renewal(&event(kind, path), &names);
        // A rename over the file (certbot, `mv`), a write in place, a new file.
        assert!(renewal(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            "/etc/c/fullchain.pem"
        ));
        assert!(renewal(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "/etc/c/privkey.pem"
        ));
        assert!(renewal(
            EventKind::Create(CreateKind::File),
            "/etc/c/privkey.pem"
        ));
        // Kubernetes swaps the `..data` link to renew a secret's files.
        assert!(renewal(
            EventKind::Create(CreateKind::Any),
            "/etc/secret/..data"
        ));
        // Reading the files (our own reload does) must not trigger another reload.
        assert!(!renewal(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            "/etc/c/fullchain.pem"
        ));
        assert!(!renewal(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            "/etc/c/fullchain.pem"
        ));
        // Other files in the directory, a temporary file before its rename included.
        assert!(!renewal(
            EventKind::Modify(ModifyKind::Any),
            "/etc/c/fullchain.tmp"
        ));
    }
}
