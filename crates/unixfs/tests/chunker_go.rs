//! Rabin and buzhash chunk boundaries against boxo's own Go code: `fixtures/go_chunks.txt` holds
//! the chunk lengths boxo's `chunker.NewRabinMinMax` / `chunker.NewBuzhash` produced for the
//! same bytes (generator: `go/main.go`). The JS importer cannot serve here: its rabin is a
//! different algorithm (ipfs/js-ipfs-unixfs#50) and it has no buzhash.

mod common;

use cairn_unixfs::chunker::{ChunkerSpec, Splitter};
use common::random_bytes;

/// The generator's data (the same as `go/main.go`'s): zeros for seed 0, else xorshift64* words,
/// little-endian.
fn data(n: usize, seed: u64) -> Vec<u8> {
    if seed == 0 {
        return vec![0; n];
    }
    random_bytes(n, seed)
}

fn split(spec: ChunkerSpec, bytes: &[u8], piece: usize) -> Vec<usize> {
    let mut s = Splitter::new(spec);
    let mut out = Vec::new();
    for p in bytes.chunks(piece) {
        s.push(p, &mut out);
    }
    s.finish(&mut out);
    out.iter().map(Vec::len).collect()
}

#[test]
fn boundaries_equal_boxos() {
    let fixture = include_str!("fixtures/go_chunks.txt");
    let mut cases = 0;
    for line in fixture
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let parts: Vec<&str> = line.split(' ').collect();
        let spec: ChunkerSpec = parts[0].parse().unwrap();
        let n: usize = parts[1].parse().unwrap();
        let seed: u64 = parts[2].parse().unwrap();
        let want: Vec<usize> = parts[3].split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(want.iter().sum::<usize>(), n);
        let bytes = data(n, seed);
        // Whole, and in odd pieces: boundaries must not depend on how input arrives.
        for piece in [n.max(1), 1 << 20, 65_537, 4_093] {
            assert_eq!(split(spec, &bytes, piece), want, "{line:.60} piece {piece}");
        }
        cases += 1;
    }
    assert_eq!(cases, 10);
}

#[test]
fn empty_input_has_no_chunks() {
    for spec in ["size-1024", "rabin", "buzhash"] {
        assert!(split(spec.parse().unwrap(), &[], 1).is_empty(), "{spec}");
    }
}
