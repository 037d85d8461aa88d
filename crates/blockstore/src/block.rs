//! Blocks: bytes together with the CID they hash to, verified on construction.

use bytes::Bytes;
use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};

use crate::codec::is_known_codec;
use crate::error::{BlockstoreError, Result};

/// The multihash code of the identity "hash": the digest is the data itself.
pub const IDENTITY: u64 = 0x00;

/// Digests shorter than this are refused, as Kubo's `verifcid` refuses them: too easy to collide.
pub const MIN_DIGEST_LEN: usize = 20;

/// A block of data and its CID. A `Block` always verifies: the data hashes to the CID's multihash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    cid: Cid,
    data: Bytes,
}

impl Block {
    /// A block from a CID and bytes, checked: the bytes must hash to the CID's multihash.
    ///
    /// Errors are [`BlockstoreError::HashMismatch`], [`BlockstoreError::UnsupportedHash`] and
    /// [`BlockstoreError::DigestTooShort`]; this never panics, whatever the input.
    pub fn new(cid: Cid, data: impl Into<Bytes>) -> Result<Self> {
        let data = data.into();
        verify(&cid, &data)?;
        Ok(Block { cid, data })
    }

    /// A block whose CID is computed: CIDv1, the given codec, sha2-256.
    pub fn from_data(codec: u64, data: impl Into<Bytes>) -> Result<Self> {
        Self::from_data_with(codec, Code::Sha2_256, data)
    }

    /// A block whose CID is computed with the given codec and hash function (CIDv1).
    pub fn from_data_with(codec: u64, hash: Code, data: impl Into<Bytes>) -> Result<Self> {
        if !is_known_codec(codec) {
            return Err(BlockstoreError::UnknownCodec(format!("0x{codec:x}")));
        }
        let data = data.into();
        let cid = Cid::new_v1(codec, hash.digest(&data));
        Ok(Block { cid, data })
    }

    /// A block whose CID is rebuilt from a CID prefix (version, codec, multihash code and digest
    /// length, as Bitswap 1.1+ sends them) and the hash of `data`, computed once.
    ///
    /// This is how a received block is verified: the CID it yields is the only one the bytes can
    /// stand for, so comparing it with the wanted CID is the hash check. Errors as [`Block::new`],
    /// plus [`BlockstoreError::InvalidCid`] for a CIDv0 prefix that is not sha2-256 dag-pb.
    pub fn from_prefix(
        version: cid::Version,
        codec: u64,
        mh_code: u64,
        mh_len: usize,
        data: impl Into<Bytes>,
    ) -> Result<Self> {
        let data = data.into();
        let invalid = |reason: &str| BlockstoreError::InvalidCid {
            input: format!("prefix v{version:?} codec 0x{codec:x} hash 0x{mh_code:x}/{mh_len}"),
            reason: reason.into(),
        };
        let digest = if mh_code == IDENTITY {
            if data.len() != mh_len {
                return Err(invalid("identity digest length differs from the data's"));
            }
            multihash::Multihash::wrap(IDENTITY, &data).map_err(|e| invalid(&e.to_string()))?
        } else {
            let code = Code::try_from(mh_code).map_err(|_| invalid("unsupported hash function"))?;
            if mh_len < MIN_DIGEST_LEN {
                return Err(invalid("digest shorter than 20 bytes"));
            }
            let full = code.digest(&data);
            if full.size() as usize == mh_len {
                full
            } else if (full.size() as usize) > mh_len {
                multihash::Multihash::wrap(mh_code, &full.digest()[..mh_len])
                    .map_err(|e| invalid(&e.to_string()))?
            } else {
                return Err(invalid("digest longer than the hash function's"));
            }
        };
        let cid = Cid::new(version, codec, digest).map_err(|e| invalid(&e.to_string()))?;
        Ok(Block { cid, data })
    }

    /// A block read back from the store, trusted without hashing (the key it came from was its hash).
    pub(crate) fn trusted(cid: Cid, data: Bytes) -> Self {
        Block { cid, data }
    }

    /// The block's CID.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The block's bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The block's size in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the block has no bytes (the empty raw block is a valid block).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The CID and the bytes.
    pub fn into_parts(self) -> (Cid, Bytes) {
        (self.cid, self.data)
    }
}

/// Checks that `data` hashes to `cid`'s multihash.
///
/// Supported: the identity hash, sha2-256/512, sha3-224/256/384/512, keccak-224/256/384/512,
/// blake2b-256/512 and blake3. A digest truncated by the CID (Kubo's `mhlen`) is compared as a prefix.
pub fn verify(cid: &Cid, data: &[u8]) -> Result<()> {
    let mh = cid.hash();
    if mh.code() == IDENTITY {
        return if mh.digest() == data {
            Ok(())
        } else {
            Err(BlockstoreError::HashMismatch { cid: *cid })
        };
    }
    let code = Code::try_from(mh.code()).map_err(|_| BlockstoreError::UnsupportedHash {
        cid: *cid,
        code: mh.code(),
    })?;
    if (mh.size() as usize) < MIN_DIGEST_LEN {
        return Err(BlockstoreError::DigestTooShort {
            cid: *cid,
            len: mh.size() as usize,
            min: MIN_DIGEST_LEN,
        });
    }
    let computed = code.digest(data);
    if computed.size() >= mh.size() && computed.digest()[..mh.size() as usize] == *mh.digest() {
        Ok(())
    } else {
        Err(BlockstoreError::HashMismatch { cid: *cid })
    }
}

