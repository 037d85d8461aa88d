//! Pin types and their on-disk record.

use cid::Cid;

use crate::error::{BlockstoreError, Result};

/// How a CID is pinned by the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinMode {
    /// Only this block is kept.
    Direct,
    /// This block and every block reachable from it are kept.
    Recursive,
}

impl PinMode {
    /// Kubo's name for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            PinMode::Direct => "direct",
            PinMode::Recursive => "recursive",
        }
    }
}

/// Why a listed CID is pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PinKind {
    /// A direct pin.
    Direct,
    /// A recursive pin's root.
    Recursive,
    /// Reachable from a recursive pin.
    Indirect,
}

impl PinKind {
    /// Kubo's name for the kind (`pin ls` "Type").
    pub fn as_str(self) -> &'static str {
        match self {
            PinKind::Direct => "direct",
            PinKind::Recursive => "recursive",
            PinKind::Indirect => "indirect",
        }
    }
}

/// Which pins a listing returns (Kubo's `pin ls --type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PinFilter {
    /// Recursive, direct and indirect.
    #[default]
    All,
    /// Direct pins only.
    Direct,
    /// Recursive roots only.
    Recursive,
    /// Blocks reachable from recursive pins, other than recursive roots.
    Indirect,
}

impl PinFilter {
    pub(crate) fn wants(self, kind: PinKind) -> bool {
        match self {
            PinFilter::All => true,
            PinFilter::Direct => kind == PinKind::Direct,
            PinFilter::Recursive => kind == PinKind::Recursive,
            PinFilter::Indirect => kind == PinKind::Indirect,
        }
    }
}

/// One entry of a pin listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinInfo {
    /// The pinned CID.
    pub cid: Cid,
    /// Why it is pinned.
    pub kind: PinKind,
    /// The pin's name (empty when none was given, and for indirect pins).
    pub name: String,
}

/// The pin state of one CID, as `pin ls <cid>` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinState {
    /// Directly pinned.
    Direct,
    /// A recursive root.
    Recursive,
    /// Reachable from the recursive pin `via`.
    Indirect {
        /// The recursive root it is reached from.
        via: Cid,
    },
}

/// A stored pin: `[1][mode][name...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PinRecord {
    pub mode: PinMode,
    pub name: String,
}

const RECORD_VERSION: u8 = 1;

impl PinRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mode = match self.mode {
            PinMode::Direct => 1,
            PinMode::Recursive => 2,
        };
        let mut out = vec![RECORD_VERSION, mode];
        out.extend_from_slice(self.name.as_bytes());
        out
    }

    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self> {
        let corrupt = || BlockstoreError::CorruptPin {
            key: crate::block::hex(key),
        };
        let (&[RECORD_VERSION, mode], name) = value.split_at_checked(2).ok_or_else(corrupt)? else {
            return Err(corrupt());
        };
        let mode = match mode {
            1 => PinMode::Direct,
            2 => PinMode::Recursive,
            _ => return Err(corrupt()),
        };
        let name = String::from_utf8(name.to_vec()).map_err(|_| corrupt())?;
        Ok(PinRecord { mode, name })
    }
}
