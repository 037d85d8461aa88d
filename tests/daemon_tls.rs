//! `cairn daemon` with `Cairn.TLS` in the config: the RPC answers the real `curl --cacert` over
//! HTTPS with a certificate the test makes, and a bad certificate stops the start with an error
//! naming the file.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use support::{BIN, Daemon, init_repo};

/// Writes a CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it
/// (`fullchain.pem`, `privkey.pem`) into `dir`.
fn make_certs(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // rcgen gives every certificate the same default name; a leaf whose issuer equals its own
    // subject looks self-signed to curl.
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "cairn test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("fullchain.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("privkey.pem"), key.serialize_pem()).unwrap();
}

/// Sets `Cairn.TLS` in the repo's config to the files in `dir`.
fn set_tls(repo: &Path, dir: &Path) {
    let path = repo.join("config");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["Cairn"] = serde_json::json!({ "TLS": {
        "CertFile": dir.join("fullchain.pem"),
        "KeyFile": dir.join("privkey.pem"),
    }});
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

#[test]
fn the_rpc_is_served_over_tls_when_cairn_tls_is_set() {
    let repo = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    make_certs(certs.path());
    set_tls(repo.path(), certs.path());
    let daemon = Daemon::start(repo.path());

    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(certs.path().join("ca.pem"))
        .args(["-X", "POST", "-w", "\n%{http_code}"])
        .arg(format!("https://{}/api/v0/id", daemon.api))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, status) = text.rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{body}");
    let id: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(id["ID"].as_str().is_some_and(|s| !s.is_empty()), "{body}");

    // The gateway is served over TLS with the same certificate, and says so in its repo file.
    let gateway = daemon.gateway.clone().expect("a gateway address");
    assert_eq!(
        std::fs::read_to_string(repo.path().join("gateway")).unwrap(),
        format!("https://{gateway}")
    );
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(certs.path().join("ca.pem"))
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://{gateway}/ipfs/bafkqaaa"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Plain HTTP gets no answer from a TLS listener.
    let plain = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-X", "POST"])
        .arg(format!("http://{}/api/v0/id", daemon.api))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
}

#[test]
fn a_bad_certificate_stops_the_start_with_a_clear_error() {
    let repo = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    make_certs(certs.path());
    std::fs::write(certs.path().join("fullchain.pem"), "garbage").unwrap();
    set_tls(repo.path(), certs.path());

    let mut child = Command::new(BIN)
        .arg("daemon")
        .env("CAIRN_PATH", repo.path())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not stop on a bad certificate");
        }
        // Polls the process table: the child owns nothing we could wait on with a deadline.
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("fullchain.pem") && stderr.contains("no PEM certificate"),
        "{stderr}"
    );
}
