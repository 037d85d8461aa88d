//! CAR (Content Addressable aRchive) files: a CARv1 writer for `dag export` and a CARv1/CARv2
//! reader for `dag import`.
//!
//! CARv1 (<https://ipld.io/specs/transport/car/carv1/>): `varint(len) dag-cbor{roots, version:
//! 1}`, then sections `varint(len) CID-bytes block-bytes`. CARv2
//! (<https://ipld.io/specs/transport/car/carv2/>): an 11-byte pragma (itself a v1 header with
//! `version: 2`), a 40-byte header (characteristics, data offset, data size, index offset, the
//! numbers little-endian), and a CARv1 payload at the data offset; the reader reads that payload
//! and ignores the index.
//!
//! The writer walks the DAG as Kubo's `dag export` does: depth first, links in order, each block
//! written once, at its first sighting. It holds the CIDs pending along the current path and the
//! set of CIDs written, never more than one block.
//!
//! The reader checks every block's hash against its CID, refuses sections over
//! [`MAX_SECTION_LEN`] and headers over [`MAX_HEADER_LEN`], and names what is wrong in a
//! [`UnixfsError::Car`]; it holds one section at a time.

use std::collections::HashSet;

use bytes::Bytes;
use futures::Stream;
use futures::stream;
use ipld_core::ipld::Ipld;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use crate::exporter::load;
use crate::{Block, BlockSource, Cid, UnixfsError};

/// The largest section (CID plus block) the reader accepts: 2 MiB of block (Kubo's Bitswap
/// limit; its `dag import` refuses larger blocks too) plus room for the CID.
pub const MAX_SECTION_LEN: u64 = 2 * 1024 * 1024 + 1024;
/// The largest CARv1 header the reader accepts (a dag-cbor map of roots): 1 MiB.
pub const MAX_HEADER_LEN: u64 = 1024 * 1024;
/// The CARv2 pragma: a CARv1 header `{"version": 2}` with its varint length.
pub const CARV2_PRAGMA: [u8; 11] = [
    0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02,
];
/// The CARv2 header's length after the pragma.
const CARV2_HEADER_LEN: u64 = 40;

fn car_err(reason: impl Into<String>) -> UnixfsError {
    UnixfsError::Car(reason.into())
}

/// The CARv1 header: dag-cbor `{roots, version}` (canonical key order: `roots` first).
pub(crate) fn header_bytes(roots: &[Cid]) -> Result<Vec<u8>, UnixfsError> {
    let mut map = std::collections::BTreeMap::new();
    map.insert(
        "roots".to_string(),
        Ipld::List(roots.iter().copied().map(Ipld::Link).collect()),
    );
    map.insert("version".to_string(), Ipld::Integer(1));
    let body = serde_ipld_dagcbor::to_vec(&Ipld::Map(map)).map_err(|e| car_err(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() + 4);
    push_varint(body.len() as u64, &mut out);
    out.extend_from_slice(&body);
    Ok(out)
}

fn push_varint(n: u64, out: &mut Vec<u8>) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(n, &mut buf));
}

/// One CAR section: `varint(len(CID) + len(data))`, the CID's bytes, the data.
pub fn section(cid: &Cid, data: &[u8]) -> Bytes {
    let cid = cid.to_bytes();
    let mut out = Vec::with_capacity(cid.len() + data.len() + 10);
    push_varint((cid.len() + data.len()) as u64, &mut out);
    out.extend_from_slice(&cid);
    out.extend_from_slice(data);
    Bytes::from(out)
}

struct ExportState<'a, S: ?Sized> {
    src: &'a S,
    header: Option<Bytes>,
    roots: std::vec::IntoIter<Cid>,
    stack: Vec<Cid>,
    seen: HashSet<Cid>,
}

impl<S: BlockSource + ?Sized> ExportState<'_, S> {
    async fn next(&mut self) -> Result<Option<Bytes>, UnixfsError> {
        if let Some(h) = self.header.take() {
            return Ok(Some(h));
        }
        loop {
            let cid = match self.stack.pop() {
                Some(c) => c,
                None => match self.roots.next() {
                    Some(r) => r,
                    None => return Ok(None),
                },
            };
            // Checked when popped, not when pushed: a CID met again deeper in an earlier
            // sibling's subtree is written there, in true depth-first order.
            if !self.seen.insert(cid) {
                continue;
            }
            let data = load(self.src, &cid).await?;
            let links = cairn_blockstore::codec::links(&cid, &data).map_err(|e| {
                UnixfsError::InvalidBlock {
                    cid,
                    reason: e.to_string(),
                }
            })?;
            self.stack
                .extend(links.into_iter().rev().filter(|l| !self.seen.contains(l)));
            return Ok(Some(section(&cid, &data)));
        }
    }
}

