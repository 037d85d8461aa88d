//! What a gateway request asks for: the response format (`format` query parameter first, then
//! `Accept`, as the path gateway spec orders them), CAR parameters, `dag-scope`,
//! `entity-bytes`, `Range`, `filename` and `download`.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, RANGE};
use cairn_node_core::unixfs::scope::{DagScope, EntityBytes};

use crate::GatewayError;

/// `application/vnd.ipld.raw`: one block.
pub const RAW_TYPE: &str = "application/vnd.ipld.raw";
/// `application/vnd.ipld.car`: a CAR stream.
pub const CAR_TYPE: &str = "application/vnd.ipld.car";
/// `application/x-tar`: a tar archive of a file or directory.
pub const TAR_TYPE: &str = "application/x-tar";

/// The response format a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Files, directories, index pages: the deserialized UnixFS view (the default).
    Unixfs,
    /// One raw block (`format=raw`, `application/vnd.ipld.raw`).
    Raw,
    /// A CARv1 (`format=car`, `application/vnd.ipld.car`).
    Car(CarParams),
    /// A tar archive (`format=tar`, `application/x-tar`).
    Tar,
}

impl Format {
    /// Whether the spec counts it as a trustless (verifiable) response.
    pub fn is_trustless(&self) -> bool {
        matches!(self, Format::Raw | Format::Car(_))
    }

    /// The short name used in metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Format::Unixfs => "unixfs",
            Format::Raw => "raw",
            Format::Car(_) => "car",
            Format::Tar => "tar",
        }
    }
}

/// The CAR options a request may set (IPIP-412), and the scope of its blocks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CarParams {
    /// `dag-scope`, default `all`.
    pub scope: DagScope,
    /// `entity-bytes`, implying `entity`.
    pub bytes: Option<EntityBytes>,
    /// `dups=y` was asked for; cairn sends each block once (`dups=n`), which a client that
    /// accepts duplicates also accepts.
    pub dups: bool,
}

/// A request's query parameters that the gateway reads (others are ignored, as boxo does).
#[derive(Debug, Default, Clone)]
pub struct Query {
    /// `format`.
    pub format: Option<String>,
    /// `dag-scope`.
    pub dag_scope: Option<String>,
    /// `entity-bytes`.
    pub entity_bytes: Option<String>,
    /// `car-version`.
    pub car_version: Option<String>,
    /// `car-order`.
    pub car_order: Option<String>,
    /// `car-dups`.
    pub car_dups: Option<String>,
    /// `filename`: the name for `Content-Disposition`.
    pub filename: Option<String>,
    /// `download=true`: `Content-Disposition: attachment`.
    pub download: bool,
}

impl Query {
    /// Parses an `application/x-www-form-urlencoded` query string.
    pub fn parse(query: Option<&str>) -> Query {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let v = Some(v.into_owned());
            match &*k {
                "format" => q.format = v,
                "dag-scope" => q.dag_scope = v,
                "entity-bytes" => q.entity_bytes = v,
                "car-version" => q.car_version = v,
                "car-order" => q.car_order = v,
                "car-dups" => q.car_dups = v,
                "filename" => q.filename = v,
                "download" => q.download = v.as_deref() == Some("true"),
                _ => {}
            }
        }
        q
    }
}

/// One media range of an `Accept` header with its parameters (`q` dropped).
fn accepted(headers: &HeaderMap) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for value in headers.get_all(ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let Some(essence) = parts.next().filter(|e| !e.is_empty()) else {
                continue;
            };
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| {
                    (
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').into(),
                    )
                })
                .filter(|(k, _)| k != "q")
                .collect();
            out.push((essence.to_ascii_lowercase(), params));
        }
    }
    out
}

