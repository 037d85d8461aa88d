//! The importer against ipfs-unixfs-importer 17.1.1 run in Node (`tests/js/oracle.mjs`): for a
//! matrix of inputs and Kubo options, every entry's CID and cumulative size must be equal.
//!
//! The JS packages are found through `CAIRN_JS_ORACLE_MODULES` (a `node_modules` directory) or
//! `../shared/compat/kubo-client-smoke/node_modules` next to the repository (`npm ci` there).
//! When neither exists the tests FAIL, unless `CAIRN_SKIP_JS=1`.
//!
//! What the JS importer cannot do is checked elsewhere (`import_known.rs`): buzhash (no JS
//! chunker; Kubo's sharness CID only), symlinks (no JS symlinks). For `hash` and `inline` the
//! oracle rebuilds its sha2-256 DAG with the other hash / identity CIDs (see oracle.mjs).

mod common;
use common::random_bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_unixfs::importer::{HamtSizeEstimation, ImportOptions, add_path};
use serde_json::{Value, json};

/// path -> (cid, size), as `add` prints it.
type Entries = BTreeMap<String, (String, u64)>;

fn node_modules() -> Option<PathBuf> {
    if std::env::var("CAIRN_SKIP_JS").as_deref() == Ok("1") {
        return None;
    }
    let candidates = [
        std::env::var_os("CAIRN_JS_ORACLE_MODULES").map(PathBuf::from),
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/compat/kubo-client-smoke/node_modules"),
        ),
    ];
    for c in candidates.into_iter().flatten() {
        if c.join("ipfs-unixfs-importer").is_dir() {
            return Some(c);
        }
    }
    panic!(
        "ipfs-unixfs-importer not found: run `npm ci` in ../shared/compat/kubo-client-smoke, set \
         CAIRN_JS_ORACLE_MODULES to a node_modules holding it, or CAIRN_SKIP_JS=1 to skip"
    );
}

/// Runs the oracle on `jobs` (options in the oracle's names, a path) in one Node process.
fn run_oracle(modules: &Path, jobs: &[(Value, PathBuf)]) -> Vec<Entries> {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(modules, dir.path().join("node_modules")).unwrap();
    let script = dir.path().join("oracle.mjs");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/oracle.mjs"),
        &script,
    )
    .unwrap();
    let list: Vec<Value> = jobs
        .iter()
        .map(|(o, p)| json!({"opts": o, "path": p}))
        .collect();
    let jobs_file = dir.path().join("jobs.json");
    std::fs::write(&jobs_file, serde_json::to_vec(&list).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(&script)
        .arg(&jobs_file)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut results = vec![Entries::new(); jobs.len()];
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let job = v["job"].as_u64().unwrap() as usize;
        let entry = (
            v["cid"].as_str().unwrap().to_owned(),
            v["size"].as_u64().unwrap(),
        );
        results[job].insert(v["path"].as_str().unwrap().to_owned(), entry);
    }
    results
}

/// Kubo-named options (`cid-version=1`...) to ImportOptions and to the oracle's JSON.
fn options(kubo: &[(&str, &str)]) -> (ImportOptions, Value) {
    let mut o = ImportOptions::default();
    for (k, v) in kubo {
        if *k == "hamt-size-estimation" {
            // A Kubo config key (Import.UnixFSHAMTDirectorySizeEstimation), not an add option.
            o.hamt_size_estimation = if *v == "block" {
                HamtSizeEstimation::Block
            } else {
                HamtSizeEstimation::Links
            };
            continue;
        }
        assert!(o.set(k, v).unwrap(), "{k}");
    }
    let r = o.resolve().unwrap();
    let mut js = json!({
        "cidVersion": if r.cids.version == cid::Version::V0 { 0 } else { 1 },
        "rawLeaves": r.raw_leaves,
        "chunker": o.chunker.to_string(),
        "trickle": o.layout == cairn_unixfs::importer::Layout::Trickle,
        "wrap": o.wrap_with_directory,
        "hidden": o.hidden,
        "preserveMode": o.preserve_mode,
        "preserveMtime": o.preserve_mtime,
    });
    if o.hamt_size_estimation == HamtSizeEstimation::Block {
        js["hamtEstimation"] = json!("block");
    }
    for (k, v) in kubo {
        match *k {
            "hash" => js["hash"] = json!(v),
            "inline-limit" => js["inlineLimit"] = json!(v.parse::<u64>().unwrap()),
            "max-file-links" => js["maxFileLinks"] = json!(v.parse::<u64>().unwrap()),
            "inline" if !kubo.iter().any(|(k, _)| *k == "inline-limit") => {
                js["inlineLimit"] = json!(32)
            }
            _ => {}
        }
    }
    (o, js)
}

