//! The RPC over TLS: a real node served with a certificate the test makes (rcgen), reached with
//! the real `curl --cacert`, renewed by renaming new files over the old ones (as certbot does),
//! a bad renewal that must leave the old certificate in use, and bad files at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_node_core::{Node, Profile};
use cairn_rpc::tls::{ReloadingAcceptor, TlsConfig, TlsError};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

/// A test certificate authority.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cairn test CA");
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A fresh server certificate (new key, new serial) for 127.0.0.1 and localhost: PEM chain,
    /// PEM key, leaf DER.
    fn issue(&self) -> (String, String, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }
}

/// Replaces a file by renaming a new one over it, as certbot and most deploy tools do.
fn replace(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A node served over TLS on 127.0.0.1 port 0.
struct TlsApi {
    node: Node,
    port: u16,
    acceptor: Arc<ReloadingAcceptor>,
    _repo: tempfile::TempDir,
}

async fn start(config: &TlsConfig) -> TlsApi {
    start_with(ReloadingAcceptor::new(config).unwrap()).await
}

async fn start_with(acceptor: ReloadingAcceptor) -> TlsApi {
    let repo = tempfile::tempdir().unwrap();
    let node_config = cairn_node_core::Repo::init(repo.path(), &[Profile::Test]).unwrap();
    let node = Node::builder().repo(repo.path()).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = Arc::new(acceptor);
    let router = cairn_rpc::ApiBuilder::new(node.clone(), node_config)
        .repo_path(repo.path())
        .port(port)
        .tls(acceptor.clone())
        .build();
    tokio::spawn(cairn_rpc::serve_tls(
        listener,
        router,
        node.shutdown_token(),
        acceptor.clone(),
    ));
    TlsApi {
        node,
        port,
        acceptor,
        _repo: repo,
    }
}

/// The leaf certificate a new connection is given, checked against the CA as a client would.
async fn served_leaf(port: u16, ca: &CertificateDer<'static>) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// Waits until `served_leaf` gives `want`, or fails after 10 s.
async fn wait_for_leaf(port: u16, ca: &CertificateDer<'static>, want: &CertificateDer<'static>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if served_leaf(port, ca).await == *want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `curl --cacert ca.pem -X POST https://127.0.0.1:PORT/api/v0/id`: status and body.
async fn curl_id(ca_pem: &Path, port: u16) -> (String, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca_pem)
        .args(["-X", "POST", "-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}/api/v0/id"))
        .output()
        .await
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.to_string(), body.to_string())
}

fn files(dir: &Path) -> (PathBuf, PathBuf, TlsConfig) {
    let cert = dir.join("fullchain.pem");
    let key = dir.join("privkey.pem");
    let config = TlsConfig {
        cert_path: cert.clone(),
        key_path: key.clone(),
    };
    (cert, key, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_renewal_and_bad_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.cert.pem()).unwrap();
    let ca_der = ca.cert.der().clone();
    let (cert_path, key_path, config) = files(dir.path());
    let (cert, key, first) = ca.issue();
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let api = start(&config).await;

    // The real curl trusts it through the CA and gets Kubo's `id` answer.
    let (status, body) = curl_id(&ca_pem, api.port).await;
    assert_eq!(status, "200", "{body}");
    let id: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(id["ID"], api.node.peer_id().to_string());
    assert_eq!(served_leaf(api.port, &ca_der).await, first);

    // Renewal by rename-replace: the next connection gets the new certificate, no restart.
    let (cert, key, renewed) = ca.issue();
    assert_ne!(renewed, first);
    replace(&key_path, key.as_bytes());
    replace(&cert_path, cert.as_bytes());
    wait_for_leaf(api.port, &ca_der, &renewed).await;
    assert!(api.acceptor.reloads() >= 1);
    assert_eq!(api.acceptor.certificate(), renewed);
    let (status, body) = curl_id(&ca_pem, api.port).await;
    assert_eq!(status, "200", "{body}");

    // A bad renewal: counted, and the renewed pair stays in use.
    let failures = api.acceptor.reload_failures();
    replace(&cert_path, b"not a certificate\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.acceptor.reload_failures() == failures {
        assert!(
            Instant::now() < deadline,
            "the bad renewal was not noticed within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served_leaf(api.port, &ca_der).await, renewed);
    let (status, _) = curl_id(&ca_pem, api.port).await;
    assert_eq!(status, "200");
    // ... and shown in the metrics.
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&ca_pem)
        .arg(format!(
            "https://127.0.0.1:{}/debug/metrics/prometheus",
            api.port
        ))
        .output()
        .await
        .unwrap();
    let metrics = String::from_utf8(out.stdout).unwrap();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the metrics:\n{metrics}"))
    };
    assert_eq!(
        value("tls_certificate_reload_failures_total"),
        api.acceptor.reload_failures()
    );
    assert_eq!(
        value("tls_certificate_reloads_total"),
        api.acceptor.reloads()
    );
    // A manual reload says why.
    assert!(matches!(
        api.acceptor.reload(),
        Err(TlsError::NoCertificate { .. })
    ));
    api.node.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_holds_up_no_one_and_is_dropped_at_the_timeout() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.cert.pem()).unwrap();
    let (cert_path, key_path, config) = files(dir.path());
    let (cert, key, _) = ca.issue();
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let acceptor = ReloadingAcceptor::new(&config)
        .unwrap()
        .with_handshake_timeout(Duration::from_secs(3));
    let api = start_with(acceptor).await;

    // A client that connects and never says hello.
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", api.port))
        .await
        .unwrap();
    let (status, body) = curl_id(&ca_pem, api.port).await;
    assert_eq!(status, "200", "{body}");
    // curl was served while the stalled handshake still waited (so not after its timeout).
    let mut buf = [0u8; 16];
    assert!(
        tokio::time::timeout(Duration::from_millis(100), stalled.read(&mut buf))
            .await
            .is_err(),
        "the stalled connection was closed before curl was served"
    );
    // The server gives up on it: EOF (or a reset), well before the test's own limit.
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf))
        .await
        .expect("the stalled handshake was not dropped");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    api.node.shutdown_token().cancel();
}

