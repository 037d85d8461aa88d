//! Rabin and buzhash chunk boundaries against boxo's own Go code: `fixtures/go_chunks.txt` holds
//! the chunk lengths boxo's `chunker.NewRabinMinMax` / `chunker.NewBuzhash` produced for the
//! same bytes (generator: `go/main.go`). The JS importer cannot serve here: its rabin is a
//! different algorithm (ipfs/js-ipfs-unixfs#50) and it has no buzhash.

use cairn_unixfs::chunker::{ChunkerSpec, Splitter};

/// The generator's data: zeros for seed 0, else xorshift64* words, little-endian.
fn data(n: usize, seed: u64) -> Vec<u8> {
    if seed == 0 {
        return vec![0; n];
    }
    let mut s = seed | 1;
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