/// Parses a CID from its string form (base58 CIDv0 or any multibase CIDv1).
pub fn parse_cid_str(input: &str) -> Result<Cid> {
    Cid::try_from(input).map_err(|e| BlockstoreError::InvalidCid {
        input: input.chars().take(128).collect(),
        reason: e.to_string(),
    })
}

/// Parses a CID from its binary form; trailing bytes are an error.
pub fn parse_cid_bytes(input: &[u8]) -> Result<Cid> {
    let invalid = |reason: String| BlockstoreError::InvalidCid {
        input: hex(&input[..input.len().min(64)]),
        reason,
    };
    let cid = Cid::try_from(input).map_err(|e| invalid(e.to_string()))?;
    if cid.encoded_len() < input.len() {
        return Err(invalid(format!(
            "{} trailing bytes after the CID",
            input.len() - cid.encoded_len()
        )));
    }
    // The cid crate reads overlong or overflowing varints leniently; such bytes name a different
    // CID than they seem to (found by the cid_bytes fuzz target).
    if cid.to_bytes() != input {
        return Err(invalid(
            "not a canonical encoding (overlong or overflowing varint)".into(),
        ));
    }
    Ok(cid)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DAG_PB, RAW};

    #[test]
    fn hello_world_has_the_known_cids() {
        let b = Block::from_data(RAW, &b"hello world\n"[..]).unwrap();
        assert_eq!(
            b.cid().to_string(),
            "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
        );
    }

    #[test]
    fn every_supported_hash_verifies_and_detects_tampering() {
        for code in [
            Code::Sha2_256,
            Code::Sha2_512,
            Code::Sha3_256,
            Code::Sha3_512,
            Code::Blake2b256,
            Code::Blake2b512,
            Code::Blake3_256,
            Code::Keccak256,
        ] {
            let cid = Cid::new_v1(RAW, code.digest(b"data"));
            Block::new(cid, &b"data"[..]).unwrap();
            let err = Block::new(cid, &b"date"[..]).unwrap_err();
            assert!(
                matches!(err, BlockstoreError::HashMismatch { .. }),
                "{code:?}: {err}"
            );
        }
    }

    #[test]
    fn identity_hash_is_the_data() {
        let mh = multihash::Multihash::<64>::wrap(IDENTITY, b"tiny").unwrap();
        let cid = Cid::new_v1(RAW, mh);
        Block::new(cid, &b"tiny"[..]).unwrap();
        assert!(Block::new(cid, &b"tinY"[..]).is_err());
    }

    #[test]
    fn truncated_digests_compare_as_prefix_and_short_ones_are_refused() {
        let full = Code::Sha2_512.digest(b"x");
        let cut = multihash::Multihash::<64>::wrap(full.code(), &full.digest()[..32]).unwrap();
        Block::new(Cid::new_v1(RAW, cut), &b"x"[..]).unwrap();
        let short = multihash::Multihash::<64>::wrap(full.code(), &full.digest()[..8]).unwrap();
        let err = Block::new(Cid::new_v1(RAW, short), &b"x"[..]).unwrap_err();
        assert!(err.to_string().contains("at least 20"), "{err}");
    }

    #[test]
    fn unsupported_hash_and_codec_are_typed_errors() {
        // 0x22 is murmur3-x64-64: a real multihash, but not a cryptographic one.
        let mh = multihash::Multihash::<64>::wrap(0x22, &[0; 32]).unwrap();
        let err = Block::new(Cid::new_v1(RAW, mh), &b""[..]).unwrap_err();
        assert!(
            matches!(err, BlockstoreError::UnsupportedHash { code: 0x22, .. }),
            "{err}"
        );
        let err = Block::from_data(0x9999, &b""[..]).unwrap_err();
        assert_eq!(err.to_string(), "unknown codec 0x9999");
        assert!(Block::from_data(DAG_PB, &b""[..]).is_ok());
    }

    #[test]
    fn truncated_and_trailing_cids_are_errors() {
        let cid = Block::from_data(RAW, &b"a"[..]).unwrap().cid().to_bytes();
        for n in 0..cid.len() {
            let err = parse_cid_bytes(&cid[..n]).unwrap_err();
            assert!(
                matches!(err, BlockstoreError::InvalidCid { .. }),
                "{n}: {err}"
            );
        }
        let mut long = cid.clone();
        long.push(0);
        assert!(
            parse_cid_bytes(&long)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        // An overflowing 10-byte varint (the fuzzer's find) is refused, not silently truncated.
        let overflow = [
            0x01, 0xc8, 0x68, 0xdf, 0xff, 0xff, 0xff, 0xc9, 0xc9, 0xc9, 0xc9, 0xff, 0x3b, 0x00,
        ];
        assert!(
            parse_cid_bytes(&overflow)
                .unwrap_err()
                .to_string()
                .contains("canonical")
        );
        let s = Cid::try_from(&cid[..]).unwrap().to_string();
        assert!(parse_cid_str(&s[..s.len() - 3]).is_err());
        assert!(parse_cid_str("").is_err());
        assert!(parse_cid_str("QmNotACid").is_err());
    }
}
