//! Crash durability, proven with SIGKILL.
//!
//! The parent starts this same binary as a child writer (`CAIRN_CRASH_CHILD_DIR` set). The child
//! opens a sled blockstore and writes blocks forever: single puts, atomic `put_many` batches and
//! direct pins, printing each one after it was acknowledged. The parent kills it with SIGKILL after
//! a random number of acknowledgements, reopens the store with `verify_on_read`, and counts:
//! - lost: an acknowledged block or pin that is missing;
//! - corrupt: a stored block whose bytes do not hash to its key, a batch that is only partly
//!   there, or a store that no longer opens.
//!
//! Run: `cargo test -p cairn-blockstore --test crash` (5 cycles of `Synced`, 3 of `Buffered`);
//! `CAIRN_CRASH_CYCLES=100` for more (see `scripts/crash-cycles.sh`). The last line printed is
//! `N cycles, M lost, K corrupt`; the test fails on any loss in `Synced` mode and on any corruption.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use cairn_blockstore::codec::RAW;
use cairn_blockstore::{
    Block, Blockstore, BlockstoreConfig, Cid, Durability, PinFilter, PinMode, parse_cid_str,
};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

const CHILD_DIR: &str = "CAIRN_CRASH_CHILD_DIR";
const CHILD_MODE: &str = "CAIRN_CRASH_CHILD_MODE";
const CHILD_SEED: &str = "CAIRN_CRASH_CHILD_SEED";

fn durability(name: &str) -> Durability {
    if name == "buffered" {
        Durability::Buffered
    } else {
        Durability::Synced
    }
}

/// The child: write until killed. Every line is printed only after the store acknowledged it.
fn child(dir: &str, mode: &str, seed: u64) -> anyhow::Result<()> {
    let store = Blockstore::open_with(
        dir,
        BlockstoreConfig::default().with_durability(durability(mode)),
    )?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = std::io::stdout().lock();
    let block = |rng: &mut StdRng| {
        // Mostly small blocks, sometimes up to 1 MiB.
        let len = if rng.random_ratio(1, 10) {
            rng.random_range(64 << 10..1 << 20)
        } else {
            rng.random_range(1..16 << 10)
        };
        let mut data = vec![0u8; len];
        rng.fill_bytes(&mut data);
        Block::from_data(RAW, data).expect("raw is a known codec")
    };
    writeln!(out, "ready")?;
    out.flush()?;
    let mut acked: Vec<Cid> = Vec::new();
    loop {
        match rng.random_range(0..10) {
            0..=5 => {
                let b = block(&mut rng);
                store.put(&b)?;
                writeln!(out, "ack {}", b.cid())?;
                acked.push(*b.cid());
            }
            6..=8 => {
                let batch: Vec<Block> = (0..rng.random_range(2..8))
                    .map(|_| block(&mut rng))
                    .collect();
                let cids: Vec<String> = batch.iter().map(|b| b.cid().to_string()).collect();
                writeln!(out, "begin {}", cids.join(" "))?;
                out.flush()?;
                store.put_many(batch)?;
                writeln!(out, "acks {}", cids.join(" "))?;
                acked.extend(cids.iter().map(|c| parse_cid_str(c).expect("own CID")));
            }
            _ => {
                if let Some(cid) = acked.get(rng.random_range(0..acked.len().max(1))).copied() {
                    store.pin(&cid, PinMode::Direct)?;
                    writeln!(out, "pin {cid}")?;
                }
            }
        }
        out.flush()?;
    }
}

#[derive(Debug, Default)]
struct Tally {
    lost: usize,
    corrupt: usize,
    acked_blocks: usize,
}