#[tokio::test]
async fn bad_files_at_start_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert_path, key_path, config) = files(dir.path());

    // Missing certificate.
    let e = ReloadingAcceptor::new(&config).unwrap_err();
    assert!(matches!(e, TlsError::Read { ref path, .. } if *path == cert_path));
    assert!(e.to_string().contains("fullchain.pem"), "{e}");

    // Garbage certificate.
    let (cert, key, _) = ca.issue();
    std::fs::write(&cert_path, "garbage").unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let e = ReloadingAcceptor::new(&config).unwrap_err();
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
    assert!(e.to_string().contains("fullchain.pem"), "{e}");

    // Broken PEM (a begin line without an end line).
    std::fs::write(&cert_path, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let e = ReloadingAcceptor::new(&config).unwrap_err();
    assert!(matches!(e, TlsError::Pem { .. }), "{e}");

    // No key in the key file.
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &cert).unwrap();
    let e = ReloadingAcceptor::new(&config).unwrap_err();
    assert!(matches!(e, TlsError::NoKey { .. }), "{e}");
    assert!(e.to_string().contains("privkey.pem"), "{e}");

    // A key of another certificate.
    let (_, other_key, _) = ca.issue();
    std::fs::write(&key_path, &other_key).unwrap();
    let e = ReloadingAcceptor::new(&config).unwrap_err();
    assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");

    // The right pair.
    std::fs::write(&key_path, &key).unwrap();
    ReloadingAcceptor::new(&config).unwrap();
}

#[test]
fn config_section() {
    let mut config = cairn_node_core::Config::default();
    assert_eq!(TlsConfig::from_config(&config).unwrap(), None);
    config.extra.insert(
        "Cairn".into(),
        serde_json::json!({ "TLS": { "CertFile": "/c.pem", "KeyFile": "/k.pem" } }),
    );
    assert_eq!(
        TlsConfig::from_config(&config).unwrap(),
        Some(TlsConfig {
            cert_path: "/c.pem".into(),
            key_path: "/k.pem".into(),
        })
    );
    config
        .extra
        .insert("Cairn".into(), serde_json::json!({ "TLS": null }));
    assert_eq!(TlsConfig::from_config(&config).unwrap(), None);
    config.extra.insert(
        "Cairn".into(),
        serde_json::json!({ "TLS": { "CertFile": 1 } }),
    );
    assert!(matches!(
        TlsConfig::from_config(&config),
        Err(TlsError::Config(_))
    ));
}