/// `dag export`: a CARv1 byte stream of the DAGs under `roots` (header first, then one section
/// per block, depth first, each block once). A missing or undecodable block ends the stream
/// with that error (Kubo's `dag export` fails the same way; the bytes before it are a truncated
/// CAR).
///
/// # Errors
/// In the stream: [`UnixfsError::BlockNotFound`], [`UnixfsError::InvalidBlock`] (a codec the
/// walk cannot read), store errors.
pub fn export<'a, S: BlockSource + ?Sized>(
    src: &'a S,
    roots: Vec<Cid>,
) -> impl Stream<Item = Result<Bytes, UnixfsError>> + Send + 'a {
    let header = header_bytes(&roots);
    let state = header.map(|h| ExportState {
        src,
        header: Some(Bytes::from(h)),
        roots: roots.into_iter(),
        stack: Vec::new(),
        seen: HashSet::new(),
    });
    stream::unfold(Some(state), |state| async move {
        let mut state = match state? {
            Ok(s) => s,
            Err(e) => return Some((Err(e), None)),
        };
        match state.next().await {
            Ok(Some(b)) => Some((Ok(b), Some(Ok(state)))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// A streaming CAR reader (CARv1, or CARv2's inner CARv1 payload).
#[derive(Debug)]
pub struct CarReader<R> {
    inner: BufReader<R>,
    roots: Vec<Cid>,
    version: u64,
    /// Bytes of CARv1 payload left (CARv2's data size); `None` to read to end of input.
    remaining: Option<u64>,
}

/// Reads a varint, `Ok(None)` on a clean end of input before its first byte.
async fn read_varint<R: AsyncRead + Unpin>(
    r: &mut R,
    remaining: &mut Option<u64>,
) -> Result<Option<u64>, UnixfsError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        if *remaining == Some(0) {
            return if i == 0 {
                Ok(None)
            } else {
                Err(car_err("truncated varint"))
            };
        }
        let mut byte = [0u8; 1];
        let n = r.read(&mut byte).await?;
        if n == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(car_err("truncated varint"))
            };
        }
        if let Some(rem) = remaining.as_mut() {
            *rem -= 1;
        }
        let b = byte[0];
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(car_err("varint is not minimally encoded"));
            }
            return Ok(Some(value));
        }
        if i == 9 {
            break;
        }
    }
    Err(car_err("varint too long"))
}

