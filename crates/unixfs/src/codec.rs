//! Converting blocks between IPLD codecs for `dag/get` and `dag/put`: dag-pb, raw, dag-cbor and
//! dag-json, through the [`Ipld`] data model.
//!
//! dag-json is written in its IPLD/Kubo form: links as `{"/": "CID"}` (CIDv0 in base58btc, v1 in
//! base32, as Kubo prints them), bytes as `{"/": {"bytes": "BASE64"}}` (standard alphabet, no
//! padding), map keys sorted, no whitespace. A dag-pb node's data-model form is
//! `{"Data": bytes, "Links": [{"Hash": link, "Name": string, "Tsize": int}]}`, so `dag get` of a
//! dag-pb node in dag-json prints
//! `{"Data":{"/":{"bytes":"…"}},"Links":[{"Hash":{"/":"…"},"Name":"…","Tsize":…}]}`.
//! dag-cbor goes through `serde_ipld_dagcbor` (canonical, strict), dag-pb through `ipld-dagpb`.
//!
//! Decoding is bounded: dag-json nesting deeper than serde_json's limit (128) is refused, and
//! dag-cbor nesting by `serde_ipld_dagcbor`'s own limit; callers bound the input size (Kubo's
//! 1 MiB block limit for `dag put`).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ipld_core::ipld::Ipld;
use serde_json::{Map, Value};

use crate::exporter::{DAG_CBOR, DAG_JSON, DAG_PB, RAW, load, walk_ipld};
use crate::{Block, BlockSource, Cid, UnixfsError};

fn bad(reason: impl std::fmt::Display) -> UnixfsError {
    UnixfsError::InvalidArgument(reason.to_string())
}

/// A codec name as Kubo's `--input-codec`/`--store-codec`/`--output-codec` take it, to its
/// multicodec code. Only the four codecs this module converts are accepted.
///
/// # Errors
/// [`UnixfsError::InvalidArgument`] for any other name.
pub fn codec_from_name(name: &str) -> Result<u64, UnixfsError> {
    match name {
        "dag-pb" | "protobuf" => Ok(DAG_PB),
        "raw" => Ok(RAW),
        "dag-cbor" | "cbor" => Ok(DAG_CBOR),
        "dag-json" | "json" => Ok(DAG_JSON),
        other => Err(bad(format!("unsupported codec {other:?}"))),
    }
}

/// Decodes a block of `codec` into the IPLD data model. A raw block is [`Ipld::Bytes`].
///
/// # Errors
/// [`UnixfsError::InvalidArgument`] with the decoder's message, or for an unsupported codec.
pub fn decode(codec: u64, data: &[u8]) -> Result<Ipld, UnixfsError> {
    match codec {
        RAW => Ok(Ipld::Bytes(data.to_vec())),
        DAG_PB => ipld_dagpb::to_ipld(data).map_err(|e| bad(format!("dag-pb: {e}"))),
        DAG_CBOR => {
            serde_ipld_dagcbor::from_slice::<Ipld>(data).map_err(|e| bad(format!("dag-cbor: {e}")))
        }
        DAG_JSON => {
            let value: Value =
                serde_json::from_slice(data).map_err(|e| bad(format!("dag-json: {e}")))?;
            json_to_ipld(value)
        }
        other => Err(bad(format!("unsupported codec 0x{other:x}"))),
    }
}

/// Encodes a data-model value in `codec`.
///
/// # Errors
/// [`UnixfsError::InvalidArgument`] when the value does not fit the codec: dag-pb needs the
/// `{Data, Links}` shape, raw needs bytes, dag-json cannot hold NaN or infinities.
pub fn encode(codec: u64, node: &Ipld) -> Result<Vec<u8>, UnixfsError> {
    match codec {
        RAW => match node {
            Ipld::Bytes(b) => Ok(b.clone()),
            _ => Err(bad("raw: only bytes can be encoded as raw")),
        },
        DAG_PB => ipld_dagpb::from_ipld(node).map_err(|e| bad(format!("dag-pb: {e}"))),
        DAG_CBOR => serde_ipld_dagcbor::to_vec(node).map_err(|e| bad(format!("dag-cbor: {e}"))),
        DAG_JSON => {
            serde_json::to_vec(&ipld_to_json(node)?).map_err(|e| bad(format!("dag-json: {e}")))
        }
        other => Err(bad(format!("unsupported codec 0x{other:x}"))),
    }
}

