//! Chunkers: how `ipfs add` cuts a byte stream into leaves, as boxo's `chunker` package does.
//!
//! [`ChunkerSpec`] parses Kubo's `--chunker` strings (`size-N`, `rabin`, `rabin-AVG`,
//! `rabin-MIN-AVG-MAX`, `buzhash`) with boxo's limits and messages. [`Splitter`] is the
//! streaming form: bytes are pushed in pieces of any size and complete chunks come out, so a
//! chunk boundary never depends on how the input was split. It keeps at most one chunk's worth
//! of bytes (the chunker's maximum chunk size) between calls.
//!
//! - `size-N`: chunks of exactly N bytes, the last one shorter.
//! - rabin: boxo's `whyrusleeping/chunker` port of restic's Rabin fingerprinting: polynomial
//!   0x3DF305DFB2A805 (`IpfsRabinPoly` = 17437180132763653), a 16-byte window, a boundary where
//!   the low `floor(log2(avg))` bits of the fingerprint are zero, bounded by min and max; the
//!   fingerprint restarts at each chunk with one `1` byte slid in, and the first `min - 16`
//!   bytes of a chunk are not fingerprinted.
//! - buzhash: boxo's `Buzhash`: a 32-byte cyclic-polynomial window over a fixed 256-entry table,
//!   a boundary where the low 17 bits are zero, chunks of 128 KiB to 512 KiB.

use std::fmt;
use std::str::FromStr;

use crate::UnixfsError;

/// The largest chunk boxo accepts (`chunker.ChunkSizeLimit` = 2 MiB - 256 since boxo raised the
/// block limit to 2 MiB; older Kubo releases used 1 MiB).
pub const CHUNK_SIZE_LIMIT: usize = 2 * 1024 * 1024 - 256;
/// Kubo's default chunk size (`chunker.DefaultBlockSize`, `size-262144`).
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// A chunker configuration, parsed from Kubo's `--chunker` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkerSpec {
    /// `size-N`: fixed-size chunks of N bytes.
    Size(usize),
    /// `rabin...`: content-defined chunks of `min..=max` bytes aiming at `avg`.
    Rabin {
        /// Smallest chunk (except the last), bytes.
        min: usize,
        /// Target average, bytes; its `floor(log2)` sets the boundary mask.
        avg: usize,
        /// Largest chunk, bytes.
        max: usize,
    },
    /// `buzhash`: content-defined chunks of 128 KiB to 512 KiB.
    Buzhash,
}

impl Default for ChunkerSpec {
    fn default() -> Self {
        ChunkerSpec::Size(DEFAULT_CHUNK_SIZE)
    }
}

impl fmt::Display for ChunkerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkerSpec::Size(n) => write!(f, "size-{n}"),
            ChunkerSpec::Rabin { min, avg, max } => write!(f, "rabin-{min}-{avg}-{max}"),
            ChunkerSpec::Buzhash => f.write_str("buzhash"),
        }
    }
}

fn arg(msg: impl Into<String>) -> UnixfsError {
    UnixfsError::InvalidArgument(msg.into())
}

/// Go's `strconv.Atoi` as boxo uses it: an optional sign and decimal digits; the error text
/// mirrors Go's `strconv.Atoi: parsing "x": invalid syntax`.
fn atoi(s: &str) -> Result<i64, UnixfsError> {
    s.parse::<i64>()
        .map_err(|_| arg(format!("strconv.Atoi: parsing {s:?}: invalid syntax")))
}

impl FromStr for ChunkerSpec {
    type Err = UnixfsError;

