//! Helpers the throughput benchmarks share: settings from the environment, medians, MB/s, and
//! peak RSS from `/proc`.
#![allow(dead_code)]

use std::time::Duration;

/// A numeric setting from the environment variable `name`, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of the runs (the upper one of an even count; NaNs sort last).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Throughput in MB/s (10^6 bytes per second).
pub fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// A `/proc/PID/status` field in KiB (`VmHWM`, `VmRSS`); `pid` "self" for this process.
pub fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Resets a process's VmHWM to its current RSS, so the next reading is one step's own peak.
pub fn reset_hwm(pid: &str) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Deterministic incompressible content of `len` bytes (xorshift64 from `seed`), so every run
/// moves the same blocks and compression cannot help.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `data` as a UnixFS file in Kubo's default layout (CIDv0, 256 KiB chunks, 174 links), root
/// last.
pub fn unixfs(data: &[u8]) -> Vec<cairn::blockstore::Block> {
    use rust_unixfs::file::adder::FileAdder;
    let mut adder = FileAdder::builder()
        .with_cid_version(cid::Version::V0)
        .build();
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (b, n) = adder.push(rest);
        out.extend(b);
        rest = &rest[n..];
    }
    out.extend(adder.finish());
    out.into_iter()
        .map(|(c, d)| cairn::blockstore::Block::new(c, d).expect("the adder's CIDs match"))
        .collect()
}