/// Converts a data-model value to dag-json's JSON form (see the module docs).
///
/// # Errors
/// [`UnixfsError::InvalidArgument`] for a non-finite float or an integer outside i64/u64.
pub fn ipld_to_json(node: &Ipld) -> Result<Value, UnixfsError> {
    Ok(match node {
        Ipld::Null => Value::Null,
        Ipld::Bool(b) => Value::Bool(*b),
        Ipld::Integer(i) => {
            if let Ok(v) = i64::try_from(*i) {
                Value::from(v)
            } else if let Ok(v) = u64::try_from(*i) {
                Value::from(v)
            } else {
                return Err(bad(format!("dag-json: integer {i} out of range")));
            }
        }
        Ipld::Float(f) => Value::from(
            serde_json::Number::from_f64(*f)
                .ok_or_else(|| bad("dag-json: cannot encode a non-finite float"))?,
        ),
        Ipld::String(s) => Value::String(s.clone()),
        Ipld::Bytes(b) => {
            let mut inner = Map::new();
            inner.insert("bytes".into(), Value::String(STANDARD_NO_PAD.encode(b)));
            let mut outer = Map::new();
            outer.insert("/".into(), Value::Object(inner));
            Value::Object(outer)
        }
        Ipld::List(l) => Value::Array(l.iter().map(ipld_to_json).collect::<Result<_, _>>()?),
        Ipld::Map(m) => {
            // `Ipld::Map` is a BTreeMap: keys come sorted bytewise, as dag-json wants them,
            // and the workspace's serde_json keeps insertion order.
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.clone(), ipld_to_json(v)?);
            }
            Value::Object(out)
        }
        Ipld::Link(c) => {
            let mut out = Map::new();
            out.insert("/".into(), Value::String(c.to_string()));
            Value::Object(out)
        }
    })
}

/// Converts dag-json's JSON form to the data model: `{"/": "CID"}` is a link,
/// `{"/": {"bytes": "…"}}` bytes (padded or not); any other map with a `"/"` key is refused, as
/// the dag-json spec reserves it.
///
/// # Errors
/// [`UnixfsError::InvalidArgument`] for a bad CID, bad base64 or a misused `"/"` key.
pub fn json_to_ipld(value: Value) -> Result<Ipld, UnixfsError> {
    Ok(match value {
        Value::Null => Ipld::Null,
        Value::Bool(b) => Ipld::Bool(b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ipld::Integer(i.into())
            } else if let Some(u) = n.as_u64() {
                Ipld::Integer(u.into())
            } else {
                Ipld::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Ipld::String(s),
        Value::Array(a) => Ipld::List(a.into_iter().map(json_to_ipld).collect::<Result<_, _>>()?),
        Value::Object(mut m) => {
            if let Some(slash) = m.get("/") {
                if m.len() != 1 {
                    return Err(bad(
                        "dag-json: a map with a \"/\" key must have only that key",
                    ));
                }
                return match slash {
                    Value::String(s) => {
                        Ok(Ipld::Link(Cid::try_from(s.as_str()).map_err(|e| {
                            bad(format!("dag-json: invalid link {s:?}: {e}"))
                        })?))
                    }
                    Value::Object(inner) if inner.len() == 1 => match inner.get("bytes") {
                        Some(Value::String(b)) => {
                            let trimmed = b.trim_end_matches('=');
                            Ok(Ipld::Bytes(STANDARD_NO_PAD.decode(trimmed).map_err(
                                |e| bad(format!("dag-json: invalid base64 bytes: {e}")),
                            )?))
                        }
                        _ => Err(bad("dag-json: invalid bytes form")),
                    },
                    _ => Err(bad("dag-json: invalid use of the \"/\" key")),
                };
            }
            let mut out = BTreeMap::new();
            for (k, v) in std::mem::take(&mut m) {
                out.insert(k, json_to_ipld(v)?);
            }
            Ipld::Map(out)
        }
    })
}

/// Transcodes a block: decode as `from`, encode as `to` (`dag put --input-codec --store-codec`,
/// `dag get --output-codec`).
///
/// # Errors
/// As [`decode`] and [`encode`].
pub fn transcode(from: u64, data: &[u8], to: u64) -> Result<Vec<u8>, UnixfsError> {
    if from == to && from != DAG_JSON && from != DAG_CBOR {
        // dag-pb and raw re-encode to the same bytes; skip the round trip (and keep
        // non-canonical dag-pb as it is).
        return Ok(data.to_vec());
    }
    encode(to, &decode(from, data)?)
}

/// `dag put`: `data` in `input_codec`, stored as `store_codec` with a sha2-256 CIDv1 (Kubo's
/// default `--hash sha2-256`). Returns the block to store.
///
/// # Errors
/// As [`transcode`].
pub fn dag_put(data: &[u8], input_codec: u64, store_codec: u64) -> Result<Block, UnixfsError> {
    let bytes = transcode(input_codec, data, store_codec)?;
    Block::from_data(store_codec, bytes).map_err(|e| bad(e.to_string()))
}

/// `dag get PATH --output-codec C`: resolves `path` (`/ipfs/CID/…`) across links, then into the
/// last block's data, and encodes the value reached in `output_codec`.
///
/// # Errors
/// Path errors as [`crate::exporter::resolve`] (`no link named "x" under CID`), a missing block,
/// or a value the output codec cannot hold (e.g. a map as raw).
pub async fn dag_get<S: BlockSource + ?Sized>(
    src: &S,
    path: &str,
    output_codec: u64,
) -> Result<Vec<u8>, UnixfsError> {
    let (root, segments) = crate::exporter::parse_path(path)?;
    let resolved = crate::exporter::resolve(src, &root, &segments).await?;
    let data = load(src, &resolved.cid).await?;
    if resolved.remainder.is_empty() {
        return transcode(resolved.cid.codec(), &data, output_codec);
    }
    let node = decode(resolved.cid.codec(), &data)?;
    let (value, _) = walk_ipld(&resolved.cid, &node, &resolved.remainder)?;
    encode(output_codec, value.unwrap_or(&Ipld::Null))
}
