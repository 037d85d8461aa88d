//! Typed Bitswap messages: decoding (with every block hash-checked against its CID prefix) and
//! encoding for each protocol version, plus the length-prefixed framing on a stream.
//!
//! Framing follows boxo (`bitswap/message/message.go`): an unsigned-varint length, then the
//! protobuf bytes; a stream carries any number of messages until EOF. Limits are Kubo's: a message
//! of at most [`MAX_MESSAGE_SIZE`] (4 MiB) is read, blocks of at most [`MAX_BLOCK_SIZE`] (2 MiB) are
//! accepted, and outgoing messages are split near [`TARGET_MESSAGE_SIZE`] (1 MiB of blocks).

use cairn_blockstore::Block;
use cid::{Cid, Version};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use prost::Message as _;

use crate::error::MessageError;
use crate::proto;
pub use crate::proto::{PresenceType as Presence, WantType};

/// The largest message read from a peer, in bytes (go-libp2p's `network.MessageSizeMax`, 4 MiB).
pub const MAX_MESSAGE_SIZE: usize = 4 << 20;
/// The largest block accepted or served, in bytes (the Bitswap spec's 2 MiB).
pub const MAX_BLOCK_SIZE: usize = 2 << 20;
/// Outgoing messages carry blocks up to about this many bytes before a new message starts
/// (boxo splits at 2 MiB; half that keeps latency low while still amortising framing).
pub const TARGET_MESSAGE_SIZE: usize = 1 << 20;

/// The Bitswap protocol versions, newest first, with their libp2p protocol ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// `/ipfs/bitswap` (the original; framed and encoded like 1.0.0).
    Legacy,
    /// `/ipfs/bitswap/1.0.0`: blocks as bare bytes, no presences, no want-have.
    V100,
    /// `/ipfs/bitswap/1.1.0`: blocks carry CID prefixes.
    V110,
    /// `/ipfs/bitswap/1.2.0`: want-have, HAVE / DONT_HAVE, pending bytes.
    V120,
}

impl ProtocolVersion {
    /// Every version, newest first (the order in which an outbound stream tries them).
    pub const ALL: [ProtocolVersion; 4] = [
        ProtocolVersion::V120,
        ProtocolVersion::V110,
        ProtocolVersion::V100,
        ProtocolVersion::Legacy,
    ];

    /// The libp2p protocol id.
    pub fn protocol(self) -> libp2p::StreamProtocol {
        libp2p::StreamProtocol::new(match self {
            ProtocolVersion::Legacy => "/ipfs/bitswap",
            ProtocolVersion::V100 => "/ipfs/bitswap/1.0.0",
            ProtocolVersion::V110 => "/ipfs/bitswap/1.1.0",
            ProtocolVersion::V120 => "/ipfs/bitswap/1.2.0",
        })
    }

    /// Whether this version knows want-have and block presences.
    pub fn supports_have(self) -> bool {
        self == ProtocolVersion::V120
    }

    /// Whether blocks travel with CID prefixes.
    pub fn supports_prefix(self) -> bool {
        self >= ProtocolVersion::V110
    }
}

/// One want entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantEntry {
    /// The wanted CID.
    pub cid: Cid,
    /// Higher goes first.
    pub priority: i32,
    /// Withdraws the want.
    pub cancel: bool,
    /// Block or have.
    pub want_type: WantType,
    /// Whether the sender wants an explicit DONT_HAVE.
    pub send_dont_have: bool,
}

impl WantEntry {
    /// A want for the block itself.
    pub fn block(cid: Cid, priority: i32, send_dont_have: bool) -> Self {
        WantEntry {
            cid,
            priority,
            cancel: false,
            want_type: WantType::Block,
            send_dont_have,
        }
    }

    /// A want for a HAVE / DONT_HAVE answer.
    pub fn have(cid: Cid, priority: i32) -> Self {
        WantEntry {
            cid,
            priority,
            cancel: false,
            want_type: WantType::Have,
            send_dont_have: true,
        }
    }