    /// Parses a Kubo `--chunker` value as boxo's `chunk.FromString` does, with its messages:
    /// `""`/`default` → `size-262144`; `size-N` (0 < N ≤ [`CHUNK_SIZE_LIMIT`]); `rabin`
    /// (avg 262144, min avg/3, max avg·1.5); `rabin-AVG`; `rabin-MIN-AVG-MAX` (each part may carry
    /// its `min:`/`avg:`/`max:` label; MIN ≥ 16, MIN < AVG < MAX ≤ limit); `buzhash`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s == "default" {
            return Ok(ChunkerSpec::default());
        }
        let limit_err = || {
            arg(format!(
                "chunker parameters may not exceed the maximum chunk size of {CHUNK_SIZE_LIMIT}"
            ))
        };
        let parts: Vec<&str> = s.split('-').collect();
        match parts[0] {
            "size" => {
                if parts.len() != 2 {
                    return Err(arg(
                        "incorrect chunker string format (expected size-{size})",
                    ));
                }
                let n = atoi(parts[1])?;
                if n <= 0 {
                    return Err(arg("chunker size must be greater than 0"));
                }
                if n > CHUNK_SIZE_LIMIT as i64 {
                    return Err(limit_err());
                }
                Ok(ChunkerSpec::Size(n as usize))
            }
            "buzhash" => Ok(ChunkerSpec::Buzhash),
            "rabin" => match parts.len() {
                1 => Ok(rabin_from_avg(DEFAULT_CHUNK_SIZE)),
                2 => {
                    let avg = atoi(parts[1])?;
                    // boxo checks int(float32(avg)*1.5) against the limit, and no lower bound.
                    if (avg as f32 * 1.5) as i64 > CHUNK_SIZE_LIMIT as i64 {
                        return Err(limit_err());
                    }
                    if avg < 48 {
                        // boxo would build a chunker with min < 16 and underflow its window
                        // arithmetic; refuse instead.
                        return Err(arg("rabin min must be greater than 16"));
                    }
                    Ok(rabin_from_avg(avg as usize))
                }
                4 => {
                    let labelled =
                        |part: &str, label: &str, msg: &str| -> Result<i64, UnixfsError> {
                            let sub: Vec<&str> = part.split(':').collect();
                            if sub.len() > 1 && sub[0] != label {
                                return Err(arg(msg));
                            }
                            atoi(sub[sub.len() - 1])
                        };
                    let min = labelled(parts[1], "min", "first label must be min")?;
                    if min < 16 {
                        return Err(arg("rabin min must be greater than 16"));
                    }
                    let avg = labelled(parts[2], "avg", "second label must be avg")?;
                    let max = labelled(parts[3], "max", "final label must be max")?;
                    if min >= avg {
                        return Err(arg(
                            "incorrect format: rabin-min must be smaller than rabin-avg",
                        ));
                    }
                    if avg >= max {
                        return Err(arg(
                            "incorrect format: rabin-avg must be smaller than rabin-max",
                        ));
                    }
                    if max > CHUNK_SIZE_LIMIT as i64 {
                        return Err(limit_err());
                    }
                    Ok(ChunkerSpec::Rabin {
                        min: min as usize,
                        avg: avg as usize,
                        max: max as usize,
                    })
                }
                _ => Err(arg(
                    "incorrect format (expected 'rabin' 'rabin-[avg]' or 'rabin-[min]-[avg]-[max]'",
                )),
            },
            _ => Err(arg(format!("unrecognized chunker option: {s}"))),
        }
    }
}

/// boxo's `NewRabin(avg)`: min = avg/3, max = avg + avg/2.
fn rabin_from_avg(avg: usize) -> ChunkerSpec {
    ChunkerSpec::Rabin {
        min: avg / 3,
        avg,
        max: avg + avg / 2,
    }
}

