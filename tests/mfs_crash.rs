//! The MFS root survives SIGKILL of the daemon: each cycle writes small files with
//! `files/write` (each acknowledged one must survive), starts a large `files/write` and
//! SIGKILLs the daemon while it runs, restarts it, and checks that `files/stat /` answers, that
//! every block the root reaches is stored (`refs -r` offline) and that every acknowledged file
//! reads back.

mod support;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use support::{Daemon, init_repo, post};

fn ok(api: &str, path: &str, file: Option<&[u8]>) -> String {
    let a = post(api, path, file).unwrap();
    assert_eq!(a.status, 200, "{path}: {}", a.text());
    a.text()
}

#[test]
fn mfs_root_survives_sigkill_during_a_large_write() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    let mut rng = StdRng::seed_from_u64(0x4d46_5321);
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let mut killed_mid_write = 0;
    for cycle in 0..3 {
        let mut daemon = Daemon::start(repo.path());
        let api = daemon.api.clone();
        for i in 0..3 {
            let name = format!("/c{cycle}/f{i}");
            let mut data = vec![0u8; rng.random_range(1..300_000)];
            rng.fill_bytes(&mut data);
            ok(
                &api,
                &format!("files/write?arg={name}&create=true&parents=true"),
                Some(&data),
            );
            acked.push((name, data));
        }
        let mut big = vec![0u8; 48 << 20];
        rng.fill_bytes(&mut big);
        let big_api = api.clone();
        let writer = std::thread::spawn(move || {
            // Whether it was answered before the kill (then /big must be there after restart).
            post(
                &big_api,
                "files/write?arg=/big&create=true&truncate=true",
                Some(&big),
            )
            .is_ok_and(|a| a.status == 200)
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(100..1500)));
        daemon.kill();
        let answered = writer.join().unwrap();
        killed_mid_write += usize::from(!answered);

        let daemon = Daemon::start(repo.path());
        let api = daemon.api.clone();
        let stat = ok(&api, "files/stat?arg=/", None);
        let root: serde_json::Value = serde_json::from_str(&stat).unwrap();
        let root = root["Hash"].as_str().unwrap().to_string();
        let refs = post(
            &api,
            &format!("refs?arg={root}&recursive=true&offline=true"),
            None,
        )
        .unwrap();
        assert_eq!(refs.status, 200, "{}", refs.text());
        assert!(
            !refs.text().contains("\"Err\":\"") || refs.text().contains("\"Err\":\"\""),
            "a block under the MFS root is missing: {}",
            refs.text()
        );
        for line in refs.text().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["Err"], "", "cycle {cycle}: {line}");
        }
        for (name, data) in &acked {
            let got = post(&api, &format!("files/read?arg={name}"), None).unwrap();
            assert_eq!(got.status, 200, "cycle {cycle}: {name}: {}", got.text());
            assert!(got.body == *data, "cycle {cycle}: {name} differs");
        }
        if answered {
            ok(&api, "files/stat?arg=/big", None);
        }
        let verify = ok(&api, "repo/verify", None);
        assert!(!verify.contains("\"Msg\":\"block"), "{verify}");
        drop(daemon);
    }
    eprintln!("3 cycles, {killed_mid_write} killed during the large write");
    assert!(killed_mid_write > 0, "no kill landed during a large write");
}