/// The IPIP-499 `unixfs-v1-2025` profile in Kubo's terms (the oracle's `profile` equivalent):
/// CIDv1, raw leaves, 1 MiB chunks, 1024 links per file node, `block` HAMT size estimation.
fn profile_v1_2025() -> Vec<(&'static str, &'static str)> {
    vec![
        ("cid-version", "1"),
        ("chunker", "size-1048576"),
        ("max-file-links", "1024"),
    ]
}

fn cairn(path: &Path, o: &ImportOptions) -> Entries {
    let mut count = 0usize;
    let events = add_path(path, o, &mut |blocks| {
        for b in &blocks {
            cairn_blockstore::verify(b.cid(), b.data()).unwrap();
        }
        count += blocks.len();
        Ok(())
    })
    .unwrap();
    assert!(count > 0);
    events
        .into_iter()
        .map(|e| (e.name, (e.cid.to_string(), e.size)))
        .collect()
}

/// Runs every (options, path) case through both importers and asserts equal outputs.
fn check(cases: Vec<(Vec<(&str, &str)>, PathBuf)>) {
    let Some(modules) = node_modules() else {
        return;
    };
    let prepared: Vec<(ImportOptions, Value, PathBuf)> = cases
        .into_iter()
        .map(|(kubo, p)| {
            let (o, js) = options(&kubo);
            (o, js, p)
        })
        .collect();
    let jobs: Vec<(Value, PathBuf)> = prepared
        .iter()
        .map(|(_, js, p)| (js.clone(), p.clone()))
        .collect();
    let expected = run_oracle(&modules, &jobs);
    let mut failures = Vec::new();
    for ((o, js, p), want) in prepared.iter().zip(expected) {
        assert!(
            !want.is_empty(),
            "oracle printed nothing for {js} {}",
            p.display()
        );
        let mut got = cairn(p, o);
        // The JS importer does not print empty directories it puts in the DAG (Kubo does, and
        // their parents' CIDs are compared): drop those lines from ours. An empty directory
        // without metadata is one 4-byte block.
        got.retain(|path, (_, size)| want.contains_key(path) || *size != 4);
        if got != want {
            let keys: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
            let diff: Vec<String> = keys
                .into_iter()
                .filter(|k| got.get(*k) != want.get(*k))
                .map(|k| format!("    {k:?}: cairn {:?} oracle {:?}", got.get(k), want.get(k)))
                .collect();
            failures.push(format!("{} {js}\n{}", p.display(), diff.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );
}

const K: usize = 262144;

#[test]
fn files_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [0, 1, K, K + 1, 3 * 1024 * 1024 + 7];
    let mut cases = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let p = dir.path().join(format!("f{n}"));
        std::fs::write(&p, random_bytes(n, 7 + i as u64)).unwrap();
        // The JS rabin chunker (rabin-wasm, a port of datproject/rabin) is not Kubo's
        // (ipfs/js-ipfs-unixfs#50): rabin is checked against boxo's own code in chunker_go.rs.
        for chunker in ["size-1024", "size-262144"] {
            for trickle in ["false", "true"] {
                for (cidv, raw) in [("0", "false"), ("1", "true"), ("0", "true"), ("1", "false")] {
                    cases.push((
                        vec![
                            ("chunker", chunker),
                            ("trickle", trickle),
                            ("cid-version", cidv),
                            ("raw-leaves", raw),
                        ],
                        p.clone(),
                    ));
                }
            }
        }
        for trickle in ["false", "true"] {
            cases.push((vec![("hash", "sha2-512"), ("trickle", trickle)], p.clone()));
            cases.push((
                vec![
                    ("hash", "sha2-512"),
                    ("raw-leaves", "false"),
                    ("chunker", "size-1024"),
                ],
                p.clone(),
            ));
            // Tiny chunks make every leaf inlinable; 3 MiB of them would only add run time.
            if n <= K + 1 {
                cases.push((
                    vec![
                        ("inline", "true"),
                        ("chunker", "size-16"),
                        ("trickle", trickle),
                    ],
                    p.clone(),
                ));
                cases.push((
                    vec![
                        ("inline", "true"),
                        ("inline-limit", "64"),
                        ("cid-version", "1"),
                        ("chunker", "size-40"),
                    ],
                    p.clone(),
                ));
            }
        }
    }
    check(cases);
}

#[test]
fn files_two_levels() {
    // 45 MiB + 3: more than 174 chunks of 256 KiB, so balanced trees have two levels.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big");
    std::fs::write(&p, random_bytes(45 * 1024 * 1024 + 3, 99)).unwrap();
    let mut cases = Vec::new();
    for trickle in ["false", "true"] {
        for cidv in ["0", "1"] {
            cases.push((vec![("trickle", trickle), ("cid-version", cidv)], p.clone()));
        }
    }
    cases.push((
        vec![("chunker", "size-1024"), ("trickle", "true")],
        p.clone(),
    ));
    cases.push((profile_v1_2025(), p.clone()));
    check(cases);
}

/// `files/` under the interface-ipfs-core fixtures.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/interface-ipfs-core-fixtures")
        .join(name)
}