impl ChunkerSpec {
    /// Checks a spec built by hand against the limits [`ChunkerSpec::from_str`] enforces:
    /// `0 < size ≤` [`CHUNK_SIZE_LIMIT`]; for rabin `16 ≤ min < avg < max ≤` the limit.
    pub fn validate(&self) -> Result<(), UnixfsError> {
        match *self {
            ChunkerSpec::Size(0) => Err(arg("chunker size must be greater than 0")),
            ChunkerSpec::Size(n) | ChunkerSpec::Rabin { max: n, .. } if n > CHUNK_SIZE_LIMIT => {
                Err(arg(format!(
                    "chunker parameters may not exceed the maximum chunk size of {CHUNK_SIZE_LIMIT}"
                )))
            }
            ChunkerSpec::Rabin { min, .. } if min < WINDOW => {
                Err(arg("rabin min must be greater than 16"))
            }
            ChunkerSpec::Rabin { min, avg, max } if min >= avg || avg >= max => Err(arg(
                "incorrect format: rabin-min < rabin-avg < rabin-max is required",
            )),
            _ => Ok(()),
        }
    }

    /// The largest chunk this chunker produces, in bytes (what a [`Splitter`] may buffer).
    pub fn max_chunk_size(&self) -> usize {
        match *self {
            ChunkerSpec::Size(n) => n,
            ChunkerSpec::Rabin { max, .. } => max,
            ChunkerSpec::Buzhash => BUZ_MAX,
        }
    }
}

/// A streaming chunker: [`Splitter::push`] bytes, take complete chunks, [`Splitter::finish`] for
/// the last one. Never yields an empty chunk.
#[derive(Debug)]
pub struct Splitter {
    /// Bytes of the chunk in progress (at most the chunker's maximum chunk size).
    buf: Vec<u8>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Size(usize),
    Rabin(Box<Rabin>),
    Buzhash,
}

impl Splitter {
    /// A splitter for `spec`. A spec built by hand (not parsed) with a size of 0, or a rabin min
    /// below 16 or not below avg and max, is clamped to the nearest valid value.
    pub fn new(spec: ChunkerSpec) -> Self {
        let kind = match spec {
            ChunkerSpec::Size(n) => Kind::Size(n.max(1)),
            ChunkerSpec::Rabin { min, avg, max } => {
                let min = min.max(WINDOW);
                let avg = avg.max(min + 1);
                Kind::Rabin(Box::new(Rabin::new(min, avg, max.max(avg + 1))))
            }
            ChunkerSpec::Buzhash => Kind::Buzhash,
        };
        Splitter {
            buf: Vec::new(),
            kind,
        }
    }

    /// Feeds `data`; every chunk it completes is appended to `out`, in order.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Vec<u8>>) {
        match &mut self.kind {
            Kind::Size(n) => {
                let n = *n;
                while !data.is_empty() {
                    if self.buf.is_empty() && data.len() >= n {
                        // Whole chunks straight from the input, without the extra copy.
                        out.push(data[..n].to_vec());
                        data = &data[n..];
                        continue;
                    }
                    let take = (n - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() == n {
                        out.push(std::mem::replace(&mut self.buf, Vec::with_capacity(n)));
                    }
                }
            }
            Kind::Rabin(r) => {
                while !data.is_empty() {
                    let (used, cut) = r.scan(data);
                    self.buf.extend_from_slice(&data[..used]);
                    data = &data[used..];
                    if cut {
                        out.push(std::mem::take(&mut self.buf));
                    }
                }
            }
            Kind::Buzhash => {
                while !data.is_empty() {
                    let take = (BUZ_MAX - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() == BUZ_MAX {
                        let cut = buzhash_cut(&self.buf);
                        let rest = self.buf.split_off(cut);
                        out.push(std::mem::replace(&mut self.buf, rest));
                    }
                }
            }
        }
    }

    /// Ends the input: the remaining bytes become the last chunks (none when nothing is left).
    pub fn finish(mut self, out: &mut Vec<Vec<u8>>) {
        if let Kind::Buzhash = self.kind {
            // Fewer than BUZ_MAX bytes are buffered; boxo still looks for boundaries in them.
            while self.buf.len() >= BUZ_MIN {
                let cut = buzhash_cut(&self.buf);
                if cut == self.buf.len() {
                    break;
                }
                let rest = self.buf.split_off(cut);
                out.push(std::mem::replace(&mut self.buf, rest));
            }
        }
        if !self.buf.is_empty() {
            out.push(self.buf);
        }
    }
}

// ---- rabin ------------------------------------------------------------------------------

/// boxo's `IpfsRabinPoly`, an irreducible polynomial of degree 53.
const RABIN_POLY: u64 = 17437180132763653;
/// The Rabin window, bytes (`whyrusleeping/chunker` `windowSize`).
const WINDOW: usize = 16;

/// Degree of a GF(2) polynomial (-1 for 0).
fn deg(x: u64) -> i32 {
    63 - x.leading_zeros() as i32
}

/// `x mod p` over GF(2).
fn pol_mod(mut x: u64, p: u64) -> u64 {
    let dp = deg(p);
    while x != 0 && deg(x) >= dp {
        x ^= p << (deg(x) - dp);
    }
    x
}

/// Rabin fingerprinting state for the chunk in progress.
struct Rabin {
    out_table: [u64; 256],
    mod_table: [u64; 256],
    pol_shift: u32,
    mask: u64,
    min: usize,
    max: usize,
    window: [u8; WINDOW],
    wpos: usize,
    digest: u64,
    /// Bytes in the current chunk.
    count: usize,
    /// Bytes still to pass before fingerprinting starts (`min - WINDOW` at a chunk start).
    pre: usize,
}

impl fmt::Debug for Rabin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rabin")
            .field("min", &self.min)
            .field("max", &self.max)
            .field("mask", &self.mask)
            .finish_non_exhaustive()
    }
}

