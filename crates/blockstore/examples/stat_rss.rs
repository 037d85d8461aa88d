//! Peak RSS of opening a blockstore and walking its index (`stat`), for a given sled cache size:
//! how far sled's real memory use is from its `cache_capacity`.
//!
//! ## Usage
//!
//!     cargo run -p cairn-blockstore --example stat_rss -- <datastore dir> <cache MiB> [<blocks dir>]

use cairn_blockstore::{Blockstore, BlockstoreConfig};

fn hwm() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?");
    line.split_whitespace()
        .nth(1)
        .map(|kb| format!("{:.1} MiB", kb.parse::<f64>().unwrap_or(0.0) / 1024.0))
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "stat_rss <datastore dir> <cache MiB> [<blocks dir>]";
    let dir = args.get(1).expect(usage);
    let cache: u64 = args.get(2).and_then(|a| a.parse().ok()).expect(usage);
    let mut config = BlockstoreConfig::default().with_cache_capacity(cache << 20);
    if let Some(b) = args.get(3) {
        config = config.with_blocks_dir(b);
    }
    let store = Blockstore::open_with(dir, config).unwrap();
    println!("cache {cache} MiB: opened, peak {}", hwm());
    let stat = store.stat().unwrap();
    println!("stat of {} blocks: peak {}", stat.blocks, hwm());
    let n = store.list().count();
    println!("list of {n} blocks: peak {}", hwm());
}
