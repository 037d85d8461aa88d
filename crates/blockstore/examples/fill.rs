//! Fills a blockstore with many small random blocks, fast (batched, buffered, one flush), and
//! pins every `k`-th one directly: the large repo `scripts/rss.sh` measures the daemon on.
//!
//! ## Usage
//!
//!     cargo run --release -p cairn-blockstore --example fill -- <datastore dir> <count> <bytes> <pin every k> [<blocks dir>]

use cairn_blockstore::codec::RAW;
use cairn_blockstore::{Block, Blockstore, BlockstoreConfig, Durability, PinMode};
use rand::{RngCore, SeedableRng, rngs::StdRng};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "fill <datastore dir> <count> <bytes> <pin every k> [<blocks dir>]";
    let dir = args.get(1).expect(usage);
    let count: usize = args.get(2).and_then(|a| a.parse().ok()).expect(usage);
    let size: usize = args.get(3).and_then(|a| a.parse().ok()).expect(usage);
    let every: usize = args.get(4).and_then(|a| a.parse().ok()).expect(usage);
    let mut config = BlockstoreConfig::default().with_durability(Durability::Buffered);
    if let Some(blocks) = args.get(5) {
        config = config.with_blocks_dir(blocks);
    }
    let store = Blockstore::open_with(dir, config).unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let mut batch = Vec::with_capacity(1000);
    let mut pins = Vec::new();
    for i in 0..count {
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        let b = Block::from_data(RAW, data).unwrap();
        if i % every == 0 {
            pins.push(*b.cid());
        }
        batch.push(b);
        if batch.len() == 1000 {
            store.put_many(batch.drain(..)).unwrap();
        }
    }
    store.put_many(batch).unwrap();
    for cid in &pins {
        store.pin(cid, PinMode::Direct).unwrap();
    }
    store.flush().unwrap();
    let stat = store.stat().unwrap();
    println!(
        "{} blocks, {} bytes, {} pinned",
        stat.blocks,
        stat.bytes,
        pins.len()
    );
}