impl Rabin {
    fn new(min: usize, avg: usize, max: usize) -> Self {
        let k = deg(RABIN_POLY);
        let append = |h: u64, b: u8| pol_mod((h << 8) | u64::from(b), RABIN_POLY);
        let mut out_table = [0u64; 256];
        let mut mod_table = [0u64; 256];
        for b in 0..256usize {
            let mut h = append(0, b as u8);
            for _ in 0..WINDOW - 1 {
                h = append(h, 0);
            }
            out_table[b] = h;
            mod_table[b] = pol_mod((b as u64) << k, RABIN_POLY) | ((b as u64) << k);
        }
        // Go: sizepow := uint(math.Log2(float64(avSize))), a floor for these magnitudes.
        let sizepow = usize::BITS - 1 - avg.leading_zeros();
        let mut r = Rabin {
            out_table,
            mod_table,
            pol_shift: (k - 8) as u32,
            mask: (1u64 << sizepow) - 1,
            min,
            max,
            window: [0; WINDOW],
            wpos: 0,
            digest: 0,
            count: 0,
            pre: 0,
        };
        r.reset();
        r
    }

    fn reset(&mut self) {
        self.window = [0; WINDOW];
        self.wpos = 0;
        self.digest = 0;
        self.count = 0;
        self.slide(1);
        self.pre = self.min - WINDOW;
    }

    #[inline]
    fn slide(&mut self, b: u8) {
        let out = self.window[self.wpos];
        self.window[self.wpos] = b;
        self.digest ^= self.out_table[usize::from(out)];
        self.wpos = (self.wpos + 1) % WINDOW;
        let index = (self.digest >> self.pol_shift) as usize & 0xff;
        self.digest = (self.digest << 8) | u64::from(b);
        self.digest ^= self.mod_table[index];
    }

    /// Scans `data` for the current chunk's end: how many bytes belong to the chunk, and whether
    /// the chunk ends there (after which the state is reset for the next chunk).
    fn scan(&mut self, data: &[u8]) -> (usize, bool) {
        let mut i = 0;
        if self.pre > 0 {
            let skip = self.pre.min(data.len());
            self.pre -= skip;
            self.count += skip;
            i = skip;
        }
        while i < data.len() {
            self.slide(data[i]);
            self.count += 1;
            i += 1;
            if self.count >= self.min && ((self.digest & self.mask) == 0 || self.count >= self.max)
            {
                self.reset();
                return (i, true);
            }
        }
        (i, false)
    }
}

// ---- buzhash ----------------------------------------------------------------------------

