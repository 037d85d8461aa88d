//! Import throughput: 256 MiB in memory through [`FileImporter`] (Kubo's defaults, and CIDv1
//! with raw leaves) beside sha2-256 of the same bytes, the floor any importer pays. Prints the
//! import/sha256 time ratio first, then runs criterion.
//!
//! `cargo bench -p cairn-unixfs --bench import` measures (release profile); `cargo test
//! --benches` only runs each case once on 4 MiB as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cairn_unixfs::importer::{FileImporter, ImportOptions};
use criterion::{Criterion, Throughput};
use sha2::{Digest, Sha256};

/// Pseudo-random bytes, so no layer can shortcut on repeated content.
fn data(n: usize) -> Vec<u8> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Imports `data` in 1 MiB pushes (as `add_path` reads files); returns the block count.
fn import(data: &[u8], opts: &ImportOptions) -> usize {
    let mut f = FileImporter::new(opts).expect("options");
    let mut n = 0;
    for piece in data.chunks(1 << 20) {
        n += f.push(piece).expect("push").len();
    }
    let (_, last) = f.finish().expect("finish");
    n + last.len()
}

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let size = if measuring { 256 << 20 } else { 4 << 20 };
    let bytes = data(size);
    let default = ImportOptions::default();
    let mut v1 = ImportOptions::default();
    v1.cid_version = Some(1);

    let sha = best_of(3, || {
        black_box(Sha256::digest(&bytes));
    });
    let imp = best_of(3, || {
        black_box(import(&bytes, &default));
    });
    let mib = size as f64 / (1 << 20) as f64;
    println!(
        "import {mib:.0} MiB: {:.0} MiB/s; sha256: {:.0} MiB/s; import/sha256 time ratio {:.2}",
        mib / imp.as_secs_f64(),
        mib / sha.as_secs_f64(),
        imp.as_secs_f64() / sha.as_secs_f64()
    );

    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let mut g = c.benchmark_group("import");
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("sha256", |b| b.iter(|| black_box(Sha256::digest(&bytes))));
    g.bench_function("kubo_default", |b| {
        b.iter(|| black_box(import(&bytes, &default)))
    });
    g.bench_function("cidv1_raw_leaves", |b| {
        b.iter(|| black_box(import(&bytes, &v1)))
    });
    g.finish();
    c.final_summary();
}