/// The format of a request: `format` wins over `Accept`; in `Accept`, the first verifiable
/// type listed (raw, CAR, tar) wins, anything else means the UnixFS view.
///
/// # Errors
/// [`GatewayError::BadRequest`] for a `format` the gateway does not serve, a CAR version
/// other than 1, an order other than `dfs`/`unk`, a bad `dag-scope` or `entity-bytes`.
pub fn negotiate(query: &Query, headers: &HeaderMap) -> Result<Format, GatewayError> {
    let mut car_from_accept: Vec<(String, String)> = Vec::new();
    let format = match query.format.as_deref() {
        Some("raw") => "raw",
        Some("car") => "car",
        Some("tar") => "tar",
        Some(other) => {
            return Err(GatewayError::BadRequest(format!(
                "unsupported format {other:?}: this gateway serves raw, car and tar"
            )));
        }
        None => {
            let mut found = "unixfs";
            for (essence, params) in accepted(headers) {
                match essence.as_str() {
                    RAW_TYPE => found = "raw",
                    CAR_TYPE => {
                        found = "car";
                        car_from_accept = params;
                    }
                    TAR_TYPE => found = "tar",
                    _ => continue,
                }
                break;
            }
            found
        }
    };
    match format {
        "raw" => Ok(Format::Raw),
        "tar" => Ok(Format::Tar),
        "car" => {
            let param = |name: &str, query: &Option<String>| {
                query.clone().or_else(|| {
                    car_from_accept
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                })
            };
            if let Some(v) = param("version", &query.car_version)
                && v != "1"
            {
                return Err(GatewayError::BadRequest(format!(
                    "unsupported CAR version {v:?}: only version 1 is served"
                )));
            }
            if let Some(o) = param("order", &query.car_order)
                && o != "dfs"
                && o != "unk"
            {
                return Err(GatewayError::BadRequest(format!(
                    "unsupported CAR order {o:?}: dfs or unk"
                )));
            }
            let dups = match param("dups", &query.car_dups).as_deref() {
                None | Some("n") => false,
                Some("y") => true,
                Some(d) => {
                    return Err(GatewayError::BadRequest(format!(
                        "invalid CAR dups {d:?}: y or n"
                    )));
                }
            };
            let scope = match &query.dag_scope {
                None => DagScope::All,
                Some(s) => s
                    .parse()
                    .map_err(|e: cairn_node_core::unixfs::UnixfsError| {
                        GatewayError::BadRequest(e.to_string())
                    })?,
            };
            let bytes = match &query.entity_bytes {
                None => None,
                Some(b) => Some(
                    b.parse()
                        .map_err(|e: cairn_node_core::unixfs::UnixfsError| {
                            GatewayError::BadRequest(e.to_string())
                        })?,
                ),
            };
            Ok(Format::Car(CarParams { scope, bytes, dups }))
        }
        _ => Ok(Format::Unixfs),
    }
}

/// A single byte range of a `Range: bytes=…` header, resolved against a file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No range (or one the gateway ignores: several ranges, another unit): the whole file.
    Whole,
    /// Bytes `[start, end)`.
    Part {
        /// The first byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// The range starts past the end: 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Reads `Range` for a file of `size` bytes: `bytes=a-b`, `bytes=a-`, `bytes=-n`. Several
/// ranges are answered with the whole file (RFC 9110 lets a server ignore `Range`).
pub fn byte_range(headers: &HeaderMap, size: u64) -> ByteRange {
    let Some(spec) = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, false) => match parse(b) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(n) if size > 0 => ByteRange::Part {
                start: size.saturating_sub(n),
                end: size,
            },
            Some(_) => ByteRange::Unsatisfiable,
            None => ByteRange::Whole,
        },
        (false, _) => match (
            parse(a),
            if b.is_empty() {
                Some(None)
            } else {
                parse(b).map(Some)
            },
        ) {
            (Some(start), Some(last)) => {
                if last.is_some_and(|l| l < start) {
                    return ByteRange::Whole;
                }
                if start >= size {
                    return ByteRange::Unsatisfiable;
                }
                let end = last.map_or(size, |l| l.saturating_add(1).min(size));
                ByteRange::Part { start, end }
            }
            _ => ByteRange::Whole,
        },
        (true, true) => ByteRange::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: axum::http::HeaderName, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn ranges() {
        let r = |v: &str| byte_range(&headers(RANGE, v), 100);
        assert_eq!(r("bytes=0-9"), ByteRange::Part { start: 0, end: 10 });
        assert_eq!(
            r("bytes=90-"),
            ByteRange::Part {
                start: 90,
                end: 100
            }
        );
        assert_eq!(
            r("bytes=-5"),
            ByteRange::Part {
                start: 95,
                end: 100
            }
        );
        assert_eq!(
            r("bytes=50-500"),
            ByteRange::Part {
                start: 50,
                end: 100
            }
        );
        assert_eq!(r("bytes=100-"), ByteRange::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), ByteRange::Whole);
        assert_eq!(r("items=0-1"), ByteRange::Whole);
        assert_eq!(r("bytes=9-1"), ByteRange::Whole);
        assert_eq!(byte_range(&HeaderMap::new(), 100), ByteRange::Whole);
    }

    #[test]
    fn format_wins_over_accept() {
        let q = Query::parse(Some("format=raw"));
        let h = headers(ACCEPT, CAR_TYPE);
        assert_eq!(negotiate(&q, &h).unwrap(), Format::Raw);
        let q = Query::parse(None);
        assert!(matches!(negotiate(&q, &h).unwrap(), Format::Car(_)));
        let h = headers(ACCEPT, "text/html,application/xhtml+xml");
        assert_eq!(negotiate(&q, &h).unwrap(), Format::Unixfs);
        let h = headers(ACCEPT, "application/vnd.ipld.car; version=2");
        assert!(negotiate(&q, &h).is_err());
        for bad in [
            "format=json5",
            "format=car&dag-scope=x",
            "format=car&entity-bytes=a:b",
        ] {
            assert!(
                negotiate(&Query::parse(Some(bad)), &HeaderMap::new()).is_err(),
                "{bad}"
            );
        }
        let q = Query::parse(Some("format=car&entity-bytes=0:*&dag-scope=block"));
        let Format::Car(p) = negotiate(&q, &HeaderMap::new()).unwrap() else {
            panic!()
        };
        assert!(p.bytes.is_some());
    }
}
