//! The Bitswap wire message, `message.proto` of boxo (`bitswap/message/pb`), written out as prost
//! structs by hand (no `protoc` needed). Field numbers and types are the spec's; proto3 defaults.

use bytes::Bytes;

/// One Bitswap message: a wantlist, blocks, block presences and the sender's pending bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// Wants and cancels.
    #[prost(message, optional, tag = "1")]
    pub wantlist: Option<Wantlist>,
    /// Blocks as bare bytes (Bitswap 1.0.0: CIDv0, sha2-256 dag-pb implied).
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub blocks: Vec<Bytes>,
    /// Blocks with their CID prefix (Bitswap 1.1.0 and later).
    #[prost(message, repeated, tag = "3")]
    pub payload: Vec<Block>,
    /// HAVE / DONT_HAVE answers (Bitswap 1.2.0).
    #[prost(message, repeated, tag = "4")]
    pub block_presences: Vec<BlockPresence>,
    /// Bytes the sender still has queued for the receiver.
    #[prost(int32, tag = "5")]
    pub pending_bytes: i32,
}

/// A list of want entries; `full` replaces the receiver's whole view of the sender's wants.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Wantlist {
    /// The entries.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
    /// Whether this is the sender's complete wantlist.
    #[prost(bool, tag = "2")]
    pub full: bool,
}

/// One want (or cancel) for a CID.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    /// The CID's binary form.
    #[prost(bytes = "vec", tag = "1")]
    pub block: Vec<u8>,
    /// Higher goes first.
    #[prost(int32, tag = "2")]
    pub priority: i32,
    /// Withdraws an earlier want.
    #[prost(bool, tag = "3")]
    pub cancel: bool,
    /// [`WantType`].
    #[prost(enumeration = "WantType", tag = "4")]
    pub want_type: i32,
    /// Asks for an explicit DONT_HAVE when the receiver lacks the block.
    #[prost(bool, tag = "5")]
    pub send_dont_have: bool,
}

/// A block with the prefix of its CID (version, codec, multihash code, digest length as varints).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Block {
    /// The CID prefix.
    #[prost(bytes = "vec", tag = "1")]
    pub prefix: Vec<u8>,
    /// The block's bytes.
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

/// Whether the sender has a block.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockPresence {
    /// The CID's binary form.
    #[prost(bytes = "vec", tag = "1")]
    pub cid: Vec<u8>,
    /// [`PresenceType`].
    #[prost(enumeration = "PresenceType", tag = "2")]
    pub r#type: i32,
}

/// What a want asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum WantType {
    /// Send the block.
    Block = 0,
    /// Say whether you have it (HAVE / DONT_HAVE), or send it when it is small.
    Have = 1,
}

/// A block presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PresenceType {
    /// The sender has the block.
    Have = 0,
    /// The sender does not have the block.
    DontHave = 1,
}