/// Reads exactly `len` bytes, or reports a truncated CAR.
async fn read_exact<R: AsyncRead + Unpin>(
    r: &mut R,
    len: u64,
    remaining: &mut Option<u64>,
    what: &str,
) -> Result<Vec<u8>, UnixfsError> {
    if let Some(rem) = remaining.as_mut() {
        if len > *rem {
            return Err(car_err(format!("{what} runs past the CARv2 data size")));
        }
        *rem -= len;
    }
    let mut buf = vec![0u8; len as usize];
    match r.read_exact(&mut buf).await {
        Ok(_) => Ok(buf),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(car_err(format!("truncated {what}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Decodes a CAR header's dag-cbor: `(version, roots)`.
fn parse_header(bytes: &[u8]) -> Result<(u64, Vec<Cid>), UnixfsError> {
    let ipld: Ipld = serde_ipld_dagcbor::from_slice(bytes)
        .map_err(|e| car_err(format!("header is not dag-cbor: {e}")))?;
    let Ipld::Map(map) = ipld else {
        return Err(car_err("header is not a map"));
    };
    let version = match map.get("version") {
        Some(Ipld::Integer(v)) => u64::try_from(*v).map_err(|_| car_err("bad header version"))?,
        _ => return Err(car_err("header has no version")),
    };
    let roots = match map.get("roots") {
        None => Vec::new(),
        Some(Ipld::List(l)) => l
            .iter()
            .map(|r| match r {
                Ipld::Link(c) => Ok(*c),
                _ => Err(car_err("header root is not a CID")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(car_err("header roots is not a list")),
    };
    Ok((version, roots))
}

impl<R: AsyncRead + Unpin> CarReader<R> {
    /// Reads the header (and, for CARv2, its 40-byte header, skipping to the payload).
    ///
    /// # Errors
    /// [`UnixfsError::Car`] for an empty input, a header over [`MAX_HEADER_LEN`], a header that
    /// is not `{version, roots}` dag-cbor, or a version other than 1 or 2, or
    /// a CARv2 header whose data offset points inside itself.
    pub async fn new(input: R) -> Result<Self, UnixfsError> {
        let mut inner = BufReader::new(input);
        let mut unbounded = None;
        let (version, roots, remaining) = {
            let len = read_varint(&mut inner, &mut unbounded)
                .await?
                .ok_or_else(|| car_err("empty input"))?;
            if len == 0 || len > MAX_HEADER_LEN {
                return Err(car_err(format!("header length {len} is out of bounds")));
            }
            let header = read_exact(&mut inner, len, &mut unbounded, "header").await?;
            match parse_header(&header)? {
                (1, roots) => (1, roots, None),
                (2, _) => {
                    let h =
                        read_exact(&mut inner, CARV2_HEADER_LEN, &mut unbounded, "CARv2 header")
                            .await?;
                    let le = |i: usize| {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&h[i..i + 8]);
                        u64::from_le_bytes(b)
                    };
                    let (offset, size) = (le(16), le(24));
                    let consumed = CARV2_PRAGMA.len() as u64 + CARV2_HEADER_LEN;
                    if offset < consumed {
                        return Err(car_err(format!(
                            "CARv2 data offset {offset} is inside its header"
                        )));
                    }
                    // Skip any padding between the header and the payload.
                    let skip = offset - consumed;
                    let copied =
                        tokio::io::copy(&mut (&mut inner).take(skip), &mut tokio::io::sink())
                            .await?;
                    if copied != skip {
                        return Err(car_err("truncated CARv2 padding"));
                    }
                    let mut remaining = Some(size);
                    let len = read_varint(&mut inner, &mut remaining)
                        .await?
                        .ok_or_else(|| car_err("CARv2 payload is empty"))?;
                    if len == 0 || len > MAX_HEADER_LEN {
                        return Err(car_err(format!("header length {len} is out of bounds")));
                    }
                    let header = read_exact(&mut inner, len, &mut remaining, "header").await?;
                    match parse_header(&header)? {
                        (1, roots) => (2, roots, remaining),
                        (v, _) => {
                            return Err(car_err(format!("CARv2 payload has version {v}, not 1")));
                        }
                    }
                }
                (v, _) => return Err(car_err(format!("unsupported CAR version {v}"))),
            }
        };
        Ok(CarReader {
            inner,
            roots,
            version,
            remaining,
        })
    }

    /// The roots named in the header.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// 1 or 2: the CAR version of the input (a CARv2's payload is always read as CARv1).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The next block, hash-checked; `Ok(None)` at the end of the payload.
    ///
    /// # Errors
    /// [`UnixfsError::Car`] for a truncated or oversized section (over [`MAX_SECTION_LEN`]), a
    /// bad CID, or data that does not hash to its CID.
    pub async fn next_block(&mut self) -> Result<Option<Block>, UnixfsError> {
        let Some(len) = read_varint(&mut self.inner, &mut self.remaining).await? else {
            return Ok(None);
        };
        if len == 0 {
            // go-car stops at a zero-length section (CARv2 payloads may be zero-padded).
            return Ok(None);
        }
        if len > MAX_SECTION_LEN {
            return Err(car_err(format!(
                "section of {len} bytes is over the {MAX_SECTION_LEN} byte limit"
            )));
        }
        let buf = read_exact(&mut self.inner, len, &mut self.remaining, "section").await?;
        let mut cursor = std::io::Cursor::new(&buf[..]);
        let cid = Cid::read_bytes(&mut cursor)
            .map_err(|e| car_err(format!("bad CID in section: {e}")))?;
        let start = cursor.position() as usize;
        let data = Bytes::from(buf).slice(start..);
        // `Block::new` checks the data against the CID's hash.
        Block::new(cid, data)
            .map(Some)
            .map_err(|e| car_err(format!("block {cid}: {e}")))
    }

    /// The remaining blocks as a stream.
    pub fn blocks(self) -> impl Stream<Item = Result<Block, UnixfsError>> {
        stream::unfold(Some(self), |r| async move {
            let mut r = r?;
            match r.next_block().await {
                Ok(Some(b)) => Some((Ok(b), Some(r))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

/// What [`import`] read: the CAR's roots and how many blocks it stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The roots named in the header (Kubo's `dag import` pins these unless `--pin-roots=false`).
    pub roots: Vec<Cid>,
    /// Blocks read and handed to the sink (duplicates included, as they appear in the CAR).
    pub blocks: u64,
}

/// `dag import`: reads a CAR (v1 or v2) and stores its blocks into `sink` in batches of at most
/// `batch` blocks (and at most 8 MiB), so memory is one batch whatever the CAR's size.
///
/// # Errors
/// The reader's errors ([`UnixfsError::Car`]; blocks before the bad one are already stored, as
/// in Kubo), and [`UnixfsError::Store`] if the sink fails.
pub async fn import<R: AsyncRead + Unpin, K: crate::BlockSink + ?Sized>(
    input: R,
    sink: &K,
    batch: usize,
) -> Result<Imported, UnixfsError> {
    const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
    let mut reader = CarReader::new(input).await?;
    let roots = reader.roots().to_vec();
    let mut pending = Vec::new();
    let mut bytes = 0usize;
    let mut count = 0u64;
    loop {
        let (done, err) = match reader.next_block().await {
            Ok(Some(block)) => {
                bytes += block.len();
                pending.push(block);
                count += 1;
                (false, None)
            }
            Ok(None) => (true, None),
            Err(e) => (true, Some(e)),
        };
        let full = pending.len() >= batch.max(1) || bytes >= MAX_BATCH_BYTES;
        if !pending.is_empty() && (done || full) {
            sink.put_many(std::mem::take(&mut pending))
                .await
                .map_err(UnixfsError::Store)?;
            bytes = 0;
        }
        if let Some(e) = err {
            return Err(e);
        }
        if done {
            break;
        }
    }
    Ok(Imported {
        roots,
        blocks: count,
    })
}