/// Smallest buzhash chunk (except the last), bytes (boxo `buzMin`).
const BUZ_MIN: usize = 128 << 10;
/// Largest buzhash chunk, bytes (boxo `buzMax`).
const BUZ_MAX: usize = 512 << 10;
/// A boundary is where the rolling hash's low 17 bits are zero (boxo `buzMask`).
const BUZ_MASK: u32 = (1 << 17) - 1;
/// The rolling window, bytes.
const BUZ_WINDOW: usize = 32;

/// The length of the first chunk of `buf` (`buf.len() >= BUZ_MIN`): the first `L` in
/// `BUZ_MIN..buf.len()` whose window `buf[L-32..L]` hashes to a boundary, else `buf.len()`
/// (boxo never tests the window that ends at the buffered data's end).
fn buzhash_cut(buf: &[u8]) -> usize {
    let mut state: u32 = 0;
    for &b in &buf[BUZ_MIN - BUZ_WINDOW..BUZ_MIN] {
        state = state.rotate_left(1) ^ BUZ_TABLE[usize::from(b)];
    }
    let mut end = BUZ_MIN;
    while end < buf.len() {
        if state & BUZ_MASK == 0 {
            return end;
        }
        // Rotating a 32-bit value 32 times is the identity, so the byte leaving the window is
        // removed by XORing its table entry unrotated.
        state = state.rotate_left(1)
            ^ BUZ_TABLE[usize::from(buf[end - BUZ_WINDOW])]
            ^ BUZ_TABLE[usize::from(buf[end])];
        end += 1;
    }
    buf.len()
}

