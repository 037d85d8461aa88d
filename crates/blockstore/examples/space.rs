//! Disk use of the blockstore against the live bytes it holds: after adding, and after GC
//! removes half. This is the measurement behind the choice of keeping large blocks as files.
//!
//! ## Usage
//!
//!     cargo run --release -p cairn-blockstore --example space -- <MiB> <block KiB> <files|sled>
//!
//! `files` is the default layout (blocks >= 64 KiB as flatfs files); `sled` keeps every block in
//! sled (`file_threshold = usize::MAX`), the layout before. Prints one line per phase:
//! live bytes, bytes on disk (allocated blocks, as `du` counts them), and their ratio.

use std::path::Path;
use std::time::Instant;

use cairn_blockstore::codec::RAW;
use cairn_blockstore::{Block, Blockstore, BlockstoreConfig, PinMode};
use rand::{RngCore, SeedableRng, rngs::StdRng};

fn du(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for e in std::fs::read_dir(path).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            du(&e.path())
        } else {
            m.blocks() * 512
        };
    }
    total
}

fn report(phase: &str, store: &Blockstore, dir: &Path, started: Instant) {
    let live = store.stat().unwrap().bytes;
    let disk = du(dir);
    println!(
        "{phase:>10}: live {:>6.1} MiB, disk {:>6.1} MiB, ratio {:.3} ({:.1} s)",
        live as f64 / 1048576.0,
        disk as f64 / 1048576.0,
        disk as f64 / live.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let kib: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(256);
    let layout = args.get(3).map(String::as_str).unwrap_or("files");
    let dir =
        tempfile::tempdir_in(std::env::var("SPACE_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    // Space, not durability, is measured here: buffered puts, one flush before each measurement.
    let mut config =
        BlockstoreConfig::default().with_durability(cairn_blockstore::Durability::Buffered);
    if layout == "sled" {
        config = config.with_file_threshold(usize::MAX);
    }
    let store = Blockstore::open_with(dir.path(), config).unwrap();
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(7);
    let n = (mib << 20) / (kib as u64) / 1024;
    let mut cids = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let mut data = vec![0u8; kib << 10];
        rng.fill_bytes(&mut data);
        let b = Block::from_data(RAW, data).unwrap();
        store.put(&b).unwrap();
        cids.push(*b.cid());
    }
    store.flush().unwrap();
    println!("{layout}: {n} blocks of {kib} KiB");
    report("added", &store, dir.path(), started);
    for cid in cids.iter().step_by(2) {
        store.pin(cid, PinMode::Direct).unwrap();
    }
    let gc = store.gc_each(|_, _| {}).unwrap();
    store.flush().unwrap();
    println!("gc removed {} blocks", gc.removed);
    report("after gc", &store, dir.path(), started);
}