/// One cycle: start a writer, kill it after `kill_after` acknowledgements, check the store.
fn cycle(mode: &str, seed: u64, kill_after: usize) -> anyhow::Result<Tally> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD_DIR, dir.path())
        .env(CHILD_MODE, mode)
        .env(CHILD_SEED, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("child stdout")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut acks = 0;
    while acks <= kill_after {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .context("the writer stopped acknowledging writes")?;
        if line == "ready" || line.starts_with("ack") || line.starts_with("pin") {
            acks += 1;
        }
        lines.push(line);
    }
    child.kill()?; // SIGKILL on Unix
    child.wait()?;
    reader.join().ok();
    // Lines the child printed before it died were acknowledged too.
    lines.extend(rx.try_iter());

    let mut tally = Tally::default();
    let store = match Blockstore::open_with(
        dir.path(),
        BlockstoreConfig::default().with_verify_on_read(true),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("seed {seed}: store does not reopen: {e}");
            tally.corrupt += 1;
            return Ok(tally);
        }
    };
    let mut pending: HashMap<String, Vec<Cid>> = HashMap::new();
    let mut acked = Vec::new();
    let mut pins = Vec::new();
    for line in &lines {
        let mut words = line.split(' ');
        let kind = words.next().unwrap_or_default();
        let cids: Vec<Cid> = words.filter_map(|w| parse_cid_str(w).ok()).collect();
        match kind {
            "ack" => acked.extend(cids),
            "begin" => {
                pending.insert(line["begin ".len()..].to_string(), cids);
            }
            "acks" => {
                pending.remove(&line["acks ".len()..]);
                acked.extend(cids);
            }
            "pin" => pins.extend(cids),
            _ => {}
        }
    }
    tally.acked_blocks = acked.len();
    for cid in &acked {
        match store.get(cid) {
            Ok(Some(b)) if Block::new(*cid, b.data().clone()).is_ok() => {}
            Ok(Some(_)) | Err(_) => tally.corrupt += 1,
            Ok(None) => tally.lost += 1,
        }
    }
    for batch in pending.values() {
        let present = batch
            .iter()
            .filter(|c| store.has(c).unwrap_or(false))
            .count();
        if present != 0 && present != batch.len() {
            eprintln!(
                "seed {seed}: torn batch, {present} of {} blocks present",
                batch.len()
            );
            tally.corrupt += 1;
        }
    }
    let stored_pins: Vec<Cid> = store
        .pins(PinFilter::Direct)?
        .into_iter()
        .map(|p| p.cid)
        .collect();
    tally.lost += pins.iter().filter(|c| !stored_pins.contains(c)).count();
    // The running totals agree with the index they were written beside.
    let (kept, walked) = (store.stat()?, store.stat_by_walking()?);
    if kept != walked {
        eprintln!("seed {seed}: totals {kept:?} but the index holds {walked:?}");
        tally.corrupt += 1;
    }
    for cid in store.list() {
        let cid = cid?;
        if let Err(e) = store.get(&cid) {
            eprintln!("seed {seed}: {e}");
            tally.corrupt += 1;
        }
    }
    Ok(tally)
}

fn run(mode: &str, cycles: usize, rng: &mut StdRng) -> anyhow::Result<(usize, usize, usize)> {
    let (mut lost, mut corrupt, mut acked) = (0, 0, 0);
    for _ in 0..cycles {
        let seed = rng.next_u64();
        let kill_after = rng.random_range(0..300);
        let t = cycle(mode, seed, kill_after)?;
        lost += t.lost;
        corrupt += t.corrupt;
        acked += t.acked_blocks;
    }
    println!("{mode}: {cycles} cycles, {acked} acknowledged blocks checked");
    println!("{cycles} cycles, {lost} lost, {corrupt} corrupt");
    Ok((cycles, lost, corrupt))
}

fn main() -> anyhow::Result<()> {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let mode = std::env::var(CHILD_MODE).unwrap_or_default();
        let seed = std::env::var(CHILD_SEED)?.parse()?;
        return child(&dir, &mode, seed);
    }
    // `cargo test -- --list` (and nextest) only ask what is here.
    if std::env::args().any(|a| a == "--list") {
        println!("crash: test");
        return Ok(());
    }
    let cycles: usize = std::env::var("CAIRN_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut rng = StdRng::seed_from_u64(rand::rng().next_u64());
    let (_, buffered_lost, buffered_corrupt) = run("buffered", 3.min(cycles), &mut rng)?;
    println!("(buffered mode may lose the last unflushed puts: {buffered_lost} lost is allowed)");
    let (n, lost, corrupt) = run("synced", cycles, &mut rng)?;
    if lost > 0 || corrupt > 0 || buffered_corrupt > 0 {
        bail!(
            "durability violated: {n} cycles, {lost} lost, {corrupt} corrupt (buffered: {buffered_corrupt} corrupt)"
        );
    }
    println!("test result: ok. 1 passed; 0 failed");
    Ok(())
}