/// boxo's `bytehash` table (chunker/buzhash.go): the CIDs depend on these exact values.
#[rustfmt::skip]
static BUZ_TABLE: [u32; 256] = [
    0x6236e7d5, 0x10279b0b, 0x72818182, 0xdc526514, 0x2fd41e3d, 0x777ef8c8,
    0x83ee5285, 0x2c8f3637, 0x2f049c1a, 0x57df9791, 0x9207151f, 0x9b544818,
    0x74eef658, 0x2028ca60, 0x0271d91a, 0x27ae587e, 0xecf9fa5f, 0x236e71cd,
    0xf43a8a2e, 0xbb13380, 0x9e57912c, 0x89a26cdb, 0x9fcf3d71, 0xa86da6f1,
    0x9c49f376, 0x346aecc7, 0xf094a9ee, 0xea99e9cb, 0xb01713c6, 0x88acffb,
    0x2960a0fb, 0x344a626c, 0x7ff22a46, 0x6d7a1aa5, 0x6a714916, 0x41d454ca,
    0x8325b830, 0xb65f563, 0x447fecca, 0xf9d0ea5e, 0xc1d9d3d4, 0xcb5ec574,
    0x55aae902, 0x86edc0e7, 0xd3a9e33, 0xe70dc1e1, 0xe3c5f639, 0x9b43140a,
    0xc6490ac5, 0x5e4030fb, 0x8e976dd5, 0xa87468ea, 0xf830ef6f, 0xcc1ed5a5,
    0x611f4e78, 0xddd11905, 0xf2613904, 0x566c67b9, 0x905a5ccc, 0x7b37b3a4,
    0x4b53898a, 0x6b8fd29d, 0xaad81575, 0x511be414, 0x3cfac1e7, 0x8029a179,
    0xd40efeda, 0x7380e02, 0xdc9beffd, 0x2d049082, 0x99bc7831, 0xff5002a8,
    0x21ce7646, 0x1cd049b, 0xf43994f, 0xc3c6c5a5, 0xbbda5f50, 0xec15ec7,
    0x9adb19b6, 0xc1e80b9, 0xb9b52968, 0xae162419, 0x2542b405, 0x91a42e9d,
    0x6be0f668, 0x6ed7a6b9, 0xbc2777b4, 0xe162ce56, 0x4266aad5, 0x60fdb704,
    0x66f832a5, 0x9595f6ca, 0xfee83ced, 0x55228d99, 0x12bf0e28, 0x66896459,
    0x789afda, 0x282baa8, 0x2367a343, 0x591491b0, 0x2ff1a4b1, 0x410739b6,
    0x9b7055a0, 0x2e0eb229, 0x24fc8252, 0x3327d3df, 0xb0782669, 0x1c62e069,
    0x7f503101, 0xf50593ae, 0xd9eb275d, 0xe00eb678, 0x5917ccde, 0x97b9660a,
    0xdd06202d, 0xed229e22, 0xa9c735bf, 0xd6316fe6, 0x6fc72e4c, 0x206dfa2,
    0xd6b15c5a, 0x69d87b49, 0x9c97745, 0x13445d61, 0x35a975aa, 0x859aa9b9,
    0x65380013, 0xd1fb6391, 0xc29255fd, 0x784a3b91, 0xb9e74c26, 0x63ce4d40,
    0xc07cbe9e, 0xe6e4529e, 0xfb3632f, 0x9438d9c9, 0x682f94a8, 0xf8fd4611,
    0x257ec1ed, 0x475ce3d6, 0x60ee2db1, 0x2afab002, 0x2b9e4878, 0x86b340de,
    0x1482fdca, 0xfe41b3bf, 0xd4a412b0, 0xe09db98c, 0xc1af5d53, 0x7e55e25f,
    0xd3346b38, 0xb7a12cbd, 0x9c6827ba, 0x71f78bee, 0x8c3a0f52, 0x150491b0,
    0xf26de912, 0x233e3a4e, 0xd309ebba, 0xa0a9e0ff, 0xca2b5921, 0xeeb9893c,
    0x33829e88, 0x9870cc2a, 0x23c4b9d0, 0xeba32ea3, 0xbdac4d22, 0x3bc8c44c,
    0x1e8d0397, 0xf9327735, 0x783b009f, 0xeb83742, 0x2621dc71, 0xed017d03,
    0x5c760aa1, 0x5a69814b, 0x96e3047f, 0xa93c9cde, 0x615c86f5, 0xb4322aa5,
    0x4225534d, 0xd2e2de3, 0xccfccc4b, 0xbac2a57, 0xf0a06d04, 0xbc78d737,
    0xf2d1f766, 0xf5a7953c, 0xbcdfda85, 0x5213b7d5, 0xbce8a328, 0xd38f5f18,
    0xdb094244, 0xfe571253, 0x317fa7ee, 0x4a324f43, 0x3ffc39d9, 0x51b3fa8e,
    0x7a4bee9f, 0x78bbc682, 0x9f5c0350, 0x2fe286c, 0x245ab686, 0xed6bf7d7,
    0xac4988a, 0x3fe010fa, 0xc65fe369, 0xa45749cb, 0x2b84e537, 0xde9ff363,
    0x20540f9a, 0xaa8c9b34, 0x5bc476b3, 0x1d574bd7, 0x929100ad, 0x4721de4d,
    0x27df1b05, 0x58b18546, 0xb7e76764, 0xdf904e58, 0x97af57a1, 0xbd4dc433,
    0xa6256dfd, 0xf63998f3, 0xf1e05833, 0xe20acf26, 0xf57fd9d6, 0x90300b4d,
    0x89df4290, 0x68d01cbc, 0xcf893ee3, 0xcc42a046, 0x778e181b, 0x67265c76,
    0xe981a4c4, 0x82991da1, 0x708f7294, 0xe6e2ae62, 0xfc441870, 0x95e1b0b6,
    0x445f825, 0x5a93b47f, 0x5e9cf4be, 0x84da71e7, 0x9d9582b0, 0x9bf835ef,
    0x591f61e2, 0x43325985, 0x5d2de32e, 0x8d8fbf0f, 0x95b30f38, 0x7ad5b6e,
    0x4e934edf, 0x3cd4990e, 0x9053e259, 0x5c41857d,
];