#[test]
fn fixture_directories() {
    let mut cases = Vec::new();
    for name in [
        "test-folder",
        "hidden-files-folder",
        "weird name folder [v0]",
    ] {
        let p = fixture(name);
        assert!(p.is_dir(), "{} missing", p.display());
        for extra in [
            &[][..],
            &[("cid-version", "1")][..],
            &[("wrap-with-directory", "true")][..],
            &[("hidden", "true")][..],
        ] {
            cases.push((extra.to_vec(), p.clone()));
        }
    }
    cases.push((
        vec![
            ("hidden", "true"),
            ("trickle", "true"),
            ("chunker", "size-1024"),
        ],
        fixture("hidden-files-folder"),
    ));
    check(cases);
}

#[test]
fn hamt_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("many");
    std::fs::create_dir_all(root.join("sub/empty")).unwrap();
    for i in 0..3000 {
        std::fs::write(
            root.join(format!("file-{i:05}.txt")),
            format!("content {i}\n"),
        )
        .unwrap();
    }
    std::fs::write(root.join("sub/a"), b"a").unwrap();
    // Just under the threshold stays a plain directory: 256 KiB / (34-byte CIDv0 + name).
    let near = dir.path().join("near");
    std::fs::create_dir(&near).unwrap();
    for i in 0..3780 {
        std::fs::write(near.join(format!("n{i:07}")), b"").unwrap();
    }
    // 5800 names of 8 bytes: 243600 bytes by the `links` estimate (plain), about 290 KB as a
    // block (sharded under `block` estimation).
    let between = dir.path().join("between");
    std::fs::create_dir(&between).unwrap();
    for i in 0..5800 {
        std::fs::write(between.join(format!("b{i:07}")), b"").unwrap();
    }
    let mut v1_2025 = profile_v1_2025();
    v1_2025.push(("hamt-size-estimation", "block"));
    check(vec![
        (vec![], between.clone()),
        (vec![("hamt-size-estimation", "block")], between.clone()),
        (v1_2025.clone(), between),
        (v1_2025, root.clone()),
    ]);
    check(vec![
        (vec![], root.clone()),
        (vec![("cid-version", "1")], root.clone()),
        (vec![("wrap-with-directory", "true")], root),
        (vec![], near),
    ]);
}

#[test]
fn metadata() {
    use std::fs::{File, FileTimes, Permissions};
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, UNIX_EPOCH};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("meta");
    std::fs::create_dir_all(root.join("d")).unwrap();
    let set = |p: &Path, mode: u32, secs: u64, nanos: u32| {
        let t = UNIX_EPOCH + Duration::new(secs, nanos);
        std::fs::set_permissions(p, Permissions::from_mode(mode)).unwrap();
        let f = File::open(p).unwrap();
        f.set_times(FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    };
    // Two chunks: for a one-chunk file with metadata the JS importer wraps the whole leaf block
    // (not its data) in a new node; Kubo's CIDs for that case are in import_known.rs.
    std::fs::write(root.join("small"), random_bytes(300_000, 4)).unwrap();
    std::fs::write(root.join("d/big"), random_bytes(600_000, 3)).unwrap();
    set(&root.join("small"), 0o640, 1_600_000_000, 0);
    set(&root.join("d/big"), 0o755, 1_700_000_000, 123_456_789);
    set(&root.join("d"), 0o700, 1_500_000_000, 5);
    set(&root, 0o751, 1_400_000_000, 0);
    check(vec![
        (vec![("preserve-mode", "true")], root.clone()),
        (vec![("preserve-mtime", "true")], root.clone()),
        (
            vec![
                ("preserve-mode", "true"),
                ("preserve-mtime", "true"),
                ("cid-version", "1"),
            ],
            root.clone(),
        ),
        (
            vec![
                ("preserve-mode", "true"),
                ("preserve-mtime", "true"),
                ("trickle", "true"),
            ],
            root.join("d/big"),
        ),
    ]);
}
