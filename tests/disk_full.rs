//! A full disk, through the daemon: on a 64 MiB tmpfs the test mounts for itself, `block/put`
//! fails with a clear Kubo-style `no space left on device` error once space runs out, nothing
//! acknowledged is lost, reads and `repo/stat` keep working, the daemon keeps running, and
//! writes work again once `block/rm` frees space. Needs root (to mount); otherwise it prints why
//! it skipped.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::RngCore;
use support::{Daemon, cid_of, init_repo, post};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn random(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    data
}

fn read_back(api: &str, blocks: &[Vec<u8>]) {
    for data in blocks {
        let ans = post(
            api,
            &format!("block/get?arg={}&offline=true", cid_of(data)),
            None,
        )
        .unwrap();
        assert_eq!(ans.status, 200, "{}", ans.text());
        assert!(
            ans.body == *data,
            "block {} came back different",
            cid_of(data)
        );
    }
}

#[test]
fn a_full_disk_refuses_puts_clearly_loses_nothing_and_recovers() {
    let outer = tempfile::tempdir().unwrap();
    let mnt = outer.path().join("small");
    let _tmpfs = match Tmpfs::mount(&mnt, "64m") {
        Ok(t) => t,
        Err(why) => {
            println!("skipped: cannot mount a 64 MiB tmpfs ({why})");
            return;
        }
    };
    let repo = mnt.join("repo");
    init_repo(&repo);
    let mut daemon = Daemon::start(&repo);
    let api = daemon.api.clone();

    // Fill it: mostly 512 KiB blocks (files), some 1 KiB ones (sled).
    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..400 {
        let data = random(if i % 4 == 3 { 1024 } else { 512 << 10 });
        let ans = post(&api, "block/put", Some(&data)).unwrap();
        if ans.status == 200 {
            acked.push(data);
        } else {
            refusal = Some(ans);
            break;
        }
    }
    let refusal = refusal.expect("64 MiB filled up without an error");
    assert_eq!(refusal.status, 500, "{}", refusal.text());
    let err: serde_json::Value = serde_json::from_slice(&refusal.body).unwrap();
    assert_eq!(err["Type"], "error");
    assert!(
        err["Message"]
            .as_str()
            .unwrap()
            .contains("no space left on device"),
        "{err}"
    );
    assert!(acked.len() > 60, "only {} blocks fit", acked.len());
    assert!(daemon.alive(), "the daemon exited on a full disk");

    // Refused again, not crashed; reads and stat still work.
    let again = post(&api, "block/put", Some(&random(512 << 10))).unwrap();
    assert_eq!(again.status, 500);
    read_back(&api, &acked);
    let stat = post(&api, "repo/stat", None).unwrap();
    assert_eq!(stat.status, 200, "{}", stat.text());
    assert!(
        stat.text()
            .contains(&format!("\"NumObjects\":{}", acked.len()))
    );

    // Free space; writes work again.
    for data in acked.drain(..10) {
        let rm = post(&api, &format!("block/rm?arg={}", cid_of(&data)), None).unwrap();
        assert_eq!(rm.status, 200, "{}", rm.text());
    }
    let fresh = random(512 << 10);
    let ans = post(&api, "block/put", Some(&fresh)).unwrap();
    assert_eq!(ans.status, 200, "{}", ans.text());
    acked.push(fresh);
    read_back(&api, &acked);
    assert!(daemon.alive());

    // And nothing acknowledged is lost across a restart.
    daemon.kill();
    let daemon = Daemon::start(&repo);
    read_back(&daemon.api, &acked);
}
