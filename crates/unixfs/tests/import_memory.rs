//! Memory stays bounded however large the file: a 1 GiB import (10 GiB with
//! `CAIRN_IMPORT_MEMORY_GIB=10`) through [`FileImporter`], dropping blocks as they come out, must
//! not raise the process's peak RSS by more than 32 MiB. Its own test binary, so no other test
//! shares the process's memory.

use cairn_unixfs::importer::{FileImporter, ImportOptions};

/// Peak resident set size of this process (`VmHWM`), bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM value");
    kib * 1024
}

#[test]
fn importing_gibibytes_keeps_memory_flat() {
    let gib: u64 = std::env::var("CAIRN_IMPORT_MEMORY_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // 1 MiB of varied bytes, pushed again and again, each time with a different first byte so
    // no two chunks are alike (a dedup-friendly input would hide nothing here, but stay honest).
    let mut piece: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut f = FileImporter::new(&ImportOptions::default()).unwrap();
    // Warm up allocator pools before taking the baseline.
    f.push(&piece).unwrap();
    let base = peak_rss();
    let mut blocks = 0u64;
    for i in 1..gib * 1024 {
        piece[0] = i as u8;
        piece[1] = (i >> 8) as u8;
        blocks += f.push(&piece).unwrap().len() as u64;
    }
    let (result, last) = f.finish().unwrap();
    blocks += last.len() as u64;
    let growth = peak_rss().saturating_sub(base);
    assert_eq!(result.file_size, gib << 30);
    // 4096 leaves per GiB at 256 KiB, plus one node per 174 of them, plus the levels above.
    assert!(blocks > gib * 4096, "{blocks} blocks");
    assert!(
        growth < 32 << 20,
        "peak RSS grew by {} MiB over {gib} GiB",
        growth >> 20
    );
}