    /// A cancel of an earlier want.
    pub fn cancel(cid: Cid) -> Self {
        WantEntry {
            cid,
            priority: 0,
            cancel: true,
            want_type: WantType::Block,
            send_dont_have: false,
        }
    }
}

/// A block as received: either verified against the CID its prefix names, or refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceivedBlock {
    /// The bytes hash to this CID.
    Valid(Block),
    /// The prefix or the bytes could not make a CID (unsupported hash, bad prefix, too large).
    Invalid(String),
}

/// A decoded Bitswap message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BitswapMessage {
    /// Whether `wants` is the sender's whole wantlist.
    pub full: bool,
    /// Wants and cancels.
    pub wants: Vec<WantEntry>,
    /// Blocks, each rebuilt from its prefix and hashed.
    pub blocks: Vec<ReceivedBlock>,
    /// HAVE / DONT_HAVE answers.
    pub presences: Vec<(Cid, Presence)>,
    /// Bytes the sender says it still has queued for us.
    pub pending_bytes: i32,
}

impl BitswapMessage {
    /// Whether the message carries nothing.
    pub fn is_empty(&self) -> bool {
        !self.full && self.wants.is_empty() && self.blocks.is_empty() && self.presences.is_empty()
    }

    /// Bytes of block data in the message.
    pub fn block_bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| match b {
                ReceivedBlock::Valid(b) => b.len(),
                ReceivedBlock::Invalid(_) => 0,
            })
            .sum()
    }

    /// Decodes a message body (without its length prefix).
    ///
    /// Want and presence CIDs must parse canonically, blocks must not exceed [`MAX_BLOCK_SIZE`];
    /// a malformed protobuf or CID is a [`MessageError`]. A block whose prefix cannot be hashed is
    /// kept as [`ReceivedBlock::Invalid`] so the caller can count it against the peer. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        if bytes.len() > MAX_MESSAGE_SIZE {
            return Err(MessageError::TooLarge(bytes.len()));
        }
        let pb =
            proto::Message::decode(bytes).map_err(|e| MessageError::Protobuf(e.to_string()))?;
        let mut out = BitswapMessage {
            pending_bytes: pb.pending_bytes,
            ..Default::default()
        };
        if let Some(wl) = pb.wantlist {
            out.full = wl.full;
            out.wants.reserve(wl.entries.len());
            for e in wl.entries {
                out.wants.push(WantEntry {
                    cid: parse_cid(&e.block)?,
                    priority: e.priority,
                    cancel: e.cancel,
                    want_type: WantType::try_from(e.want_type).unwrap_or(WantType::Block),
                    send_dont_have: e.send_dont_have,
                });
            }
        }
        for data in pb.blocks {
            out.blocks.push(if data.len() > MAX_BLOCK_SIZE {
                ReceivedBlock::Invalid(format!("block of {} bytes", data.len()))
            } else {
                match Block::from_prefix(Version::V0, 0x70, 0x12, 32, data) {
                    Ok(b) => ReceivedBlock::Valid(b),
                    Err(e) => ReceivedBlock::Invalid(e.to_string()),
                }
            });
        }
        for b in pb.payload {
            out.blocks.push(if b.data.len() > MAX_BLOCK_SIZE {
                ReceivedBlock::Invalid(format!("block of {} bytes", b.data.len()))
            } else {
                match decode_prefix(&b.prefix) {
                    Ok((v, codec, code, len)) => {
                        match Block::from_prefix(v, codec, code, len, b.data) {
                            Ok(b) => ReceivedBlock::Valid(b),
                            Err(e) => ReceivedBlock::Invalid(e.to_string()),
                        }
                    }
                    Err(e) => ReceivedBlock::Invalid(e),
                }
            });
        }
        for p in pb.block_presences {
            let presence = Presence::try_from(p.r#type)
                .map_err(|_| MessageError::Protobuf(format!("presence type {}", p.r#type)))?;
            out.presences.push((parse_cid(&p.cid)?, presence));
        }
        Ok(out)
    }

    /// Encodes the message for a peer speaking `version`.
    ///
    /// For 1.0.0 and the legacy protocol, blocks go as bare bytes; before 1.2.0 presences are left
    /// out and want-haves become want-blocks (those peers know neither).
    pub fn encode(&self, version: ProtocolVersion) -> Vec<u8> {
        // Peers before 1.2.0 know only want-block: a want-have becomes one (as boxo does).
        let entries: Vec<proto::Entry> = self
            .wants
            .iter()
            .map(|w| proto::Entry {
                block: w.cid.to_bytes(),
                priority: w.priority,
                cancel: w.cancel,
                want_type: if version.supports_have() {
                    w.want_type as i32
                } else {
                    WantType::Block as i32
                },
                send_dont_have: w.send_dont_have && version.supports_have(),
            })
            .collect();
        let mut pb = proto::Message {
            wantlist: (!entries.is_empty() || self.full).then_some(proto::Wantlist {
                entries,
                full: self.full,
            }),
            pending_bytes: if version.supports_have() {
                self.pending_bytes
            } else {
                0
            },
            ..Default::default()
        };
        for b in &self.blocks {
            if let ReceivedBlock::Valid(b) = b {
                if version.supports_prefix() {
                    pb.payload.push(proto::Block {
                        prefix: encode_prefix(b.cid()),
                        data: b.data().clone(),
                    });
                } else {
                    pb.blocks.push(b.data().clone());
                }
            }
        }
        if version.supports_have() {
            pb.block_presences = self
                .presences
                .iter()
                .map(|(cid, p)| proto::BlockPresence {
                    cid: cid.to_bytes(),
                    r#type: *p as i32,
                })
                .collect();
        }
        pb.encode_to_vec()
    }
}

fn parse_cid(bytes: &[u8]) -> Result<Cid, MessageError> {
    cairn_blockstore::parse_cid_bytes(bytes).map_err(|e| MessageError::Cid(e.to_string()))
}

/// A CID's prefix: version, codec, multihash code and digest length, each an unsigned varint.
pub fn encode_prefix(cid: &Cid) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    let mut buf = unsigned_varint::encode::u64_buffer();
    for n in [
        u64::from(cid.version()),
        cid.codec(),
        cid.hash().code(),
        u64::from(cid.hash().size()),
    ] {
        out.extend_from_slice(unsigned_varint::encode::u64(n, &mut buf));
    }
    out
}

/// Parses a CID prefix into (version, codec, multihash code, digest length).
pub fn decode_prefix(bytes: &[u8]) -> Result<(Version, u64, u64, usize), String> {
    let mut rest = bytes;
    let mut next = |what: &str| -> Result<u64, String> {
        let (n, r) =
            unsigned_varint::decode::u64(rest).map_err(|e| format!("prefix {what}: {e}"))?;
        rest = r;
        Ok(n)
    };
    let version = Version::try_from(next("version")?).map_err(|e| e.to_string())?;
    let codec = next("codec")?;
    let code = next("hash")?;
    let len = next("length")?;
    if len > 64 {
        return Err(format!("prefix digest length {len}"));
    }
    if version == Version::V0 && (codec != 0x70 || code != 0x12 || len != 32) {
        return Err("a CIDv0 prefix must be dag-pb sha2-256".into());
    }
    Ok((version, codec, code, len as usize))
}

/// Reads one length-prefixed message; `Ok(None)` at a clean end of stream.
///
/// Errors: I/O errors, and [`std::io::ErrorKind::InvalidData`] for a length over `max` bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let len = match unsigned_varint::aio::read_usize(&mut *reader).await {
        Ok(n) => n,
        Err(unsigned_varint::io::ReadError::Io(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            return Ok(None);
        }
        Err(unsigned_varint::io::ReadError::Io(e)) => return Err(e),
        Err(e) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            ));
        }
    };
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds the {max}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    reader.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Writes one length-prefixed message and flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let mut buf = unsigned_varint::encode::usize_buffer();
    writer
        .write_all(unsigned_varint::encode::usize(body.len(), &mut buf))
        .await?;
    writer.write_all(body).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use cairn_blockstore::codec::RAW;

    #[test]
    fn round_trip_each_version() {
        let block = Block::from_data(RAW, &b"hello"[..]).unwrap();
        let msg = BitswapMessage {
            full: true,
            wants: vec![
                WantEntry::have(*block.cid(), 5),
                WantEntry::block(*block.cid(), 1, true),
            ],
            blocks: vec![ReceivedBlock::Valid(block.clone())],
            presences: vec![(*block.cid(), Presence::DontHave)],
            pending_bytes: 7,
        };
        let back = BitswapMessage::decode(&msg.encode(ProtocolVersion::V120)).unwrap();
        assert_eq!(back, msg);
        // 1.1.0: want-haves become want-blocks, no presences; the block keeps its CIDv1.
        let back = BitswapMessage::decode(&msg.encode(ProtocolVersion::V110)).unwrap();
        assert!(back.wants.iter().all(|w| w.want_type == WantType::Block));
        assert!(back.presences.is_empty());
        assert_eq!(back.blocks, vec![ReceivedBlock::Valid(block)]);
    }

    #[test]
    fn v100_blocks_are_cidv0() {
        let block = Block::new(
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
                .parse()
                .unwrap(),
            &b"\x0a\x12\x08\x02\x12\x0chello world\n\x18\x0c"[..],
        )
        .unwrap();
        let msg = BitswapMessage {
            blocks: vec![ReceivedBlock::Valid(block.clone())],
            ..Default::default()
        };
        let back = BitswapMessage::decode(&msg.encode(ProtocolVersion::V100)).unwrap();
        assert_eq!(back.blocks, vec![ReceivedBlock::Valid(block)]);
    }

    #[test]
    fn corrupt_block_names_another_cid() {
        let block = Block::from_data(RAW, &b"good"[..]).unwrap();
        let pb = proto::Message {
            payload: vec![proto::Block {
                prefix: encode_prefix(block.cid()),
                data: Bytes::from_static(b"evil"),
            }],
            ..Default::default()
        };
        let back = BitswapMessage::decode(&pb.encode_to_vec()).unwrap();
        match &back.blocks[0] {
            ReceivedBlock::Valid(b) => assert_ne!(b.cid(), block.cid()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_prefixes_are_invalid_blocks_not_panics() {
        for prefix in [
            vec![],
            vec![0xff; 12],
            vec![1, 0x55, 0x99, 32],
            vec![1, 0x55, 0x12, 4],
        ] {
            let pb = proto::Message {
                payload: vec![proto::Block {
                    prefix,
                    data: Bytes::from_static(b"x"),
                }],
                ..Default::default()
            };
            let back = BitswapMessage::decode(&pb.encode_to_vec()).unwrap();
            assert!(matches!(back.blocks[0], ReceivedBlock::Invalid(_)));
        }
        assert!(BitswapMessage::decode(&[0xff, 0xff, 0xff]).is_err());
    }

    #[tokio::test]
    async fn framing_round_trip_and_limit() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"abc").await.unwrap();
        write_frame(&mut buf, &[7u8; 300]).await.unwrap();
        let mut r = futures::io::Cursor::new(buf.clone());
        assert_eq!(read_frame(&mut r, 1000).await.unwrap().unwrap(), b"abc");
        assert_eq!(read_frame(&mut r, 1000).await.unwrap().unwrap().len(), 300);
        assert!(read_frame(&mut r, 1000).await.unwrap().is_none());
        let mut r = futures::io::Cursor::new(buf[4..].to_vec());
        assert!(read_frame(&mut r, 100).await.is_err());
    }
}
