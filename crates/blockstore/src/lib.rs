//! # cairn-blockstore
//!
//! A content-addressed blockstore for cairn: every block is verified against its CID's hash, blocks
//! are keyed by multihash (so CIDv0 and CIDv1 of the same bytes share one entry, as in Kubo),
//! pins are stored beside them, and garbage collection removes what no pin reaches.
//!
//! ```
//! use cairn_blockstore::{Block, Blockstore, PinMode, codec::RAW};
//!
//! let store = Blockstore::in_memory();
//! let block = Block::from_data(RAW, &b"hello world\n"[..])?;
//! store.put(&block)?;
//! store.pin(block.cid(), PinMode::Recursive)?;
//! assert_eq!(store.get(block.cid())?.unwrap().data(), block.data());
//! assert!(store.gc()?.removed.is_empty());
//! # Ok::<(), cairn_blockstore::BlockstoreError>(())
//! ```
//!
//! ## Durability
//! With [`Durability::Synced`] (the default, as Kubo's default datastore syncs) every
//! acknowledged put, put_many, pin and delete has been written and fsynced: it survives a crash.
//! Concurrent writers share one fsync (group commit), so durability costs little under load.
//! With [`Durability::Buffered`] a put is acknowledged once it is in sled's memory; sled writes it
//! out within `flush_every_ms` (500 ms), and [`Blockstore::flush`] forces it. A crash can lose
//! puts acknowledged in that last interval, but never a block written before a flush. Pin changes
//! and GC are always durable. `tests/crash.rs` proves both claims by killing a writer with SIGKILL;
//! `scripts/crash-cycles.sh` runs it for 100 cycles.
//!
//! ## Layout
//! sled holds an index (multihash → where the bytes are and how many), the pins and the bytes of
//! blocks under 64 KiB; larger blocks are files in Kubo's flatfs layout (`blocks/XX/<base32>.data`).
//! Sizes, counts and listings come from the index without reading block data. Reads re-hash the
//! bytes (`verify_on_read`, on by default): a block damaged on disk is an error, never data, and a
//! put of the right bytes repairs it. Writes are refused with [`BlockstoreError::NoSpace`] before
//! the disk is full enough to hurt sled.
//!
//! The storage engine sits behind [`engine::StorageEngine`]; sled and an in-memory engine ship.

pub mod block;
pub mod codec;
mod commit;
pub mod engine;
pub mod error;
mod files;
mod gate;
pub mod pin;
mod store;

pub use block::{Block, parse_cid_bytes, parse_cid_str, verify};
pub use cid::Cid;
pub use error::{BlockstoreError, EngineError, Result};
pub use gate::GcGuard;
pub use multihash_codetable::Code;
pub use pin::{PinFilter, PinInfo, PinKind, PinMode, PinState};
pub use store::{
    Blockstore, BlockstoreConfig, DEFAULT_FILE_THRESHOLD, DEFAULT_MIN_FREE, Durability, GcReport,
    GcSummary, OpCounts, StoreStat, VerifySummary,
};
